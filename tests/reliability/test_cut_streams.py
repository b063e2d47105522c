"""Every stream ends in exactly one usage record with the tokens streamed so far, however it ends: cut by
the client at any point (heartbeats on, in every dialect), or cut by a worker told to stop."""

from __future__ import annotations

import random
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.store.sqlite import SQLiteStore
from tests.reliability.procs import hang_up, http_request, worker_pids
from tests.reliability.wire import BY_NAME, GEMINI_HEADERS, MODEL, STREAMS, WHOLE, Variant, assert_error_shape

ARRAY = Variant(
    "gemini-array",
    "gemini",
    f"/v1beta/models/{MODEL}:streamGenerateContent",
    BY_NAME["gemini-sse"].body,
    GEMINI_HEADERS,
    stream=True,
)
EVERY_STREAM = STREAMS + (ARRAY,)
PROMPT_TOKENS = 7


def counted(n: int) -> dict:
    """Stream event n (from 1): Gemini's usage is cumulative, so event n says n output tokens so far."""
    return {
        "candidates": [{"content": {"parts": [{"text": f"w{n} "}], "role": "model"}, "index": 0}],
        "usageMetadata": {
            "promptTokenCount": PROMPT_TOKENS,
            "candidatesTokenCount": n,
            "totalTokenCount": PROMPT_TOKENS + n,
        },
        "modelVersion": MODEL,
    }


def tagged(variant: Variant, tag: str) -> dict:
    body = dict(variant.body)
    if variant.dialect == "gemini":
        body["contents"] = [{"role": "user", "parts": [{"text": tag}]}]
    else:
        body["messages"] = [{"role": "user", "content": tag}]
    return body


