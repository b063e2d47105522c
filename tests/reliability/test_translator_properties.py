"""Property-based tests of the translators: any schema-valid request of a dialect translates (or is refused
with a 400 naming its field), and a Gemini answer translated to a dialect and replayed as history comes
back to Gemini with the same text, function calls and thought signatures."""

from __future__ import annotations

import base64
import json
import os

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from app import jsonx
from app.anthropic import from_gemini as anthropic_from
from app.anthropic import to_gemini as anthropic_to
from app.anthropic.stream import MessageStream
from app.errors import InvalidRequest
from app.openai import from_gemini as openai_from
from app.openai import to_gemini as openai_to
from app.openai.stream import ChatCompletionStream
from app.translate.directives import apply_directives, parse_model_name
from app.translate.media import inline_data_from_url
from app.translate.signatures import BYPASS_SIGNATURE
from schemas import anthropic as anthropic_schemas
from schemas import gemini as gemini_schemas
from schemas import openai as openai_schemas
from tests.anthropic.grammar import check_grammar, parse_events

pytestmark = pytest.mark.fuzz  # property-based: thousands of generated cases

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "300"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

OPENAI_REQUEST = openai_schemas.ChatCompletionRequest()
ANTHROPIC_REQUEST = anthropic_schemas.MessagesRequest()
GEMINI_REQUEST = gemini_schemas.GenerateContentRequest()

# -- building blocks ---------------------------------------------------------------------------------

TEXT = st.text(max_size=24)
WORD = st.text("abcdefghij_-0123456789", min_size=1, max_size=10)
NAME = st.sampled_from(["get_weather", "sum", "lookup", "f"]) | WORD
# Counts as clients send them: small, near the limits, and far past int32 (Gemini's type for all of them).
BIG_INT = (
    st.integers(-5, 70000)
    | st.sampled_from([2**31 - 1, 2**31, 2**53, 2**63 - 1, -(2**31)])
    | st.integers(-(2**63), 2**63 - 1)
)
NUMBER = st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBER | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
OBJECT = st.dictionaries(TEXT, JSON, max_size=4)
B64 = st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b).decode())
MIME = st.sampled_from(
    ["image/png", "image/jpeg", "image/webp", "application/pdf", "text/plain", "audio/wav", ""]
)
DATA_URL = st.builds(lambda mime, data: f"data:{mime};base64,{data}", MIME, B64) | st.sampled_from(
    [
        "data:,hello%20world",
        "data:text/plain,abc",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:;base64,QUJD",
        "data:image/jpeg;base64,/9j/4AAQ",
        "data:image/png;base64,iVBO Rw0K",
        "data:image/png;base64,iVBO-_w",
    ]
)
URL = DATA_URL | st.sampled_from(
    [
        "https://example.com/cat.png",
        "http://example.org/doc",
        "https://generativelanguage.googleapis.com/v1beta/files/a1",
        "gs://bucket/object.pdf",
        "https://www.youtube.com/watch?v=abc",
        "https://youtu.be/abc",
    ]
)
# JSON Schemas as clients write them, and odd dicts: the schema field is a free-form object.
SCHEMA = (
    st.recursive(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])},
            optional={
                "description": TEXT,
                "enum": st.lists(TEXT, max_size=3),
                "format": TEXT,
                "minimum": NUMBER,
                "default": JSON,
                "nullable": st.booleans(),
            },
        ),
        lambda inner: st.fixed_dictionaries(
            {"type": st.sampled_from(["object", "array", ["object", "null"], ["array", "null"]])},
            optional={
                "properties": st.dictionaries(WORD, inner, max_size=3),
                "items": inner,
                "required": st.lists(WORD, max_size=2),
                "additionalProperties": st.booleans() | inner,
                "anyOf": st.lists(inner, min_size=1, max_size=2),
                "$defs": st.dictionaries(WORD, inner, max_size=1),
                "title": TEXT,
            },
        ),
        max_leaves=6,
    )
    | st.just(
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "string"}}}
    )
    | OBJECT
)
MODEL = (
    st.sampled_from(
        [
            "gemini-2.5-flash",
            "gemini-2.5-pro",
            "gemini-3-pro-preview",
            "gemini-3-flash-preview(high)",
            "gemini-2.5-flash-search",
            "gemini-2.5-flash-low-code",
            "gemini-2.0-flash",
            "gemma-3-27b-it",
            "models/gemini-2.5-flash-lite",
            "gemini-2.5-flash-preview-tts",
            "gemini-2.5-flash(max)",
            "gemini-2.5-flash-image",
        ]
    )
    | WORD
)


