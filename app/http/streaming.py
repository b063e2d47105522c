"""Streaming responses: heartbeats while Gemini is silent, and the loop that drives a translator."""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Callable, Generator, Iterator
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
READER_STOP_TIMEOUT = 1.0  # seconds a stopping stream waits for its reader to end


class StreamedResponse(Response):
    """A response whose record is finished by the end of its body, not by after_request."""


class StreamTranslator(Protocol):
    """Turns upstream event payloads into bytes for the client; pure, no Flask."""

    def start(self) -> bytes: ...

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def fail(self, err: GatewayError) -> bytes: ...

    # Optional: `heartbeat()` returns what to send instead of the dialect's fixed heartbeat bytes.


def with_heartbeats(source: Iterator, interval: float) -> Generator:
    """Items of `source`, with HEARTBEAT whenever it has been silent for `interval` seconds.

    The source is read in its own (green) thread so a silent upstream never blocks the
    heartbeat; under gunicorn's gevent worker, threading and queue are cooperative. The queue
    is short, so a slow client holds Gemini back instead of piling its answer up in memory.
    When the consumer stops early (close, or an exception), the reader is stopped before this
    returns, so the caller may close the upstream: closing it under a read still blocked in the
    reader would fail ("reentrant call") and leave the connection open.
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

    stop_reader = spawn(pump)
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
        stopped = True  # a reader between reads ends at its next hand-over
        stop_reader()


def _reader_primitives(size: int):
    """How to start the reader (returning how to stop it) and hand items over: a greenlet and gevent's
    queue where gevent has patched threading (a patched Thread and queue.Queue cost several times more
    per stream and per item, for the same cooperative behaviour), else a daemon thread and queue.Queue."""
    gevent_patched = sys.modules.get("gevent.monkey")
    if gevent_patched is not None and gevent_patched.is_module_patched("threading"):
        import gevent.queue

        return _start_greenlet, gevent.queue.Queue(size), gevent.queue.Empty, gevent.queue.Full
    return _start_daemon, queue.Queue(size), queue.Empty, queue.Full


def _start_greenlet(target: Callable[[], None]) -> Callable[[], None]:
    import gevent

    reader = gevent.spawn(target)
    # Killing it interrupts a read blocked on Gemini; urllib3 then closes that connection itself.
    return lambda: reader.kill(block=True, timeout=READER_STOP_TIMEOUT)


def _start_daemon(target: Callable[[], None]) -> Callable[[], None]:
    threading.Thread(target=target, daemon=True).start()
    # A thread cannot be interrupted: it stops at its next hand-over, and closing the upstream
    # waits for its current read (threads serve only tests and development servers).
    return _nothing


def _nothing() -> None:
    pass


class _Raised:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


class _RecordedBody:
    """A stream's body that ends its record when the server closes it, even one never started (a
    generator's `finally` runs only once it has started)."""

    def __init__(self, chunks: Generator[bytes, None, None], end: Callable[[], None]):
        self.chunks = chunks
        self.end = end

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        try:
            self.chunks.close()
        finally:
            self.end()


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
    record, and `heartbeat()` when its heartbeat depends on what it has sent. A failure after the
    status is sent becomes the translator's in-stream error event. Call it from a view: the request's record is
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

    ended = False

    def end() -> None:
        """Close the upstream and finish the record with the tokens so far: once, however the stream ends."""
        nonlocal ended
        if ended:
            return
        ended = True
        # Bookkeeping after the last byte must never cut the client's stream short, nor skip the record.
        try:
            upstream.close()
        except Exception:
            log.exception("closing a stream's upstream response failed")
        try:
            rec.set_usage(getattr(translator, "usage", None))
            finish(rec, 200, sink)
        except Exception:
            log.exception("finishing a stream's record failed")

    def body() -> Generator[bytes, None, None]:
        beats = with_heartbeats(events, interval)
        try:
            yield b""  # sends the status and headers at once
            out = translator.start()
            if out:
                yield out
            for item in beats:
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
            rec.error = rec.error or err.kind
            yield translator.fail(err)
        except GeneratorExit:  # the server closed the body: the client went away
            rec.error = rec.error or "cancelled"
            raise
        except Exception:
            log.exception("stream translation failed")
            rec.error = "api_error"
            yield translator.fail(GatewayError("The gateway hit an internal error mid-stream."))
        except BaseException:  # the worker killed the request
            rec.error = rec.error or "interrupted"
            raise
        finally:
            beats.close()  # stops its reader before the upstream is closed under it
            end()

    rec.stream = rec.ends_with_body = True
    response = StreamedResponse(
        _RecordedBody(body(), end), content_type=content_type, direct_passthrough=True
    )
    response.headers.update(SSE_HEADERS)
    if headers:
        response.headers.update(headers)
    return response
