"""Gemini's SSE stream -> Anthropic's Messages stream events (`event:` lines, strict block order)."""

from __future__ import annotations

from .. import jsonx
from ..errors import GatewayError
from ..http.sse import event_frame
from ..translate.finish import cut_short
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
    """A stream translator for `app.http.streaming.stream_response`: each Gemini event in, events out.

    `message_start` waits for Gemini's first event, so its `usage.input_tokens` is the prompt's real
    count; when a heartbeat must go first (a thinking model's silence, a fake stream's wait) it goes
    then, with `estimated_input_tokens` (the real count follows in `message_delta`).
    """

    def __init__(
        self,
        *,
        model: str,
        thinking: bool = False,
        single_tool: bool = False,
        stop_sequences: list[str] | None = None,
        estimated_input_tokens: int = 1,
    ):
        self.model = model
        self.estimate = max(1, estimated_input_tokens)
        self._started = False
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
        return b""  # the headers go at once; message_start waits for the prompt's token count

    def _message_start(self, meta: dict | None) -> bytes:
        self._started = True
        counts = usage(meta)
        if counts["input_tokens"] + counts["cache_read_input_tokens"] <= 0:
            counts["input_tokens"] = self.estimate
        message: dict = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**counts, "service_tier": "standard"},
        }
        return _frame({"type": "message_start", "message": message})

    def heartbeat(self) -> bytes:
        return PING if self._started else self._message_start(None) + PING

    def feed(self, data: bytes) -> bytes:
        event = stream_event(data)
        head = b"" if self._started else self._message_start(event.get("usageMetadata"))
        self._builder.feed(event)
        return head + self._sink.take()

    def finish(self) -> bytes:
        if not self._builder.ended:
            raise cut_short()
        head = b"" if self._started else self._message_start(None)
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
        return head + self._sink.take()

    def fail(self, err: GatewayError) -> bytes:
        return event_frame(b"error", jsonx.dumps(error_body(err)))
