"""Gemini GenerateContentResponse (whole or streamed) -> Anthropic Message content, stop reason and usage."""

from __future__ import annotations

from typing import Protocol

from ..budget import MAX_STOP_SEQUENCE_LENGTH, MAX_STOP_SEQUENCES
from ..errors import InvalidRequest
from ..translate import parts as gemini_parts
from ..translate.finish import Outcome, block_reason, outcome, tool_call_failure
from ..translate.parts import Kind, MarkdownText
from ..translate.usage import count, token_counts
from .ids import message_id, thinking_signature, tool_use_id


def stop_reason(
    finish: str | None, *, tool_use: bool, blocked: bool, stop_sequence: str | None, message: object = None
) -> str:
    """Anthropic's stop reason for a candidate's; a botched tool call (after the generate step asked
    once more) is an error, never an end_turn a client could take for an empty answer."""
    if stop_sequence is not None:
        return "stop_sequence"
    found = outcome(finish)
    if blocked or found is Outcome.REFUSAL:
        return "refusal"
    if found is Outcome.TOOL_FAILURE:
        raise tool_call_failure(str(finish), message)
    if found is Outcome.LENGTH:
        return "max_tokens"
    # Gemini finishes a function-call answer with STOP; Anthropic says tool_use.
    return "tool_use" if tool_use else "end_turn"


def usage(meta: dict | None) -> dict:
    """Anthropic usage from Gemini usageMetadata: thoughts count as output, cache reads apart from input."""
    counts = token_counts(meta)
    return {
        "input_tokens": max(counts.input - counts.cached, 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": counts.cached,
        "output_tokens": counts.output,
    }


def check_stop_sequences(sequences: list[str]) -> list[str]:
    """The non-empty stop sequences, refused with a 400 past MAX_STOP_SEQUENCES or MAX_STOP_SEQUENCE_LENGTH
    (each chunk of the answer is scanned for every one of them)."""
    kept = [s for s in sequences if s]
    if len(kept) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(
            f"At most {MAX_STOP_SEQUENCES} stop sequences are accepted; got {len(kept)}.",
            param="stop_sequences",
        )
    for i, seq in enumerate(sequences):
        if len(seq) > MAX_STOP_SEQUENCE_LENGTH:
            raise InvalidRequest(
                f"A stop sequence may be at most {MAX_STOP_SEQUENCE_LENGTH} characters long.",
                param=f"stop_sequences[{i}]",
            )
    return kept


class StopScanner:
    """Stop sequences applied by the gateway: Gemini's STOP does not say a sequence matched, so the
    text is cut here, holding back only a tail that could still begin a sequence."""

    def __init__(self, sequences: list[str]):
        self.sequences = [s for s in sequences if s]
        self._held = ""

    def feed(self, text: str) -> tuple[str, str | None]:
        """(text safe to send now, the sequence that matched or None)."""
        buf = self._held + text
        best: tuple[int, str] | None = None
        for seq in self.sequences:
            at = buf.find(seq)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, seq)
        if best is not None:
            self._held = ""
            return buf[: best[0]], best[1]
        keep = 0
        for seq in self.sequences:
            # The longest tail of `buf` that begins `seq` (and is shorter than it): only where seq's first
            # character is, so a chunk costs about its length, not the square of the sequence's.
            at = buf.find(seq[0], max(len(buf) - len(seq) + 1, 0), len(buf) - keep)
            while at >= 0:
                if seq.startswith(buf[at:]):
                    keep = len(buf) - at
                    break
                at = buf.find(seq[0], at + 1, len(buf) - keep)
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep], None

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


class Sink(Protocol):
    """Where content blocks go: into a Message, or out as stream events."""

    def start(self, block: dict) -> None: ...

    def delta(self, delta: dict) -> None: ...

    def stop(self) -> None: ...

    def tool_use(self, block: dict) -> None: ...

    def image(self, media_type: str, data: str) -> None: ...


