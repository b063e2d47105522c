"""Gemini `generateContent` answers as OpenAI `chat.completion` objects (plain dicts in, plain dicts out)."""

from __future__ import annotations

import base64
import secrets

from .. import jsonx
from ..translate import parts as gemini_parts
from ..translate.finish import Outcome, block_reason, outcome, tool_call_failure
from ..translate.grounding import citations
from ..translate.parts import Kind, MarkdownText
from ..translate.usage import token_counts
from . import audio, tool_ids

AUDIO_TTL = 3600  # `message.audio.expires_at`: nothing is stored, so it is only advisory
# OpenAI's names for Gemini's outcomes. Refusals (safety, blocklist, prohibited content, SPII, image
# safety, recitation) and the reasons Gemini gives no meaning for (OTHER, NO_IMAGE, newer ones) say that
# content was withheld: content_filter, OpenAI's one name for that.
_FINISH_REASONS = {
    Outcome.STOP: "stop",
    Outcome.LENGTH: "length",
    Outcome.REFUSAL: "content_filter",
    Outcome.OTHER: "content_filter",
}


def finish_reason(reason: str | None, has_tool_calls: bool, message: object = None) -> str:
    """OpenAI's finish reason for a candidate's; a botched tool call (after the generate step asked
    once more) is an error, never a stop a client could take for an empty answer."""
    found = outcome(reason)
    if found is Outcome.TOOL_FAILURE:
        raise tool_call_failure(str(reason), message)
    if has_tool_calls:
        return "tool_calls"
    return _FINISH_REASONS[found]


