"""Impatient clients: a hang-up mid-stream closes the upstream call at once and leaks nothing, and a
client that reads slowly holds up no one else on its worker."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.reliability.procs import hang_up, open_fds, open_sockets, open_stream, rss_kib, worker_pids
from tests.reliability.wire import BY_NAME, GEMINI_HEADERS, MODEL, STREAMS, Variant, chunk, read

TICK = chunk("tick")
ARRAY = Variant(
    "gemini-array",
    "gemini",
    f"/v1beta/models/{MODEL}:streamGenerateContent",
    BY_NAME["gemini-sse"].body,
    GEMINI_HEADERS,
    stream=True,
)
HANGING_UP = STREAMS + (ARRAY,)


def tagged(variant: Variant, tag: str) -> dict:
    """The variant's body with `tag` in its prompt, to find its upstream call among many."""
    body = dict(variant.body)
    if variant.dialect == "gemini":
        body["contents"] = [{"role": "user", "parts": [{"text": tag}]}]
    elif variant.dialect == "responses":
        body["input"] = tag
    else:
        body["messages"] = [{"role": "user", "content": tag}]
    return body


def upstream_call(upstream, tag: str) -> dict:
    (call,) = [c for c in upstream.calls() if tag in str(c["body"])]
    return call


def wait_closed(upstream, tags: list[str], timeout: float = 5.0) -> dict[str, float]:
    """When the fake saw each tagged call's connection close."""
    deadline = time.monotonic() + timeout
    while True:
        closed = {}
        for call in upstream.calls():
            for tag in tags:
                if tag in str(call["body"]) and call["closed"]:
                    closed[tag] = call["closed"]
        if len(closed) == len(tags) or time.monotonic() > deadline:
            return closed
        time.sleep(0.05)


@pytest.fixture(scope="module", params=[0, 0.2], ids=["no-heartbeat", "heartbeat"])
def gw(request, start_gateway):
    return start_gateway(HEARTBEAT_INTERVAL=request.param)


@pytest.mark.parametrize("how", ["rst", "fin"])
@pytest.mark.parametrize("variant", HANGING_UP, ids=[v.name for v in HANGING_UP])
def test_a_hang_up_mid_stream_closes_the_upstream_call_within_a_second(gw, upstream, variant, how):
    upstream.script({"match": ":streamGenerateContent", "events": [TICK], "count": 200, "interval": 0.05})
    tag = f"hang-up {variant.name} {how}"
    sock, _ = open_stream(gw, variant.path, tagged(variant, tag), variant.headers, until=b"tick")
    if how == "rst":
        gone = hang_up(sock)
    else:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        gone = time.time()
    closed = wait_closed(upstream, [tag])
    assert tag in closed, "the upstream call is still open"
    assert closed[tag] - gone < 1.0


def test_a_thousand_hang_ups_leak_no_connections_and_no_memory(start_gateway, upstream):
    gw = start_gateway(HEARTBEAT_INTERVAL=0.5, WEB_CONCURRENCY=1)
    (worker,) = worker_pids(gw)
    upstream.script(
        {"match": ":streamGenerateContent", "events": [TICK], "count": 400, "interval": 0.02, "repeat": -1}
    )
    variants = [BY_NAME["gemini-sse"], BY_NAME["openai-stream"], BY_NAME["anthropic-stream"], ARRAY]
    gone: dict[str, float] = {}

    def cycle(n: int) -> None:
        variant = variants[n % len(variants)]
        tag = f"cycle-{n}-"
        sock, _ = open_stream(gw, variant.path, tagged(variant, tag), variant.headers, until=b"tick")
        gone[tag] = hang_up(sock)

    def run(numbers) -> None:
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(cycle, numbers))
        closed = wait_closed(upstream, [f"cycle-{n}-" for n in numbers], timeout=10)
        late = {tag: closed.get(tag, float("inf")) - gone[tag] for tag in (f"cycle-{n}-" for n in numbers)}
        assert max(late.values()) < 1.0, sorted(late.items(), key=lambda kv: -kv[1])[:5]

    run(range(200))  # warm up: pools, caches and the allocator reach their working size
    time.sleep(0.5)
    base_fds, base_sockets, base_rss = open_fds(worker), open_sockets(worker), rss_kib(worker)
    upstream.reset()
    upstream.script(
        {"match": ":streamGenerateContent", "events": [TICK], "count": 400, "interval": 0.02, "repeat": -1}
    )
    run(range(200, 1200))
    time.sleep(0.5)
    fds, sockets, rss = open_fds(worker), open_sockets(worker), rss_kib(worker)
    assert sockets <= base_sockets + 2 and fds <= base_fds + 2, (base_fds, fds, base_sockets, sockets)
    print(f"worker fds {base_fds} -> {fds}, sockets {base_sockets} -> {sockets}, RSS {base_rss} -> {rss} KiB")
    assert rss - base_rss < 8 * 1024, f"RSS grew from {base_rss} KiB to {rss} KiB"
    # and the worker still answers
    assert requests.get(gw.url("/healthz"), timeout=5).status_code == 200


def test_a_slow_reader_holds_up_no_one_else_on_its_worker(gw, upstream):
    assert len(worker_pids(gw)) == 1  # the slow client and the others share the one worker
    big = chunk("x" * 256 * 1024)
    slow = BY_NAME["openai-stream"]
    events = [big] * 39 + [chunk("x" * 256 * 1024, finish="STOP")]
    upstream.script({"match": ":streamGenerateContent", "events": events})
    # The slow client's window is tiny and it reads nothing: the gateway's writes to it block.
    sock, first = open_stream(gw, slow.path, tagged(slow, "slow"), slow.headers, until=b"data: ", rcvbuf=4096)
    try:
        timings = []

        def fast(n: int) -> None:
            variant = (BY_NAME["gemini"], BY_NAME["openai-stream"], BY_NAME["anthropic"])[n % 3]
            started = time.monotonic()
            response = variant.post(gw, timeout=10)
            timings.append(time.monotonic() - started)
            assert response.status_code == 200 and read(variant, response).error is None

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(fast, range(24)))
        assert max(timings) < 1.0, timings
        # The slow client then gets its whole answer, intact.
        sock.settimeout(10)
        pieces = [first]
        while b"[DONE]" not in pieces[-1][-64:]:
            pieces.append(sock.recv(1 << 20))
            assert pieces[-1], "the slow stream ended early"
        received = b"".join(pieces)
        assert received.count(b'"content":"' + b"x" * 1024) == 40
    finally:
        sock.close()


def test_a_slow_reader_holds_back_upstream_instead_of_piling_its_answer_up_in_memory(gw, upstream, request):
    (worker,) = worker_pids(gw)
    variant = BY_NAME["gemini-sse"]
    base_rss = rss_kib(worker)
    upstream.script({"match": ":streamGenerateContent", "events": [chunk("y" * 512 * 1024)], "count": 96})
    sock, _ = open_stream(
        gw, variant.path, tagged(variant, "held back"), variant.headers, until=b"data: ", rcvbuf=4096
    )
    try:
        time.sleep(2)
        call = upstream_call(upstream, "held back")
        grown = rss_kib(worker) - base_rss
        # 48 MiB were on offer: at most what socket buffers hold may have left Gemini, not all of it.
        assert call["closed"] is None, "the gateway read the whole answer while its client read nothing"
        assert grown < 24 * 1024, f"the worker holds {grown} KiB for one slow client"
    finally:
        hang_up(sock)