def optional(**fields) -> dict:
    return {name: st.none() | strategy for name, strategy in fields.items()}


def fetch(url: str, *, param: str) -> dict:
    """The translators' media fetch: data: URLs for real, http(s) as if the server answered with a PNG."""
    if url.lower().startswith("data:"):
        return inline_data_from_url(url, param=param)
    if not url.lower().startswith(("http://", "https://")):
        return inline_data_from_url(url, param=param)  # the real refusal
    return {"mimeType": "image/png", "data": "iVBORw0KGgo="}


def assert_valid_gemini_request(request: dict) -> None:
    """What goes upstream serializes, and is a GenerateContentRequest by Gemini's own schema."""
    event("translated")
    jsonx.dumps(request)
    assert not GEMINI_REQUEST.validate(request), GEMINI_REQUEST.validate(request)
    for content in request["contents"]:
        assert content["role"] in ("user", "model") and content["parts"], content


def assert_clean_refusal(err: InvalidRequest) -> None:
    event(f"refused: {err.param}")
    assert err.status == 400 and err.message and err.param, (err.message, err.param)


# -- OpenAI requests --------------------------------------------------------------------------------

OPENAI_PART = st.one_of(
    TEXT,
    st.builds(lambda t: {"type": "text", "text": t}, TEXT),
    st.builds(lambda t: {"type": "refusal", "refusal": t}, TEXT),
    st.builds(
        lambda u, d: {"type": "image_url", "image_url": {"url": u, **d}},
        URL,
        st.fixed_dictionaries({}, optional={"detail": st.sampled_from(["auto", "low", "high"])}),
    ),
    st.builds(lambda u: {"type": "image_url", "image_url": u}, URL),
    st.builds(
        lambda d, f: {"type": "input_audio", "input_audio": {"data": d, **f}},
        B64 | DATA_URL,
        st.fixed_dictionaries(
            {}, optional={"format": st.sampled_from(["wav", "mp3", "flac", "m4a", "pcm16"])}
        ),
    ),
    st.builds(
        lambda f: {"type": "file", "file": f},
        st.fixed_dictionaries(
            {"file_data": B64 | DATA_URL},
            optional={"filename": st.sampled_from(["a.pdf", "b.txt", "c", "d.png"])},
        ),
    ),
    st.builds(
        lambda i: {"type": "file", "file": {"file_id": i}},
        st.sampled_from(
            [
                "files/abc",
                "gs://b/o.pdf",
                "https://generativelanguage.googleapis.com/v1beta/files/x",
                "file-123",
            ]
        ),
    ),
)
OPENAI_CONTENT = st.none() | TEXT | st.lists(OPENAI_PART, max_size=3)
CALL_ID = (
    st.sampled_from(["call_1", "call_2", "call_abc"])
    | st.builds(openai_to.tool_ids.new_id)
    # ids that carry the call id and signature inside (chat completions' of the previous version)
    | st.builds(lambda i, s: openai_to.tool_ids.encode(i, s), st.none() | WORD, st.none() | B64)
)
ARGUMENTS = st.none() | st.just("") | OBJECT.map(lambda o: json.dumps(o))
TOOL_CALL = st.fixed_dictionaries(
    {"id": CALL_ID, "function": st.fixed_dictionaries({"name": NAME}, optional={"arguments": ARGUMENTS})},
    optional={
        "type": st.none() | st.just("function"),
        "extra_content": st.none() | st.builds(lambda s: {"google": {"thought_signature": s}}, B64) | OBJECT,
    },
)


@st.composite
def openai_messages(draw) -> list[dict]:
    messages: list[dict] = []
    ids: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["system", "developer", "user", "user", "assistant", "tool", "function"]))
        if kind in ("system", "developer"):
            content = draw(
                st.none()
                | TEXT
                | st.lists(st.builds(lambda t: {"type": "text", "text": t}, TEXT), max_size=2)
            )
            messages.append({"role": kind, "content": content})
        elif kind == "user":
            messages.append(
                {
                    "role": "user",
                    "content": draw(OPENAI_CONTENT),
                    **draw(st.fixed_dictionaries({}, optional={"name": WORD})),
                }
            )
        elif kind == "assistant":
            calls = draw(st.lists(TOOL_CALL, max_size=3, unique_by=lambda c: c["id"]))
            ids.extend(c["id"] for c in calls)
            message = {
                "role": "assistant",
                "content": draw(
                    st.none()
                    | TEXT
                    | st.lists(st.builds(lambda t: {"type": "text", "text": t}, TEXT), max_size=2)
                ),
            }
            if calls or draw(st.booleans()):
                message["tool_calls"] = calls
            if draw(st.integers(0, 9)) == 0:
                message["function_call"] = {"name": draw(NAME), "arguments": draw(ARGUMENTS)}
            messages.append(message)
        elif kind == "tool":
            call_id = draw(st.sampled_from(ids) if ids and draw(st.integers(0, 4)) else CALL_ID)
            message = {"role": "tool", "tool_call_id": call_id, "content": draw(OPENAI_CONTENT)}
            if draw(st.booleans()):
                message["name"] = draw(NAME)
            messages.append(message)
        else:
            messages.append({"role": "function", "name": draw(NAME), "content": draw(st.none() | TEXT)})
    return messages


