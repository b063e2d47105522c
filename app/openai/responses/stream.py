"""Gemini's SSE events as Responses API stream events: `event: <type>` frames numbered in order, from
`response.created` to exactly one of `response.completed`, `response.incomplete` or `response.failed`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ... import jsonx
from ...errors import GatewayError
from ...http.sse import event_frame
from ...translate.finish import cut_short
from ...upstream.answers import stream_event
from ..errors import SHAPE_ERRORS, malformed_answer
from .from_gemini import OutputBuilder, finished, shown, usage

CONTENT_TYPE = "text/event-stream; charset=utf-8"
_TERMINAL = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
}
# An error's kind as the `code` of a failed response's error (OpenAI's codes; Codex retries on others).
_FAILED_CODES = {"rate_limit": "rate_limit_exceeded", "invalid_request": "invalid_prompt"}


class EventSink:
    """Writes each change as an SSE frame, numbered; items as the client may see them."""

    def __init__(self, include_encrypted: bool):
        self.include_encrypted = include_encrypted
        self.sequence = 0
        self._out: list[bytes] = []

    def event(self, kind: str, fields: dict) -> None:
        if "item" in fields:
            fields = {**fields, "item": shown(fields["item"], self.include_encrypted)}
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        self._out.append(event_frame(kind.encode(), jsonx.dumps(payload)))

    def take(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out


@dataclass
class ResponseStream:
    """A stream translator for `app.http.streaming.stream_response`.

    `on_finish(response)` runs before the terminal event is written (it stores the response, so a
    client that continues from it at once finds it) and returns the response as it is to be shown.
    """

    response: dict
    builder: OutputBuilder
    sink: EventSink
    on_finish: Callable[[dict], dict] | None = None
    _started: bool = field(default=False, init=False)

    @property
    def usage(self) -> dict | None:
        return self.builder.usage

    def _lifecycle(self, kind: str, response: dict) -> None:
        self.sink.event(kind, {"response": shown(response, self.sink.include_encrypted)})

    def start(self) -> bytes:
        # Sent before Gemini says anything, so the client sees the response begin at once.
        self._begin()
        return self.sink.take()

    def _begin(self) -> None:
        self._started = True
        self._lifecycle("response.created", self.response)
        self._lifecycle("response.in_progress", self.response)

    def feed(self, data: bytes) -> bytes:
        event = stream_event(data)
        try:
            self.builder.feed(event)
        except SHAPE_ERRORS:
            raise malformed_answer() from None
        return self.sink.take()

    def finish(self) -> bytes:
        if not (self.builder.finish_reason or self.builder.blocked):
            raise cut_short()  # Gemini never said why it stopped: response.failed, never completed
        try:
            final = finished(self.response, self.builder)
        except SHAPE_ERRORS:
            raise malformed_answer() from None
        if self.on_finish is not None:
            final = self.on_finish(final)
        self._lifecycle(_TERMINAL[final["status"]], final)
        return self.sink.take()

    def fail(self, err: GatewayError) -> bytes:
        """`response.failed` (never a bare error frame: the SDKs raise on one instead of reading it)."""
        if not self._started:
            self._begin()
        message = err.message
        if err.retry_after is not None:
            message += f" Please try again in {max(1, math.ceil(err.retry_after))}s."
        for item in self.builder.items:
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"  # cut short
        failed = {
            **self.response,
            "status": "failed",
            "error": {"code": _FAILED_CODES.get(err.kind, "server_error"), "message": message},
            "output": self.builder.items,
            "usage": usage(self.builder.usage),
        }
        self._lifecycle("response.failed", failed)
        return self.sink.take()
