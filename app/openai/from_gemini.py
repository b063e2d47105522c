"""Gemini `generateContent` answers as OpenAI `chat.completion` objects (plain dicts in, plain dicts out)."""

from __future__ import annotations

import base64
import secrets

from .. import jsonx
from . import audio, tool_ids

_CONTENT_FILTER = (
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
)
# A failed tool call must not pass for a normal end: these keep Gemini's own name, lowercased.
_SURFACED = (
    "MALFORMED_FUNCTION_CALL",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
    "MISSING_THOUGHT_SIGNATURE",
    "MALFORMED_RESPONSE",
)
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"}
FINISH_REASONS.update(dict.fromkeys(_CONTENT_FILTER, "content_filter"))
FINISH_REASONS.update({r: r.lower() for r in _SURFACED})
AUDIO_TTL = 3600  # `message.audio.expires_at`: nothing is stored, so it is only advisory


def finish_reason(reason: str | None, has_tool_calls: bool) -> str:
    if has_tool_calls:
        return "tool_calls"
    return FINISH_REASONS.get(reason or "STOP", "stop")


def usage(meta: dict | None) -> dict:
    """OpenAI usage from Gemini usageMetadata; completion tokens count thoughts, as OpenAI's do."""
    meta = meta if isinstance(meta, dict) else {}
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    thoughts = _count(meta, "thoughtsTokenCount")
    completion = _count(meta, "candidatesTokenCount") + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": _count(meta, "cachedContentTokenCount"),
            "audio_tokens": _modality(meta.get("promptTokensDetails"), "AUDIO"),
        },
        "completion_tokens_details": {
            "reasoning_tokens": thoughts,
            "audio_tokens": _modality(meta.get("candidatesTokensDetails"), "AUDIO"),
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _count(meta: dict, key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) else 0


def _modality(details, modality: str) -> int:
    if not isinstance(details, list):
        return 0
    return sum(
        d.get("tokenCount", 0) for d in details if isinstance(d, dict) and d.get("modality") == modality
    )


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

    `delta(parts)` returns only the fields these parts add, so the same rules serve both. Images
    become Markdown data URIs in `content` (what chat UIs render) and `images[]` entries; a tool
    call's id carries Gemini's call id and thought signature (see tool_ids).
    """

    def __init__(self, index: int, *, parallel_tool_calls: bool = True, audio_format: str | None = None):
        self.index = index
        self.parallel_tool_calls = parallel_tool_calls
        self.audio_format = audio_format or "wav"
        self.tool_calls = 0
        self.images = 0
        self.finished = False
        self.audio_id: str | None = None
        self._wrote = False  # any content yet
        self._after_block = False  # the last content was an image or code block
        self._ends_with_newline = True

    def delta(self, parts: list) -> dict:
        out: dict = {}
        content: list[str] = []
        pcm = bytearray()
        rate = audio.DEFAULT_RATE
        for part in parts:
            if not isinstance(part, dict):
                continue
            if "text" in part:
                text = part["text"]
                if not isinstance(text, str) or not text:
                    continue
                if part.get("thought"):
                    out["reasoning_content"] = out.get("reasoning_content", "") + text
                else:
                    self._text(content, text)
            elif "functionCall" in part:
                call = self._tool_call(part)
                if call is not None:
                    out.setdefault("tool_calls", []).append(call)
            elif "inlineData" in part:
                blob = part["inlineData"] or {}
                mime, data = blob.get("mimeType") or "", blob.get("data") or ""
                if mime.startswith("image/"):
                    url = f"data:{mime};base64,{data}"
                    self._block(content, f"![image]({url})")
                    out.setdefault("images", []).append(
                        {"type": "image_url", "image_url": {"url": url}, "index": self.images}
                    )
                    self.images += 1
                elif mime.startswith("audio/"):
                    found = audio.pcm_rate(mime)
                    rate = found or rate
                    pcm += base64.b64decode(data)
            elif "executableCode" in part:
                code = part["executableCode"] or {}
                language = str(code.get("language", "")).lower().replace("language_unspecified", "")
                self._block(content, f"```{language}\n{code.get('code', '')}\n```")
            elif "codeExecutionResult" in part:
                result = part["codeExecutionResult"] or {}
                output = result.get("output", "")
                if output:
                    self._block(content, f"```output\n{output.rstrip()}\n```")
        if content:
            out["content"] = "".join(content)
        if pcm:
            out["audio"] = self._audio(bytes(pcm), rate)
        return out

    def _text(self, content: list[str], text: str) -> None:
        if self._after_block and not text.startswith("\n"):
            content.append("\n\n")
        content.append(text)
        self._after_block = False
        self._wrote = True
        self._ends_with_newline = text.endswith("\n")

    def _block(self, content: list[str], block: str) -> None:
        if self._wrote:
            content.append("\n\n" if not self._ends_with_newline else "\n")
        content.append(block)
        self._after_block = True
        self._wrote = True
        self._ends_with_newline = False

    def _tool_call(self, part: dict) -> dict | None:
        if self.tool_calls and not self.parallel_tool_calls:
            return None  # the client asked for one call per turn
        function_call = part["functionCall"] or {}
        signature = part.get("thoughtSignature")
        call = {
            "index": self.tool_calls,
            "id": tool_ids.encode(function_call.get("id"), signature),
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


def annotations(candidate: dict) -> list[dict]:
    """Google Search grounding as OpenAI `url_citation` annotations."""
    grounding = candidate.get("groundingMetadata")
    if not isinstance(grounding, dict):
        return []
    chunks = grounding.get("groundingChunks") or []
    out = []
    seen = set()
    for support in grounding.get("groundingSupports") or []:
        segment = support.get("segment") or {}
        for i in support.get("groundingChunkIndices") or []:
            web = chunks[i].get("web") if isinstance(i, int) and 0 <= i < len(chunks) else None
            if not isinstance(web, dict) or not web.get("uri"):
                continue
            key = (segment.get("startIndex", 0), segment.get("endIndex", 0), web["uri"])
            if key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "type": "url_citation",
                    "url_citation": {
                        "start_index": key[0],
                        "end_index": key[1],
                        "url": web["uri"],
                        "title": web.get("title", ""),
                    },
                }
            )
    return out


def chat_completion(
    answer: dict,
    *,
    model: str,
    created: int,
    parallel_tool_calls: bool = True,
    audio_format: str | None = None,
) -> dict:
    choices = []
    for position, candidate in enumerate(answer.get("candidates") or []):
        if not isinstance(candidate, dict):
            continue
        index = candidate.get("index", position)
        choice = Choice(index, parallel_tool_calls=parallel_tool_calls, audio_format=audio_format)
        delta = choice.delta((candidate.get("content") or {}).get("parts") or [])
        message: dict = {
            "role": "assistant",
            "content": delta.get("content", None if choice.tool_calls else ""),
            "refusal": None,
            "annotations": annotations(candidate),
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
                "finish_reason": finish_reason(candidate.get("finishReason"), choice.tool_calls > 0),
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
    reason = (answer.get("promptFeedback") or {}).get("blockReason")
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