OPENAI_TOOL = st.fixed_dictionaries(
    {
        "type": st.none() | st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": NAME}, optional=optional(description=TEXT, parameters=SCHEMA, strict=st.booleans())
        ),
    }
)
OPENAI_TOOL_CHOICE = (
    st.sampled_from(["none", "auto", "required"])
    | st.builds(lambda n: {"type": "function", "function": {"name": n}}, NAME)
    | st.builds(
        lambda m, names: {
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": m,
                "tools": [{"type": "function", "function": {"name": n}} for n in names],
            },
        },
        st.sampled_from(["auto", "required"]),
        st.lists(NAME, max_size=2),
    )
)
GOOGLE = st.fixed_dictionaries(
    {},
    optional={
        "thinking_config": st.fixed_dictionaries(
            {},
            optional={
                "thinking_budget": BIG_INT,
                "include_thoughts": st.booleans(),
                "thinking_level": st.sampled_from(["low", "high", "minimal", "medium"]),
            },
        ),
        "cached_content": TEXT,
        "image_config": st.fixed_dictionaries(
            {},
            optional={
                "aspect_ratio": st.sampled_from(["1:1", "16:9"]),
                "image_size": st.sampled_from(["1K", "2K"]),
            },
        ),
    },
)
OPENAI_BODY = st.fixed_dictionaries(
    {"model": MODEL, "messages": openai_messages()},
    optional={
        **optional(
            stream=st.booleans(),
            stream_options=st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
            max_tokens=BIG_INT.filter(lambda n: n >= 1),
            max_completion_tokens=BIG_INT.filter(lambda n: n >= 1),
            temperature=st.floats(0, 2) | st.integers(0, 2),
            top_p=st.floats(0, 1),
            n=st.integers(1, 8),
            stop=TEXT | st.lists(TEXT, max_size=4),
            presence_penalty=st.floats(-2, 2),
            frequency_penalty=st.floats(-2, 2),
            seed=BIG_INT,
            logprobs=st.booleans(),
            top_logprobs=st.integers(0, 20),
            response_format=st.sampled_from([{"type": "text"}, {"type": "json_object"}])
            | st.builds(lambda s: {"type": "json_schema", "json_schema": {"name": "x", "schema": s}}, SCHEMA),
            tools=st.lists(OPENAI_TOOL, max_size=3),
            tool_choice=OPENAI_TOOL_CHOICE,
            parallel_tool_calls=st.booleans(),
            functions=st.lists(
                st.fixed_dictionaries({"name": NAME}, optional={"parameters": SCHEMA}), max_size=2
            ),
            function_call=st.sampled_from(["none", "auto"]) | st.builds(lambda n: {"name": n}, NAME),
            reasoning_effort=st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh"]) | WORD,
            modalities=st.lists(st.sampled_from(["text", "audio", "image"]), max_size=2),
            audio=st.fixed_dictionaries(
                {},
                optional=optional(
                    voice=st.sampled_from(["alloy", "Kore", "nova"]) | WORD,
                    format=st.sampled_from(["wav", "mp3", "pcm16", "opus"]),
                ),
            ),
            extra_body=st.builds(lambda g: {"google": g}, GOOGLE) | OBJECT,
        ),
        "web_search_options": st.just({}) | OBJECT,
        "user": TEXT,
        "metadata": OBJECT,
        "some_future_field": JSON,
    },
)


def translate_openai(body: dict) -> dict:
    spec = parse_model_name(body["model"])
    openai_to.audio_format(body, spec.model)
    request = openai_to.chat_request(body, spec, fetch=fetch)
    return apply_directives(spec, request)


