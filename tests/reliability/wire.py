"""Test helper: each dialect's request and how to read its answers (whole, streamed, or an error)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import requests

from tests.conftest import CLIENT_KEY

MODEL = "gemini-2.5-flash"
PROMPT = "Say something."


@dataclass(frozen=True)
class Variant:
    """One way to call the gateway: a dialect, streamed or not."""

    name: str
    dialect: str  # gemini | openai | responses (OpenAI's Responses API) | anthropic
    path: str
    body: dict
    headers: dict = field(default_factory=dict)
    stream: bool = False

    @property
    def action(self) -> str:
        """The Gemini action this variant ends up calling upstream."""
        return ":streamGenerateContent" if self.stream else ":generateContent"

    def calls(self, upstream_calls: list[dict]) -> list[dict]:
        """The upstream calls this variant's requests made (its prompt carries its name)."""
        tag = f"[{self.name}]"
        return [c for c in upstream_calls if tag in json.dumps(c.get("body"))]

    def post(self, gateway, timeout: float = 20, **kwargs) -> requests.Response:
        return requests.post(
            gateway.url(self.path), json=self.body, headers=self.headers, timeout=timeout, **kwargs
        )


GEMINI_HEADERS = {"x-goog-api-key": CLIENT_KEY}
OPENAI_HEADERS = {"Authorization": f"Bearer {CLIENT_KEY}"}
ANTHROPIC_HEADERS = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}


def _variant(name: str, stream: bool) -> Variant:
    # The prompt names the variant, so the calls the fake upstream records can be told apart.
    prompt = f"{PROMPT} [{name}]"
    dialect = name.split("-")[0]
    if dialect == "gemini":
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return Variant(
            name,
            dialect,
            f"/v1beta/models/{MODEL}:{action}",
            {"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
            GEMINI_HEADERS,
            stream,
        )
    if dialect == "openai":
        body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
        return Variant(
            name,
            dialect,
            "/v1/chat/completions",
            {**body, "stream": True} if stream else body,
            OPENAI_HEADERS,
            stream,
        )
    if dialect == "responses":
        body = {"model": MODEL, "input": prompt, "store": False}
        return Variant(
            name,
            dialect,
            "/v1/responses",
            {**body, "stream": True} if stream else body,
            OPENAI_HEADERS,
            stream,
        )
    body = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": prompt}]}
    return Variant(
        name, dialect, "/v1/messages", {**body, "stream": True} if stream else body, ANTHROPIC_HEADERS, stream
    )


VARIANTS = tuple(
    _variant(name, name.endswith(("-sse", "-stream")))
    for name in (
        "gemini",
        "gemini-sse",
        "openai",
        "openai-stream",
        "responses",
        "responses-stream",
        "anthropic",
        "anthropic-stream",
    )
)
STREAMS = tuple(v for v in VARIANTS if v.stream)
WHOLE = tuple(v for v in VARIANTS if not v.stream)
BY_NAME = {v.name: v for v in VARIANTS}


def chunk(text: str, finish: str | None = None, prompt: int = 4, out: int = 1) -> dict:
    """One Gemini stream event (or a whole answer) holding `text`."""
    candidate: dict = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": out,
            "totalTokenCount": prompt + out,
        },
        "modelVersion": MODEL,
    }


# -- reading answers ---------------------------------------------------------------------------


@dataclass
class Reading:
    """What a client got: the text in order, the error (whole or in-stream), and the raw frames."""

    text: str = ""
    error: dict | None = None  # the dialect's error object, as sent
    frames: list = field(default_factory=list)  # parsed stream frames, in order
    after_error: list = field(default_factory=list)  # frames that followed an in-stream error
    finished: bool = False  # the stream's normal end ([DONE], message_stop, a finishReason)


def read(variant: Variant, response: requests.Response) -> Reading:
    """Parse a whole answer or a complete stream body of `variant`."""
    if response.status_code >= 400 or not variant.stream:
        return _read_whole(variant, response)
    if variant.dialect in ("anthropic", "responses"):
        return _read_event_stream(response.content)
    return _read_data_stream(variant, response.content)