def usage(meta: dict | None) -> dict:
    """OpenAI usage from Gemini usageMetadata; completion tokens count thoughts, as OpenAI's do."""
    counts = token_counts(meta)
    return {
        "prompt_tokens": counts.input,
        "completion_tokens": counts.output,
        "total_tokens": counts.total,
        "prompt_tokens_details": {"cached_tokens": counts.cached, "audio_tokens": counts.prompt_audio},
        "completion_tokens_details": {
            "reasoning_tokens": counts.thoughts,
            "audio_tokens": counts.output_audio,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def logprobs(result: dict | None) -> dict | None:
    """Gemini's logprobsResult in OpenAI's `choices[].logprobs` shape."""
    if not isinstance(result, dict):
        return None
    top = result.get("topCandidates") or []
    content = []
    for i, chosen in enumerate(result.get("chosenCandidates") or []):
        entry = _token(chosen)
        alternatives = top[i].get("candidates") if i < len(top) and isinstance(top[i], dict) else None
        entry["top_logprobs"] = [_token(c) for c in alternatives or []]
        content.append(entry)
    return {"content": content, "refusal": None}


def _token(candidate: dict) -> dict:
    token = candidate.get("token", "")
    return {"token": token, "logprob": candidate.get("logProbability", 0.0), "bytes": list(token.encode())}


class Choice:
    """One choice built from Gemini parts: all at once (a completion) or event by event (a stream).

    `delta(parts)` returns only the fields these parts add, so the same rules serve both. Code, images
    and files become Markdown in `content` (what chat UIs render), images also `images[]` entries. A
    tool call gets a short id; what it stands for (Gemini's call id and thought signature) is collected
    in `carried` for the store (see call_memory), the signature also goes in `extra_content`.
    """

    def __init__(self, index: int, *, parallel_tool_calls: bool = True, audio_format: str | None = None):
        self.index = index
        self.parallel_tool_calls = parallel_tool_calls
        self.audio_format = audio_format or "wav"
        self.tool_calls = 0
        self.images = 0
        self.finished = False
        self.audio_id: str | None = None
        self.carried: dict[str, tool_ids.CallRef] = {}  # new tool call ids and what they stand for
        self._text = MarkdownText()

    def delta(self, parts: list) -> dict:
        out: dict = {}
        content: list[str] = []
        pcm = bytearray()
        rate = audio.DEFAULT_RATE
        for part in parts:
            if not isinstance(part, dict):
                continue
            found = gemini_parts.kind(part)
            if found is Kind.THOUGHT:
                text = gemini_parts.text_of(part)
                if text:
                    out["reasoning_content"] = out.get("reasoning_content", "") + text
            elif found is Kind.TEXT:
                content.append(self._text.text(gemini_parts.text_of(part)))
            elif found is Kind.FUNCTION_CALL:
                call = self._tool_call(part)
                if call is not None:
                    out.setdefault("tool_calls", []).append(call)
            elif found is Kind.INLINE_DATA and gemini_parts.inline_media(part)[0].startswith("audio/"):
                mime, data = gemini_parts.inline_media(part)
                rate = audio.pcm_rate(mime) or rate
                pcm += base64.b64decode(data)
            else:
                block = gemini_parts.code_markdown(part) or gemini_parts.media_markdown(part)
                if block:
                    content.append(self._text.block(block))
                if found is Kind.INLINE_DATA:
                    self._image(part, out)
        text = "".join(content)
        if text:
            out["content"] = text
        if pcm:
            out["audio"] = self._audio(bytes(pcm), rate)
        return out

    def _image(self, part: dict, out: dict) -> None:
        mime, data = gemini_parts.inline_media(part)
        if mime.startswith("image/"):
            url = f"data:{mime};base64,{data}"
            out.setdefault("images", []).append(
                {"type": "image_url", "image_url": {"url": url}, "index": self.images}
            )
            self.images += 1

    def _tool_call(self, part: dict) -> dict | None:
        if self.tool_calls and not self.parallel_tool_calls:
            return None  # the client asked for one call per turn
        function_call = part["functionCall"]
        signature = gemini_parts.signature(part)
        gemini_id = function_call.get("id") if isinstance(function_call.get("id"), str) else None
        call_id = tool_ids.new_id()
        if gemini_id or signature:
            self.carried[call_id] = tool_ids.CallRef(gemini_id, signature)
        call = {
            "index": self.tool_calls,
            "id": call_id,
            "type": "function",
            "function": {
                "name": function_call.get("name", ""),
                "arguments": jsonx.dumps(function_call.get("args") or {}).decode(),
            },
        }
        if signature:
            call["extra_content"] = {"google": {"thought_signature": signature}}
        self.tool_calls += 1
        return call

    def _audio(self, pcm: bytes, rate: int) -> dict:
        if self.audio_id is None:
            self.audio_id = "audio_" + secrets.token_hex(12)
        return {
            "id": self.audio_id,
            "data": base64.b64encode(audio.encode(pcm, rate, self.audio_format)).decode("ascii"),
            "expires_at": 0,
            "transcript": "",
        }


def url_citations(candidate: dict) -> list[dict]:
    """Google Search grounding as OpenAI `url_citation` annotations."""
    return [
        {
            "type": "url_citation",
            "url_citation": {"start_index": c.start, "end_index": c.end, "url": c.url, "title": c.title},
        }
        for c in citations(candidate)
    ]


def chat_completion(
    answer: dict,
    *,
    model: str,
    created: int,
    parallel_tool_calls: bool = True,
    audio_format: str | None = None,
    carried: dict[str, tool_ids.CallRef] | None = None,
) -> dict:
    """A chat.completion for a whole answer; `carried` collects what its tool call ids stand for."""
    choices = []
    for position, candidate in enumerate(answer.get("candidates") or []):
        if not isinstance(candidate, dict):
            continue
        index = candidate.get("index", position)
        choice = Choice(index, parallel_tool_calls=parallel_tool_calls, audio_format=audio_format)
        delta = choice.delta(gemini_parts.candidate_parts(candidate))
        if carried is not None:
            carried.update(choice.carried)
        message: dict = {
            "role": "assistant",
            "content": delta.get("content", None if choice.tool_calls else ""),
            "refusal": None,
            "annotations": url_citations(candidate),
        }
        for key in ("reasoning_content", "tool_calls", "images", "audio"):
            if key in delta:
                message[key] = delta[key]
        if "audio" in message:
            message["audio"]["expires_at"] = created + AUDIO_TTL
        for call in message.get("tool_calls", ()):
            del call["index"]
        for image in message.get("images", ()):
            del image["index"]
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": logprobs(candidate.get("logprobsResult")),
                "finish_reason": finish_reason(
                    candidate.get("finishReason"), choice.tool_calls > 0, candidate.get("finishMessage")
                ),
            }
        )
    if not choices:
        choices.append(blocked_choice(answer))
    choices.sort(key=lambda c: c["index"])
    return {
        "id": completion_id(answer),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage(answer.get("usageMetadata")),
    }


def blocked_choice(answer: dict) -> dict:
    """The one choice of an answer without candidates: Gemini blocked the prompt."""
    reason = block_reason(answer)
    refusal = f"Gemini blocked the prompt ({reason})." if reason else "Gemini returned no answer."
    return {
        "index": 0,
        "message": {"role": "assistant", "content": None, "refusal": refusal, "annotations": []},
        "logprobs": None,
        "finish_reason": "content_filter" if reason else "stop",
    }


def completion_id(answer: dict) -> str:
    response_id = answer.get("responseId")
    return "chatcmpl-" + (
        response_id if isinstance(response_id, str) and response_id else secrets.token_hex(12)
    )