@SETTINGS
@given(body=OPENAI_BODY)
def test_any_valid_openai_request_translates_or_is_refused_cleanly(body):
    assume(not OPENAI_REQUEST.validate(body))
    try:
        request = translate_openai(body)
    except InvalidRequest as err:
        assert_clean_refusal(err)
        return
    assert_valid_gemini_request(request)


# -- Anthropic requests ------------------------------------------------------------------------------

SOURCE = st.one_of(
    st.builds(lambda m, d: {"type": "base64", "media_type": m, "data": d}, MIME, B64),
    st.builds(lambda u: {"type": "url", "url": u}, URL),
    st.builds(lambda d: {"type": "text", "media_type": "text/plain", "data": d}, TEXT),
    st.builds(
        lambda c: {"type": "content", "content": c},
        TEXT | st.lists(st.builds(lambda t: {"type": "text", "text": t}, TEXT), max_size=2),
    ),
    st.just({"type": "file", "file_id": "file_011"}),
)
TEXT_BLOCK = st.builds(lambda t: {"type": "text", "text": t}, TEXT)
RESULT_BLOCK = st.one_of(
    TEXT_BLOCK,
    st.builds(lambda s: {"type": "image", "source": s}, SOURCE),
    st.builds(
        lambda s, t: {"type": "document", "source": s, **t},
        SOURCE,
        st.fixed_dictionaries({}, optional={"title": st.none() | TEXT, "context": st.none() | TEXT}),
    ),
    st.builds(
        lambda t, c: {"type": "search_result", "source": "https://x.example", "title": t, "content": c},
        TEXT,
        st.lists(st.builds(lambda t: {"type": "text", "text": t}, TEXT), max_size=2),
    ),
)
SIGNATURE = st.none() | B64 | TEXT
TOOL_USE_ID = st.sampled_from(["toolu_01A", "toolu_02B"]) | st.builds(
    lambda i, s: anthropic_from.tool_use_id(i, s), st.none() | WORD, st.none() | B64
)


@st.composite
def anthropic_messages(draw) -> list[dict]:
    messages: list[dict] = []
    ids: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        role = draw(st.sampled_from(["user", "user", "assistant", "system"]))
        if draw(st.integers(0, 3)) == 0:
            messages.append({"role": role, "content": draw(TEXT)})
            continue
        blocks = []
        for _ in range(draw(st.integers(0, 4))):
            if role == "assistant":
                kind = draw(st.sampled_from(["text", "thinking", "redacted_thinking", "tool_use", "server"]))
                if kind == "text":
                    blocks.append(draw(TEXT_BLOCK))
                elif kind == "thinking":
                    signature = draw(
                        SIGNATURE.map(lambda s: anthropic_from.thinking_signature(s) if s else s) | SIGNATURE
                    )
                    blocks.append({"type": "thinking", "thinking": draw(TEXT), "signature": signature})
                elif kind == "redacted_thinking":
                    blocks.append({"type": "redacted_thinking", "data": draw(B64)})
                elif kind == "tool_use":
                    tool_id = draw(TOOL_USE_ID)
                    ids.append(tool_id)
                    blocks.append(
                        {"type": "tool_use", "id": tool_id, "name": draw(NAME), "input": draw(OBJECT)}
                    )
                else:
                    blocks.append(
                        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
                    )
            elif role == "user" and ids and draw(st.booleans()):
                content = draw(st.none() | TEXT | st.lists(RESULT_BLOCK, max_size=2))
                block = {"type": "tool_result", "tool_use_id": draw(st.sampled_from(ids)), "content": content}
                if draw(st.booleans()):
                    block["is_error"] = draw(st.booleans())
                blocks.append(block)
            else:
                blocks.append(draw(RESULT_BLOCK if role == "user" else TEXT_BLOCK))
        messages.append({"role": role, "content": blocks})
    return messages