def _read_whole(variant: Variant, response: requests.Response) -> Reading:
    body = response.json()
    if response.status_code >= 400:
        return Reading(error=body)
    if variant.dialect == "gemini":
        return Reading(text=gemini_text(body), finished=True)
    if variant.dialect == "openai":
        return Reading(text=body["choices"][0]["message"]["content"] or "", finished=True)
    if variant.dialect == "responses":
        texts = [c["text"] for i in body["output"] if i["type"] == "message" for c in i["content"]]
        return Reading(text="".join(texts), finished=body["status"] != "failed")
    return Reading(text="".join(b["text"] for b in body["content"] if b["type"] == "text"), finished=True)


def _read_data_stream(variant: Variant, raw: bytes) -> Reading:
    reading = Reading()
    for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
        if not line.startswith(b"data: "):
            continue
        payload = line[6:]
        if payload == b"[DONE]":
            (reading.after_error if reading.error else reading.frames).append("[DONE]")
            reading.finished = reading.error is None
            continue
        frame = json.loads(payload)
        if reading.error is not None:
            reading.after_error.append(frame)
            continue
        if "error" in frame:
            reading.error = frame
            continue
        reading.frames.append(frame)
        if variant.dialect == "gemini":
            reading.text += gemini_text(frame)
            reading.finished = reading.finished or '"finishReason"' in json.dumps(frame)
        else:
            for choice in frame.get("choices") or []:
                reading.text += choice["delta"].get("content") or ""
    return reading


def gemini_text(answer) -> str:
    """The answer text of a Gemini response, whatever odd shape it was relayed in."""
    text = ""
    for candidate in _list(answer.get("candidates") if isinstance(answer, dict) else None)[:1]:
        content = candidate.get("content") if isinstance(candidate, dict) else None
        for part in _list(content.get("parts") if isinstance(content, dict) else None):
            if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought"):
                text += part["text"]
    return text


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _read_event_stream(raw: bytes) -> Reading:
    """An Anthropic or a Responses API stream: `event:` and `data:` lines that agree; an `error` event,
    or a `response.failed`, is the stream's error."""
    reading = Reading()
    for block in raw.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name, block
        if reading.error is not None:
            reading.after_error.append(data)
            continue
        if name in ("error", "response.failed"):
            reading.error = data
            continue
        reading.frames.append(data)
        if name == "content_block_delta" and data["delta"]["type"] == "text_delta":
            reading.text += data["delta"]["text"]
        elif name == "response.output_text.delta":
            reading.text += data["delta"]
        reading.finished = reading.finished or name in (
            "message_stop",
            "response.completed",
            "response.incomplete",
        )
    return reading


# -- error shapes ---------------------------------------------------------------------------------


# The HTTP status each dialect answers for a gateway error of `status` (Anthropic says 529 when overloaded).
def expected_status(variant: Variant, status: int, overloaded: bool = False) -> int:
    if variant.dialect == "anthropic" and overloaded:
        return 529
    return status


def assert_error_shape(variant: Variant, error: dict, status: int | None = None) -> None:
    """`error` (a whole error body, or an in-stream error frame) has the dialect's shape."""
    if variant.dialect == "gemini":
        inner = error["error"]
        assert isinstance(inner["message"], str) and inner["message"] and isinstance(inner["status"], str), (
            error
        )
        if status is not None:
            assert inner["code"] == (503 if status == 529 else status), error
    elif variant.dialect == "responses" and error.get("type") == "response.failed":
        failed = error["response"]
        assert failed["status"] == "failed" and failed["error"]["message"], error
        assert failed["error"]["code"] in ("server_error", "rate_limit_exceeded", "invalid_prompt"), error
    elif variant.dialect in ("openai", "responses"):
        inner = error["error"]
        assert set(inner) == {"message", "type", "param", "code"} and inner["message"], error
        assert inner["type"] in (
            "invalid_request_error",
            "rate_limit_error",
            "server_error",
            "permission_error",
        ), error
    else:
        assert (
            error["type"] == "error"
            and set(error["error"]) == {"type", "message"}
            and error["error"]["message"]
        )
        if status is not None:
            kinds = {
                429: "rate_limit_error",
                529: "overloaded_error",
                504: "timeout_error",
                500: "api_error",
                503: "api_error",
                400: "invalid_request_error",
                413: "request_too_large",
            }
            if status in kinds:
                assert error["error"]["type"] == kinds[status], error
    text = json.dumps(error)
    assert "Traceback" not in text and "AIza" not in text, text
