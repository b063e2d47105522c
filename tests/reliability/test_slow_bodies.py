"""Request bodies have a total deadline (REQUEST_BODY_TIMEOUT): a client trickling its body, however
steadily, gets a 408 in its dialect's shape and the connection is closed; it never holds a worker's
connection for longer."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.reliability.wire import ANTHROPIC_HEADERS, BY_NAME, GEMINI_HEADERS, OPENAI_HEADERS

DEADLINE = 1.0
TRICKLE = 0.25  # seconds between bytes: far inside any gap limit


@pytest.fixture(scope="module")
def gw(start_gateway):
    return start_gateway(REQUEST_BODY_TIMEOUT=DEADLINE)


class Trickler:
    """Sends the request head, then its body one byte at a time, until told to stop or the socket fails."""

    def __init__(self, gw, path: str, headers: dict, body: bytes, chunked: bool = False):
        self.sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        self.body, self.chunked = body, chunked
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _send(self) -> None:
        for i in range(len(self.body)):
            if self.stop.wait(TRICKLE):
                return
            piece = self.body[i : i + 1]
            try:
                self.sock.sendall(b"1\r\n" + piece + b"\r\n" if self.chunked else piece)
            except OSError:
                return

    def answer(self, timeout: float) -> tuple[int, dict, bool]:
        """(status, JSON body, whether the server then closed the connection)."""
        self.sock.settimeout(timeout)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                piece = self.sock.recv(65536)
                assert piece, "closed without an answer"
                received += piece
            head, _, rest = received.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while len(rest) < length:
                rest += self.sock.recv(65536)
            try:
                closed = self.sock.recv(65536) == b""
            except ConnectionResetError:  # closed while the rest of the body was still coming
                closed = True
            except TimeoutError:
                closed = False
            return int(head.split()[1]), json.loads(rest[:length]), closed
        finally:
            self.stop.set()
            self.sock.close()


REQUESTS = {
    "gemini": (BY_NAME["gemini"].path, GEMINI_HEADERS, BY_NAME["gemini"].body),
    "openai": ("/v1/chat/completions", OPENAI_HEADERS, BY_NAME["openai"].body),
    "anthropic": ("/v1/messages", ANTHROPIC_HEADERS, BY_NAME["anthropic"].body),
}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("dialect", list(REQUESTS))
def test_a_trickled_body_gets_a_408_in_its_dialect_and_the_connection_closes(gw, upstream, dialect, chunked):
    path, headers, body = REQUESTS[dialect]
    started = time.monotonic()
    status, error, closed = Trickler(gw, path, headers, json.dumps(body).encode(), chunked).answer(timeout=5)
    elapsed = time.monotonic() - started
    assert status == 408 and DEADLINE <= elapsed < DEADLINE + 1.0, (status, elapsed)
    if dialect == "gemini":
        assert error["error"]["code"] == 408 and "did not arrive" in error["error"]["message"]
    elif dialect == "openai":
        assert (
            error["error"]["type"] == "invalid_request_error" and error["error"]["code"] == "request_timeout"
        )
    else:
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert closed, "the connection stayed open for the rest of the body"
    assert not upstream.calls()


def test_a_trickled_body_the_answer_never_needed_does_not_hold_the_connection(gw, upstream):
    # No key: the 401 needs no body, and the rest of it is not waited for past the deadline.
    path, _, body = REQUESTS["openai"]
    started = time.monotonic()
    status, error, closed = Trickler(gw, path, {}, json.dumps(body).encode()).answer(timeout=5)
    assert status == 401 and error["error"]["code"] == "invalid_api_key"
    assert closed and time.monotonic() - started < DEADLINE + 1.0


def test_a_body_that_arrives_in_time_is_served(gw, upstream):
    response = BY_NAME["openai"].post(gw)
    assert response.status_code == 200
