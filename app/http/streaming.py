"""Streaming responses: heartbeats while Gemini is silent, and the loop that drives a translator."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from typing import Protocol

from flask import Response

from ..errors import GatewayError
from ..state import state
from ..upstream.waits import Heartbeat
from ..usage.record import ServedBy, finish, record

log = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# What a source's events give when there is a heartbeat to send (app.upstream.waits).
Events = Iterator[bytes | Heartbeat]


class StreamedResponse(Response):
    """A response whose record is finished by the end of its body, not by after_request."""


class StreamTranslator(Protocol):
    """Turns upstream event payloads into bytes for the client; pure, no Flask."""

    def start(self) -> bytes: ...

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def fail(self, err: GatewayError) -> bytes: ...

    # Optional: `heartbeat()` returns what to send instead of the dialect's fixed heartbeat bytes.


class StreamSource(ServedBy, Protocol):
    """What a stream reads: `events(heartbeat)` gives each event, and HEARTBEAT whenever the source has
    been silent for `heartbeat` seconds (0: never), without a thread or a greenlet of its own; which key
    served it (for the record); `close` frees it."""

    def events(self, heartbeat: float = 0.0) -> Events: ...

    def close(self) -> None: ...


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
    upstream: StreamSource,
    translator: StreamTranslator,
    *,
    content_type: str,
    heartbeat: bytes,
    events: Callable[[float], Events] | None = None,
    headers: dict | None = None,
    interval: float | None = None,
) -> Response:
    """A streamed response that feeds each event of `upstream` through `translator` at once.

    `events(interval)` replaces `upstream.events` when a view filters them; `interval` is the heartbeat
    interval (HEARTBEAT_INTERVAL). The translator may expose `usage` (the latest Gemini usageMetadata)
    for the record, and `heartbeat()` when its heartbeat depends on what it has sent. A failure after
    the status is sent becomes the translator's in-stream error event. Call it from a view: the request's
    record is finished, and the upstream response closed, when the body ends.

    The body is read and written by the request's own greenlet: while Gemini is silent it waits on the
    upstream socket (app.upstream.waits), so a stream costs no reader greenlet, queue or timer of its own.
    """
    app_state = state()
    rec, sink = record(), app_state.finish
    rec.served_by(upstream)
    if interval is None:
        interval = app_state.settings.current().heartbeat_interval
    beat = getattr(translator, "heartbeat", None)
    source = events or upstream.events

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
        beats = source(interval)
        try:
            yield b""  # sends the status and headers at once
            out = translator.start()
            if out:
                yield out
            for item in beats:
                if isinstance(item, Heartbeat):
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
            rec.attempts += err.attempts
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
            close = getattr(beats, "close", None)
            if close is not None:
                close()  # the source's generators end (their `finally`) before the upstream closes
            end()

    rec.stream = rec.ends_with_body = True
    response = StreamedResponse(
        _RecordedBody(body(), end), content_type=content_type, direct_passthrough=True
    )
    response.headers.update(SSE_HEADERS)
    if headers:
        response.headers.update(headers)
    return response
