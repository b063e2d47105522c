"""Heartbeats from the stream's own reads: a silent Gemini is waited for on its socket, with no reader of
its own, and bytes split anywhere reach the response's reader intact (a real socket, threads)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from app.upstream.client import read_pieces
from app.upstream.waits import HEARTBEAT, Silence
from tests.conftest import BASE

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Scripted:
    """A server on 127.0.0.1 that answers one request with these writes, a float being a pause."""

    def __init__(self, *writes: bytes | float):
        self.writes = writes
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/stream"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.recv(65536)
            for write in self.writes:
                if isinstance(write, float):
                    time.sleep(write)
                else:
                    conn.sendall(write)
            time.sleep(0.2)  # the reader sees the end of the body, not a reset

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve():
    servers: list[Scripted] = []

    def start(*writes: bytes | float) -> Scripted:
        servers.append(Scripted(*writes))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def timed(items) -> list[tuple[float, object]]:
    started = time.monotonic()
    return [(time.monotonic() - started, item) for item in items]


def test_heartbeats_come_while_gemini_is_silent_and_events_as_they_arrive(serve):
    server = serve(HEAD, chunk(b"data: 1\r\n\r\n"), 0.55, chunk(b"data: 2\r\n\r\n"), b"0\r\n\r\n")
    with requests.post(server.url, stream=True, timeout=(2, 5)) as response:
        got = timed(read_pieces(response, heartbeat=0.2))
    items = [item for _, item in got]
    assert items[0] == b"data: 1\r\n\r\n" and items[-1] == b"data: 2\r\n\r\n"
    beats = [at for at, item in got if item is HEARTBEAT]
    assert 2 <= len(beats) <= 3  # one every 0.2 s of the 0.55 s of silence
    assert 0.15 < beats[0] < 0.4 and got[-1][0] > 0.5


def test_several_events_in_one_read_come_at_once(serve):
    # The first read takes all three chunks: the next two are in the reader's buffer, not on the socket.
    server = serve(HEAD + b"".join(chunk(b"data: %d\n\n" % i) for i in range(3)), 0.5, b"0\r\n\r\n")
    with requests.post(server.url, stream=True, timeout=(2, 5)) as response:
        got = timed(read_pieces(response, heartbeat=0.3))
    assert [item for _, item in got[:3]] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]
    assert got[2][0] < 0.1  # never waited for the socket while the buffer held them
    assert [item for _, item in got[3:]] == [HEARTBEAT]


def test_bytes_split_across_a_silence_reach_the_reader_whole(serve):
    whole = chunk(b"data: " + b"x" * 300 + b"\n\n")
    server = serve(HEAD, 0.35, whole[:3], 0.35, whole[3:150], 0.35, whole[150:], b"0\r\n\r\n")
    with requests.post(server.url, stream=True, timeout=(2, 5)) as response:
        got = timed(read_pieces(response, heartbeat=0.1))
    data = [item for _, item in got if item is not HEARTBEAT]
    assert data == [b"data: " + b"x" * 300 + b"\n\n"]  # urllib3 read the chunk as one
    # Heartbeats while nothing came; once a chunk has begun, its read waits for the rest (Gemini is
    # writing it), and the heartbeat waits with it.
    beats = [at for at, item in got if item is HEARTBEAT]
    assert len(beats) >= 2 and max(beats) < 0.4


def test_silence_as_long_as_the_read_timeout_ends_the_stream(serve):
    server = serve(HEAD, chunk(b"data: 1\n\n"), 2.0)
    with requests.post(server.url, stream=True, timeout=(2, 0.5)) as response:
        started = time.monotonic()
        pieces = read_pieces(response, heartbeat=0.2)
        assert next(pieces) == b"data: 1\n\n"
        assert next(pieces) is HEARTBEAT and next(pieces) is HEARTBEAT
        with pytest.raises(TimeoutError):
            next(pieces)
        assert 0.4 < time.monotonic() - started < 1.0


def test_without_heartbeats_the_pieces_are_read_as_they_are(serve):
    server = serve(HEAD, chunk(b"data: 1\n\n"), 0.3, b"0\r\n\r\n")
    with requests.post(server.url, stream=True, timeout=(2, 5)) as response:
        assert list(read_pieces(response, heartbeat=0)) == [b"data: 1\n\n"]


def test_a_mocked_response_has_no_socket_to_wait_on(mocked):
    mocked.post(BASE + "/mocked", body=b"data: 1\n\n")
    with requests.post(BASE + "/mocked", stream=True, timeout=5) as response:
        assert Silence.of(response) is None
        assert b"".join(read_pieces(response, heartbeat=0.1)) == b"data: 1\n\n"
