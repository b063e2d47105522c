"""Gemini's SSE events as OpenAI `chat.completion.chunk` events, translated one event at a time."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from .. import jsonx
from ..errors import GatewayError
from ..translate.finish import block_reason, cut_short
from ..translate.parts import candidate_parts
from ..translate.signatures import CallRef
from ..upstream.answers import stream_event
from .errors import SHAPE_ERRORS, error_body, malformed_answer
from .from_gemini import AUDIO_TTL, Choice, finish_reason, logprobs, usage

DONE = b"data: [DONE]\n\n"
HEARTBEAT = b": ping\n\n"  # an SSE comment: OpenAI clients skip it
CONTENT_TYPE = "text/event-stream; charset=utf-8"


class ChatCompletionStream:
    """A stream translator (see app/streaming.py): one stable id, role first, deltas, finish, usage, [DONE]."""

    def __init__(
        self,
        *,
        model: str,
        created: int,
        n: int = 1,
        include_usage: bool = False,
        parallel_tool_calls: bool = True,
        audio_format: str | None = None,
        remember: Callable[[dict[str, CallRef]], None] | None = None,
    ):
        """`remember(carried)` keeps what new tool call ids stand for before they are sent."""
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.usage: dict | None = None  # the latest Gemini usageMetadata, for accounting
        self._choices = {
            i: Choice(i, parallel_tool_calls=parallel_tool_calls, audio_format=audio_format) for i in range(n)
        }
        self._parallel_tool_calls = parallel_tool_calls
        self._audio_format = audio_format
        self._ended = False  # Gemini said why it stopped: a stream without it was cut short
        self._remember = remember

    def _frame(self, choices: list[dict], final_usage: dict | None = None) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = final_usage
        return b"data: " + jsonx.dumps(chunk) + b"\n\n"

    def _choice(self, index: int) -> Choice:
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = Choice(
                index, parallel_tool_calls=self._parallel_tool_calls, audio_format=self._audio_format
            )
        return choice

    def start(self) -> bytes:
        # Sent before Gemini says anything, so the client sees the stream open at once.
        return b"".join(
            self._frame(
                [
                    {
                        "index": i,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
            for i in self._choices
        )

    def feed(self, data: bytes) -> bytes:
        event = stream_event(data)
        try:
            out = self._feed(event)
        except SHAPE_ERRORS:
            raise malformed_answer() from None
        if self._remember is not None:
            carried = {}
            for choice in self._choices.values():
                if choice.carried:
                    carried.update(choice.carried)
                    choice.carried.clear()
            if carried:
                self._remember(carried)  # before the ids reach the client, who may send them back at once
        return out

    def _feed(self, event: dict) -> bytes:
        if isinstance(event.get("usageMetadata"), dict):
            self.usage = event["usageMetadata"]
        candidates = event.get("candidates")
        if not candidates:
            block = block_reason(event)
            if not block:
                return b""
            self._ended = True
            return b"".join(
                self._finish(choice, "content_filter", {"refusal": f"Gemini blocked the prompt ({block})."})
                for choice in self._choices.values()
                if not choice.finished
            )
        out = []
        for position, candidate in enumerate(candidates):
            if not isinstance(candidate, dict):
                continue
            choice = self._choice(candidate.get("index", position))
            if choice.finished:
                continue
            delta = choice.delta(candidate_parts(candidate))
            if "audio" in delta:
                delta["audio"]["expires_at"] = self.created + AUDIO_TTL
            result = candidate.get("logprobsResult")
            if delta or result:
                out.append(
                    self._frame(
                        [
                            {
                                "index": choice.index,
                                "delta": delta,
                                "logprobs": logprobs(result),
                                "finish_reason": None,
                            }
                        ]
                    )
                )
            reason = candidate.get("finishReason")
            if reason:
                self._ended = True
                out.append(
                    self._finish(
                        choice, finish_reason(reason, choice.tool_calls > 0, candidate.get("finishMessage"))
                    )
                )
        return b"".join(out)

    def _finish(self, choice: Choice, reason: str, delta: dict | None = None) -> bytes:
        choice.finished = True
        return self._frame(
            [{"index": choice.index, "delta": delta or {}, "logprobs": None, "finish_reason": reason}]
        )

    def finish(self) -> bytes:
        if not self._ended:
            raise cut_short()
        out = [
            self._finish(choice, finish_reason(None, choice.tool_calls > 0))
            for choice in self._choices.values()
            if not choice.finished
        ]
        if self.include_usage:
            out.append(self._frame([], usage(self.usage)))
        out.append(DONE)
        return b"".join(out)

    def fail(self, err: GatewayError) -> bytes:
        return b"data: " + jsonx.dumps(error_body(err)) + b"\n\n"