ANTHROPIC_TOOL = st.one_of(
    st.fixed_dictionaries(
        {"name": NAME, "input_schema": SCHEMA},
        optional={"description": st.none() | TEXT, "type": st.none() | st.just("custom")},
    ),
    st.sampled_from(
        [
            {"type": "web_search_20250305", "name": "web_search"},
            {"type": "web_fetch_20250910", "name": "web_fetch"},
            {"type": "code_execution_20250825", "name": "code_execution"},
            {"type": "bash_20250124", "name": "bash"},
        ]
    ),
)
ANTHROPIC_BODY = st.fixed_dictionaries(
    {"model": MODEL, "max_tokens": BIG_INT.filter(lambda n: n >= 1), "messages": anthropic_messages()},
    optional={
        "system": st.none() | TEXT | st.lists(TEXT_BLOCK, max_size=2),
        "stream": st.none() | st.booleans(),
        "stop_sequences": st.none() | st.lists(TEXT, max_size=3),
        "temperature": st.none() | st.floats(0, 2),
        "top_p": st.none() | st.floats(0, 1),
        "top_k": st.none() | BIG_INT.filter(lambda n: n >= 0),
        "tools": st.none() | st.lists(ANTHROPIC_TOOL, max_size=3),
        "tool_choice": st.none()
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none"])},
            optional={"name": NAME, "disable_parallel_tool_use": st.booleans()},
        ),
        "thinking": st.none()
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["enabled", "disabled", "adaptive"])},
            optional={
                "budget_tokens": BIG_INT.filter(lambda n: n >= 0),
                "display": st.none() | st.sampled_from(["summarized", "omitted"]),
            },
        ),
        "output_config": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "effort": st.none() | st.sampled_from(["low", "medium", "high", "xhigh", "max"]) | WORD,
                "format": st.none() | st.builds(lambda s: {"type": "json_schema", "schema": s}, SCHEMA),
            },
        ),
        "output_format": st.none() | st.builds(lambda s: {"type": "json_schema", "schema": s}, SCHEMA),
        "metadata": st.none() | OBJECT,
        "container": JSON,
    },
)


@SETTINGS
@given(body=ANTHROPIC_BODY)
def test_any_valid_anthropic_request_translates_or_is_refused_cleanly(body):
    assume(not ANTHROPIC_REQUEST.validate(body))
    try:
        spec = parse_model_name(body["model"])
        request = anthropic_to.generate_request(body, spec, fetch=fetch)
        count = anthropic_to.count_tokens_request(body, spec, fetch=fetch)
    except InvalidRequest as err:
        assert_clean_refusal(err)
        return
    assert_valid_gemini_request(request)
    assert_valid_gemini_request(count["generateContentRequest"])
    anthropic_to.options(body)


# -- Gemini answers there and back -------------------------------------------------------------------

CALL_ARGS = st.dictionaries(WORD, JSON, max_size=3)


@st.composite
def gemini_answer(draw, signatures: bool = True) -> list[dict]:
    """The parts of one Gemini answer: thoughts first, then text and function calls in any order."""
    parts: list[dict] = [
        {"text": draw(TEXT.filter(bool)), "thought": True} for _ in range(draw(st.integers(0, 2)))
    ]
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            parts.append({"text": draw(TEXT.filter(bool))})
        else:
            call = {"name": draw(NAME), "args": draw(CALL_ARGS)}
            if draw(st.booleans()):
                call["id"] = draw(WORD)
            part = {"functionCall": call}
            if signatures and draw(st.booleans()):
                part["thoughtSignature"] = draw(B64)
            parts.append(part)
    return parts


def calls_of(parts: list[dict]) -> list[dict]:
    return [p for p in parts if "functionCall" in p]


def answer_text(parts: list[dict]) -> str:
    return "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))


