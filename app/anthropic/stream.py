"""Gemini's SSE stream -> Anthropic's Messages stream events (`event:` lines, strict block order)."""

from __future__ import annotations

from .. import jsonx
from ..errors import GatewayError
from ..http.sse import event_frame
from ..upstream.answers import stream_event
from .errors import error_body
from .from_gemini import ContentBuilder, usage
from .ids import message_id

CONTENT_TYPE = "text/event-stream; charset=utf-8"
PING = b'event: ping\ndata: {"type": "ping"}\n\n'


def _frame(event: dict) -> bytes:
    return event_frame(event["type"].encode(), jsonx.dumps(event))


class _EventSink:
    """Writes blocks as content_block_start / _delta / _stop events with increasing indices."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.index = -1

    def start(self, block: dict) -> None:
        self.index += 1
        self.out.append(_frame({"type": "content_block_start", "index": self.index, "content_block": block}))

    def delta(self, delta: dict) -> None:
        self.out.append(_frame({"type": "content_block_delta", "index": self.index, "delta": delta}))

    def stop(self) -> None:
        self.out.append(_frame({"type": "content_block_stop", "index": self.index}))

    def tool_use(self, block: dict) -> None:
        self.start({**block, "input": {}})
        self.delta({"type": "input_json_delta", "partial_json": jsonx.dumps(block["input"]).decode()})
        self.stop()

    def image(self, media_type: str, data: str) -> None:
        pass  # stream clients get the Markdown text only: an image block is not in their event grammar

    def take(self) -> bytes:
        out, self.out = b"".join(self.out), []
        return out


class MessageStream:
    """A stream translator for `app.streaming.stream_response`: each Gemini event in, events out."""

    def __init__(
        self,
        *,
        model: str,
        thinking: bool = False,
        single_tool: bool = False,
        stop_sequences: list[str] | None = None,
    ):
        self.model = model
        self._sink = _EventSink()
        self._builder = ContentBuilder(
            self._sink, thinking=thinking, single_tool=single_tool, stop_sequences=stop_sequences
        )

    @property
    def usage(self) -> dict | None:
        return self._builder.usage

    @property
    def done(self) -> bool:
        """A stop sequence matched: nothing more from upstream is needed."""
        return self._builder.done

    def start(self) -> bytes:
        # Sent at once so the client sees the message before Gemini's first token; the real
        # input count follows in message_delta, which clients take as the cumulative total.
        message: dict = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage(None), "service_tier": "standard"},
        }
        return _frame({"type": "message_start", "message": message})

    def feed(self, data: bytes) -> bytes:
        self._builder.feed(stream_event(data))
        return self._sink.take()

    def finish(self) -> bytes:
        reason = self._builder.finish()
        self._sink.out.append(
            _frame(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": self._builder.stop_sequence},
                    "usage": usage(self._builder.usage),
                }
            )
        )
        self._sink.out.append(_frame({"type": "message_stop"}))
        return self._sink.take()

    def fail(self, err: GatewayError) -> bytes:
        return event_frame(b"error", jsonx.dumps(error_body(err)))