class Stream:
    """A streaming request on a raw socket: its request id, and how many events the client has seen."""

    def __init__(self, gateway, variant: Variant, tag: str):
        self.variant = variant
        self.sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
        self.sock.sendall(http_request(variant.path, tagged(variant, tag), variant.headers))
        self.received = b""
        head = self._until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].split()[1] == "200", head
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        self.request_id = {k.lower(): v for k, v in headers.items()}["x-request-id"]

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.received:
            piece = self.sock.recv(65536)
            if not piece:
                raise AssertionError(f"the stream ended before {marker!r}: {self.received[-300:]!r}")
            self.received += piece
        head, _, self.received = self.received.partition(marker)
        return head

    def seen(self) -> int:
        """The highest event number the client has received whole (each event's text is `w<n> `)."""
        numbers = [int(n) for n in _numbers(self.received)]
        return max(numbers, default=0)

    def read_events(self, n: int) -> None:
        while self.seen() < n:
            piece = self.sock.recv(65536)
            assert piece, f"the stream ended early: {self.received[-300:]!r}"
            self.received += piece

    def drain(self) -> None:
        """Take in whatever has already arrived, so `seen` counts what the gateway has written."""
        self.sock.settimeout(0.05)
        try:
            while piece := self.sock.recv(65536):
                self.received += piece
        except TimeoutError:
            pass
        self.sock.settimeout(10)

    def read_to_end(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            while piece := self.sock.recv(65536):
                self.received += piece
        except (TimeoutError, ConnectionResetError):
            pass
        self.sock.close()


def _numbers(data: bytes):
    text = data.decode("utf-8", "replace")
    at = text.find("w")
    while at >= 0:
        end = at + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end > at + 1 and end < len(text) and text[end] == " ":
            yield text[at + 1 : end]
        at = text.find("w", at + 1)


def usage_rows(gateway) -> dict[str, list[dict]]:
    store = SQLiteStore(Path(gateway.env["DATA_DIR"]) / "gemgate.db")
    try:
        rows: dict[str, list[dict]] = {}
        for row in store.usage(0, 2e9):
            rows.setdefault(row["request_id"], []).append(row)
        return rows
    finally:
        store.close()


def wait_for_records(gateway, ids: list[str], timeout: float = 10.0) -> dict[str, list[dict]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = usage_rows(gateway)
        if all(i in rows for i in ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_streams_cut_at_random_points_in_every_dialect_each_end_in_one_record(start_gateway, upstream):
    gateway = start_gateway(HEARTBEAT_INTERVAL=0.1, WEB_CONCURRENCY=1)
    total = 60
    # Gaps longer than the heartbeat interval: the reader is blocked on Gemini when most cuts come.
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [counted(n) for n in range(1, total + 1)],
            "interval": 0.15,
            "repeat": -1,
        }
    )
    rng = random.Random(13)
    cuts: list[tuple[Stream, int]] = []
    for round_ in range(3):
        streams = [Stream(gateway, v, f"cut {v.name} {round_}") for v in EVERY_STREAM]
        wanted = {s.request_id: rng.randint(1, 8) for s in streams}
        for stream in streams:
            stream.read_events(wanted[stream.request_id])
        for stream in streams:
            stream.drain()
            seen = stream.seen()
            if rng.random() < 0.5:
                hang_up(stream.sock)  # RST, as a killed client
            else:
                stream.sock.shutdown(socket.SHUT_RDWR)
                stream.sock.close()
            cuts.append((stream, seen))
    rows = wait_for_records(gateway, [s.request_id for s, _ in cuts])
    for stream, seen in cuts:
        found = rows.get(stream.request_id, [])
        assert len(found) == 1, (stream.variant.name, found)
        (row,) = found
        assert row["status"] == 200 and row["stream"] is True
        assert row["prompt_tokens"] == PROMPT_TOKENS, (stream.variant.name, row)
        # The tokens the client saw are charged; at most the few events in flight when it left are added.
        assert seen <= row["completion_tokens"] <= seen + 3, (stream.variant.name, seen, row)
        assert row["error"] == "cancelled", row
    assert "Traceback" not in gateway.proc.output()
    time.sleep(0.3)
    assert sum(c["closed"] is None for c in upstream.calls()) == 0, "an upstream call was left open"


def test_requests_still_running_when_the_worker_is_told_to_stop_each_end_in_one_record(
    start_gateway, upstream
):
    # The master kills the worker when its graceful timeout ends: the requests must be ended before.
    gateway = start_gateway(
        HEARTBEAT_INTERVAL=0.1, WEB_CONCURRENCY=1, GUNICORN_CMD_ARGS="--graceful-timeout 3"
    )
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [counted(n) for n in range(1, 1001)],
            "interval": 0.1,
            "repeat": -1,
        },
        {"match": ":generateContent", "body": counted(1), "delay": 30, "repeat": -1},
    )
    streams = [Stream(gateway, v, f"shutdown {v.name}") for v in EVERY_STREAM]
    for stream in streams:
        stream.read_events(3)
    # Whole answers Gemini is slow to give: a thinking model, minutes long.
    slow = {v.name: v for v in WHOLE}
    with ThreadPoolExecutor(len(slow)) as pool:
        waiting = {name: pool.submit(v.post, gateway, 10) for name, v in slow.items()}
        time.sleep(0.5)
        assert len(worker_pids(gateway)) == 1
        stopped = time.monotonic()
        gateway.proc.proc.send_signal(signal.SIGTERM)
        for stream in streams:
            stream.read_to_end(timeout=8)
        answers = {name: future.result() for name, future in waiting.items()}
    gateway.proc.proc.wait(timeout=10)
    assert time.monotonic() - stopped < 6
    rows = usage_rows(gateway)
    for stream in streams:
        found = rows.get(stream.request_id, [])
        assert len(found) == 1, (stream.variant.name, found, gateway.proc.output()[-2000:])
        (row,) = found
        seen = stream.seen()
        assert seen >= 3 and seen <= row["completion_tokens"] <= seen + 3, (stream.variant.name, seen, row)
        assert row["error"] == "interrupted", row
        assert b"restarting" in stream.received  # the client was told, in its dialect
    for name, answer in answers.items():
        variant = slow[name]
        assert answer.status_code == (529 if variant.dialect == "anthropic" else 503), answer.text
        assert_error_shape(variant, answer.json())
        (row,) = rows[answer.headers["x-request-id"]]
        assert row["status"] == answer.status_code and row["error"] == "interrupted"
    assert "SIGKILL" not in gateway.proc.output()


@pytest.fixture(autouse=True)
def _no_leftover_script(upstream):
    yield
    upstream.reset()