class ContentBuilder:
    """Gemini parts, response by response, into Anthropic blocks: one block open at a time, in order.

    Thought parts become a thinking block carrying Gemini's thoughtSignature; function calls become
    tool_use blocks whose id carries the call's own signature. Shared by whole and streamed answers.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        thinking: bool = False,
        single_tool: bool = False,
        stop_sequences: list[str] | None = None,
    ):
        self.sink = sink
        self.thinking = thinking  # the client asked for thinking blocks
        self.single_tool = single_tool  # disable_parallel_tool_use
        self.scanner = StopScanner(stop_sequences) if stop_sequences else None
        self.usage: dict | None = None
        self.finish_reason: str | None = None
        self.finish_message: object = None  # Gemini's words on a botched tool call
        self.blocked = False
        self.stop_sequence: str | None = None
        self.done = False  # a stop sequence matched: the rest of the answer is dropped
        self.tools = 0
        self._open: str | None = None
        self._blocks = 0
        self._signature: str | None = None  # for the open thinking block
        self._markdown = MarkdownText()  # text blocks: answer text, code and media as Markdown

    def feed(self, response: dict) -> None:
        if self.done:
            return
        meta = response.get("usageMetadata")
        if isinstance(meta, dict):
            self.usage = meta
        if block_reason(response):
            self.blocked = True
        candidates = response.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else None
        if not isinstance(candidate, dict):
            return
        parts = gemini_parts.candidate_parts(candidate)
        signature = gemini_parts.first_signature(parts)
        for part in parts:
            self._part(part, signature)
            if self.done:
                return
        if candidate.get("finishReason"):
            self.finish_reason = candidate["finishReason"]
            self.finish_message = candidate.get("finishMessage")

    @property
    def ended(self) -> bool:
        """Gemini said why it stopped (or a stop sequence did): a stream without it was cut short."""
        return bool(self.finish_reason) or self.blocked or self.done

    def finish(self) -> str:
        """Close what is open; the stop reason."""
        self._close()
        return stop_reason(
            self.finish_reason,
            tool_use=self.tools > 0,
            blocked=self.blocked,
            stop_sequence=self.stop_sequence,
            message=self.finish_message,
        )

    # -- parts ------------------------------------------------------------------------
    def _part(self, part: dict, chunk_signature: str | None) -> None:
        own = gemini_parts.signature(part)
        found = gemini_parts.kind(part)
        if found is Kind.THOUGHT:
            if self._open != "thinking":
                self._close()
                self._start({"type": "thinking", "thinking": "", "signature": ""})
            self._signature = self._signature or own
            text = gemini_parts.text_of(part)
            if text:
                self.sink.delta({"type": "thinking_delta", "thinking": text})
            return
        empty = found is Kind.TEXT and not gemini_parts.text_of(part)
        if self._open == "thinking":
            if empty:
                # Shows nothing, so it ends nothing: Gemini may sign the thoughts on such a part.
                self._signature = self._signature or own
                return
            # The signature usually rides on the part that ends the thoughts (a call, or the answer).
            self._signature = self._signature or chunk_signature
            self._close()
        elif self.thinking and self._blocks == 0 and chunk_signature:
            # No thought summary, but the client asked for thinking: a block that holds the signature.
            self._start({"type": "thinking", "thinking": "", "signature": ""})
            self._signature = chunk_signature
            self._close()
        if empty:
            return
        if found is Kind.TEXT:
            self._text(self._markdown.text(gemini_parts.text_of(part)))
        elif found is Kind.FUNCTION_CALL:
            self._function_call(part["functionCall"], own)
        else:
            block = gemini_parts.code_markdown(part) or gemini_parts.media_markdown(part)
            if block:
                self._text(self._markdown.block(block))
            if found is Kind.INLINE_DATA and not self.done:
                mime, data = gemini_parts.inline_media(part)
                if mime.startswith("image/"):
                    self._close()
                    self.sink.image(mime, data)

    def _text(self, text: str, *, scan: bool = True) -> None:
        matched = None
        if scan and self.scanner is not None:
            text, matched = self.scanner.feed(text)
        if text:
            if self._open != "text":
                self._close(release=False)  # the held text is in `text` already
                self._start({"type": "text", "text": ""})
            self.sink.delta({"type": "text_delta", "text": text})
        if matched is not None:
            self.stop_sequence = matched
            self.done = True

    def _function_call(self, call: dict, signature: str | None) -> None:
        if self.single_tool and self.tools:
            return  # disable_parallel_tool_use: Gemini has no such switch, so later calls are dropped
        self._close()
        args = call.get("args")
        call_id = call.get("id") if isinstance(call.get("id"), str) else None
        self.sink.tool_use(
            {
                "type": "tool_use",
                "id": tool_use_id(call_id, signature),
                "name": str(call.get("name") or ""),
                "input": args if isinstance(args, dict) else {},
            }
        )
        self._blocks += 1
        self.tools += 1

    # -- blocks -----------------------------------------------------------------------
    def _start(self, block: dict) -> None:
        self.sink.start(block)
        self._open = block["type"]
        self._blocks += 1

    def _close(self, release: bool = True) -> None:
        if release and self.scanner is not None and not self.done:
            held = self.scanner.flush()  # something else comes next: held text was text after all
            if held:
                self._text(held, scan=False)
        if self._open is None:
            return
        if self._open == "thinking":
            self.sink.delta({"type": "signature_delta", "signature": thinking_signature(self._signature)})
            self._signature = None
        self.sink.stop()
        self._open = None


class MessageSink:
    """Collects blocks into a Message's `content`."""

    def __init__(self, images: bool = True):
        self.content: list[dict] = []
        self.images = images

    def start(self, block: dict) -> None:
        self.content.append(dict(block))

    def delta(self, delta: dict) -> None:
        block = self.content[-1]
        kind = delta["type"]
        if kind == "text_delta":
            block["text"] += delta["text"]
        elif kind == "thinking_delta":
            block["thinking"] += delta["thinking"]
        elif kind == "signature_delta":
            block["signature"] = delta["signature"]

    def stop(self) -> None:
        pass

    def tool_use(self, block: dict) -> None:
        self.content.append(block)

    def image(self, media_type: str, data: str) -> None:
        if self.images:
            self.content.append(
                {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
            )


def message(
    answer: dict,
    *,
    model: str,
    thinking: bool = False,
    single_tool: bool = False,
    stop_sequences: list[str] | None = None,
) -> dict:
    """A whole Anthropic Message for a whole Gemini answer."""
    sink = MessageSink()
    builder = ContentBuilder(sink, thinking=thinking, single_tool=single_tool, stop_sequences=stop_sequences)
    builder.feed(answer)
    reason = builder.finish()
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": sink.content,
        "stop_reason": reason,
        "stop_sequence": builder.stop_sequence,
        "usage": {**usage(builder.usage), "service_tier": "standard"},
    }


def count_tokens(answer: dict) -> dict:
    total = answer.get("totalTokens") if isinstance(answer, dict) else None
    return {"input_tokens": count(total)}