def split_into_events(parts: list[dict], cuts: list[int]) -> list[dict]:
    """The parts as a stream: one event per run of parts, the last one finishing."""
    bounds = sorted({0, len(parts), *[c % (len(parts) + 1) for c in cuts]})
    events = [
        {"candidates": [{"content": {"role": "model", "parts": parts[a:b]}, "index": 0}]}
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    events[-1]["candidates"][0]["finishReason"] = "STOP"
    events[-1]["usageMetadata"] = {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
    return events


def model_turn(request: dict) -> list[dict]:
    (turn,) = [c for c in request["contents"] if c["role"] == "model"]
    return turn["parts"]


def openai_stream_message(events: list[dict], kept: dict) -> dict:
    """What an OpenAI client assembles from the stream: content and tool calls, by index; what the
    ids stand for goes to `kept` (the store)."""
    stream = ChatCompletionStream(model="m", created=0, remember=kept.update)
    raw = stream.start() + b"".join(stream.feed(jsonx.dumps(e)) for e in events) + stream.finish()
    content, calls = "", {}
    for line in raw.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        for choice in json.loads(line[6:])["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                into = calls.setdefault(
                    call["index"],
                    {"id": call["id"], "type": "function", "function": {"name": "", "arguments": ""}},
                )
                into["function"]["name"] += call["function"].get("name") or ""
                into["function"]["arguments"] += call["function"].get("arguments") or ""
    message = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message


def replay_openai(message: dict, kept: dict) -> list[dict]:
    """The assistant message as a client that drops `extra_content` sends it back: history, plus an
    answer to each tool call; the gateway looks its ids up in `kept` (the store)."""
    calls = [{k: v for k, v in c.items() if k != "extra_content"} for c in message.get("tool_calls") or []]
    history = [
        {"role": "user", "content": "go"},
        {k: v for k, v in message.items() if k in ("role", "content")}
        | ({"tool_calls": calls} if calls else {}),
    ]
    history += [
        {"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in message.get("tool_calls") or []
    ]
    body = {"model": "gemini-2.5-flash", "messages": history}
    assert not OPENAI_REQUEST.validate(body)
    known = {i: kept[i] for i in openai_to.tool_ids.unresolved(history) if i in kept}
    return model_turn(openai_to.chat_request(body, parse_model_name(body["model"]), fetch=fetch, known=known))


def assert_calls_come_back(original: list[dict], replayed: list[dict], bypass: str) -> None:
    """The same calls with the same signatures; Google's stand-in `bypass` on the first call where it had
    none."""
    sent, back = calls_of(original), calls_of(replayed)
    assert [p["functionCall"] for p in back] == [p["functionCall"] for p in sent]
    expected = [p.get("thoughtSignature") for p in sent]
    if sent and not expected[0]:
        expected[0] = bypass
    assert [p.get("thoughtSignature") for p in back] == expected


@SETTINGS
@given(parts=gemini_answer(), cuts=st.lists(st.integers(0, 10), max_size=4))
def test_openai_answers_replayed_as_history_keep_text_calls_and_signatures(parts, cuts):
    answer = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}]
    }
    kept: dict = {}
    whole = openai_from.chat_completion(answer, model="m", created=0, carried=kept)["choices"][0]["message"]
    streamed = openai_stream_message(split_into_events(parts, cuts), kept)
    for message in (whole, streamed):
        replayed = replay_openai(message, kept)
        assert answer_text(replayed) == answer_text(parts)
        assert_calls_come_back(parts, replayed, BYPASS_SIGNATURE)
    assert (streamed["content"] or "") == (whole["content"] or "")
    assert [c["function"] for c in streamed.get("tool_calls", [])] == [
        c["function"] for c in whole.get("tool_calls", [])
    ]


def replay_anthropic(content: list[dict], model: str) -> list[dict]:
    tool_ids = [b["id"] for b in content if b["type"] == "tool_use"]
    history = [{"role": "user", "content": "go"}, {"role": "assistant", "content": content}]
    if tool_ids:
        history.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": i, "content": "ok"} for i in tool_ids],
            }
        )
    body = {"model": model, "max_tokens": 100, "messages": history}
    assert not ANTHROPIC_REQUEST.validate(body)
    return model_turn(anthropic_to.generate_request(body, parse_model_name(model), fetch=fetch))


def anthropic_stream_content(events: list[dict], thinking: bool) -> list[dict]:
    stream = MessageStream(model="m", thinking=thinking)
    raw = stream.start() + b"".join(stream.feed(jsonx.dumps(e)) for e in events) + stream.finish()
    return check_grammar(parse_events(raw))


@SETTINGS
@given(
    parts=gemini_answer(),
    cuts=st.lists(st.integers(0, 10), max_size=4),
    thinking=st.booleans(),
    model=st.sampled_from(["gemini-2.5-flash", "gemini-3-pro-preview"]),
)
def test_anthropic_answers_replayed_as_history_keep_text_calls_and_signatures(parts, cuts, thinking, model):
    answer = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}]
    }
    whole = anthropic_from.message(answer, model="m", thinking=thinking)["content"]
    streamed = anthropic_stream_content(split_into_events(parts, cuts), thinking)
    for content in (whole, streamed):
        replayed = replay_anthropic(content, model)
        assert answer_text(replayed) == answer_text(parts)
        assert_calls_come_back(parts, replayed, BYPASS_SIGNATURE)
    assert comparable(streamed) == comparable(whole)


def comparable(blocks: list[dict]) -> list[dict]:
    """Blocks without what legitimately differs between a stream and a whole answer: the random part of
    tool_use ids, and thinking signatures (a stream cannot wait for a later event's signature, so an
    empty thinking block that only carries one may be missing)."""
    return [
        {k: v for k, v in b.items() if k not in ("id", "signature")}
        for b in blocks
        if b["type"] != "thinking" or b["thinking"]
    ]
