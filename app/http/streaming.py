"""Streaming responses: heartbeats while Gemini is silent, and the loop that drives a translator."""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from flask import Response

from ..errors import GatewayError
from ..state import state
from ..upstream.client import UpstreamStream
from ..usage.record import finish, record

log = logging.getLogger(__name__)

HEARTBEAT = object()
READ_AHEAD = 8  # upstream events held for a client that reads slower than Gemini writes
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StreamedResponse(Response):
    """A response whose record is finished by the end of its body, not by after_request."""


class StreamTranslator(Protocol):
    """Turns upstream event payloads into bytes for the client; pure, no Flask."""

    def start(self) -> bytes: ...

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def fail(self, err: GatewayError) -> bytes: ...

    # Optional: `heartbeat()` returns what to send instead of the dialect's fixed heartbeat bytes.


def with_heartbeats(source: Iterator, interval: float) -> Iterator:
    """Items of `source`, with HEARTBEAT whenever it has been silent for `interval` seconds.

    The source is read in its own (green) thread so a silent upstream never blocks the
    heartbeat; under gunicorn's gevent worker, threading and queue are cooperative. The queue
    is short, so a slow client holds Gemini back instead of piling its answer up in memory.
    """
    if interval <= 0:
        yield from source
        return
    spawn, items, empty, full = _reader_primitives(READ_AHEAD)
    done = object()
    stopped = False

    def hand_over(item) -> bool:
        while not stopped:
            try:
                items.put(item, timeout=1.0)  # wakes now and then to see if the client left
                return True
            except full:
                continue
        return False

    def pump() -> None:
        try:
            for item in source:
                if not hand_over(item):
                    return
            hand_over(done)
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over(_Raised(exc))

    spawn(pump)
    try:
        while True:
            try:
                item = items.get(timeout=interval)
            except empty:
                yield HEARTBEAT
                continue
            if item is done:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stopped = True  # the reader ends at its next hand-over; the caller closes the upstream


def _reader_primitives(size: int):
    """How to start the reader and hand items over: a greenlet and gevent's queue where gevent
    has patched threading (a patched Thread and queue.Queue cost several times more per stream
    and per item, for the same cooperative behaviour), else a daemon thread and queue.Queue."""
    gevent_patched = sys.modules.get("gevent.monkey")
    if gevent_patched is not None and gevent_patched.is_module_patched("threading"):
        import gevent
        import gevent.queue

        return gevent.spawn, gevent.queue.Queue(size), gevent.queue.Empty, gevent.queue.Full
    return _start_daemon, queue.Queue(size), queue.Empty, queue.Full


def _start_daemon(target: Callable[[], None]) -> None:
    threading.Thread(target=target, daemon=True).start()


class _Raised:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


def stream_response(
    upstream: UpstreamStream,
    translator: StreamTranslator,
    *,
    content_type: str,
    heartbeat: bytes,
    events: Iterator[bytes] | None = None,
    headers: dict | None = None,
    interval: float | None = None,
) -> Response:
    """A streamed response that feeds each event of `upstream` through `translator` at once.

    `events` replaces `upstream.events()` when a view filters them; `interval` the heartbeat interval
    (HEARTBEAT_INTERVAL). The translator may expose `usage` (the latest Gemini usageMetadata) for the
    record, and `heartbeat()` when its heartbeat depends on what it has sent. A failure after the status is sent
    becomes the translator's in-stream error event. Call it from a view: the request's record is
    finished, and the upstream response closed, when the body ends.
    """
    app_state = state()
    rec, sink = record(), app_state.finish
    rec.served_by(upstream)
    if interval is None:
        interval = app_state.settings.current().heartbeat_interval
    beat = getattr(translator, "heartbeat", None)
    if events is None:
        events = upstream.events()

    def body() -> Iterator[bytes]:
        try:
            yield b""  # sends the status and headers at once
            out = translator.start()
            if out:
                yield out
            for item in with_heartbeats(events, interval):
                if item is HEARTBEAT:
                    yield beat() if beat is not None else heartbeat
                    continue
                rec.first_byte()
                out = translator.feed(item)
                if out:
                    yield out
            out = translator.finish()
            if out:
                yield out
        except GatewayError as err:
            rec.error = err.kind
            yield translator.fail(err)
        except Exception:
            log.exception("stream translation failed")
            rec.error = "api_error"
            yield translator.fail(GatewayError("The gateway hit an internal error mid-stream."))
        finally:
            # Bookkeeping after the last byte must never cut the client's stream short.
            try:
                upstream.close()
                rec.set_usage(getattr(translator, "usage", None))
                finish(rec, 200, sink)
            except Exception:
                log.exception("finishing a stream's record failed")

    rec.stream = True
    response = StreamedResponse(body(), content_type=content_type, direct_passthrough=True)
    response.headers.update(SSE_HEADERS)
    if headers:
        response.headers.update(headers)
    return response
