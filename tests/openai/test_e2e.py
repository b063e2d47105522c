"""The OpenAI dialect end to end: real gunicorn + gevent, the fake Gemini, the official `openai` SDK."""

import base64
import json
import re
import struct

import openai
import pytest
import requests
from pydantic import BaseModel

from app.translate.signatures import BYPASS_SIGNATURE
from tests.conftest import CLIENT_KEY, FIXTURES, SEED_KEY, UPSTREAM_KEYS, fixture_json

SEED = (FIXTURES / "seed" / "api-examples.md").read_text()
PNG = fixture_json("gemini/image_generation.json")["candidates"][0]["content"]["parts"][1]["inlineData"][
    "data"
]
SUM = {
    "type": "function",
    "function": {
        "name": "sum",
        "description": "Add two integers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
USER = [{"role": "user", "content": "Hello"}]


_opened: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients():
    """Idle keep-alive connections would hold each gateway's graceful shutdown open."""
    yield
    while _opened:
        _opened.pop().close()


def sdk(gateway, api_key=CLIENT_KEY, **kwargs) -> openai.OpenAI:
    client = openai.OpenAI(api_key=api_key, base_url=gateway.url("/v1"), max_retries=0, **kwargs)
    _opened.append(client)
    return client


def generate_calls(upstream) -> list[dict]:
    return [
        c
        for c in upstream.calls()
        if ":generateContent" in c["path"] or ":streamGenerateContent" in c["path"]
    ]


def answer(*parts, finish="STOP", **usage) -> dict:
    meta = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15, **usage}
    return {
        "candidates": [
            {"content": {"parts": list(parts), "role": "model"}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": meta,
        "modelVersion": "gemini-3-flash-preview",
        "responseId": "resp123",
    }


# -- text -------------------------------------------------------------------------------------------


def test_text(gateway, upstream):
    completion = sdk(gateway).chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        temperature=0.2,
        max_completion_tokens=100,
        stop=["END"],
        user="u-1",
        extra_body={"some_future_field": {"x": 1}},
    )
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.content == "Paris" and completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 11 and completion.usage.completion_tokens == 35
    assert completion.usage.completion_tokens_details.reasoning_tokens == 34
    (call,) = upstream.calls()
    assert call["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert call["key"] in UPSTREAM_KEYS and CLIENT_KEY not in json.dumps(call)
    body = call["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["generationConfig"] == {"maxOutputTokens": 100, "temperature": 0.2, "stopSequences": ["END"]}
    assert "some_future_field" not in json.dumps(body)


def test_stream(gateway, upstream):
    stream = sdk(gateway).chat.completions.create(
        model="gemini-2.5-flash", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("I can help you with that!") and text.endswith("the current weather for you!")
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 29 + 115 + 199
    assert generate_calls(upstream)[0]["query"] == "alt=sse"


def test_stream_helper_accumulates(gateway, upstream):
    with sdk(gateway).chat.completions.stream(model="gemini-2.5-flash", messages=USER) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content.startswith("I can help you with that!")


def test_upstream_failure_mid_stream_raises_in_the_sdk(gateway, upstream):
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [answer({"text": "Hel"}, finish=None)] * 3,
            "fault": "reset_after",
            "after": 1,
        }
    )
    stream = sdk(gateway).chat.completions.create(model="gemini-2.5-flash", messages=USER, stream=True)
    got = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content)
    assert "Hel" in got
    assert "broke" in caught.value.message


@pytest.mark.parametrize(
    "reason", ["BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "RECITATION", "OTHER", "NO_IMAGE"]
)
def test_finish_reasons_openai_has_no_name_for_read_content_filter(gateway, upstream, reason):
    upstream.script(
        {"match": ":generateContent", "body": answer({"text": "Part"}, finish=reason)},
        {"match": ":streamGenerateContent", "events": [answer({"text": "Part"}, finish=reason)]},
    )
    client = sdk(gateway)
    whole = client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert whole.choices[0].finish_reason == "content_filter"
    chunks = list(client.chat.completions.create(model="gemini-2.5-flash", messages=USER, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["content_filter"]


BOTCHED = answer(finish="MALFORMED_FUNCTION_CALL")
BOTCHED["candidates"][0]["finishMessage"] = "Malformed function call: print(default_api.sum(a=2,))"


def test_a_botched_tool_call_is_asked_for_once_more_and_the_sdk_sees_only_the_good_answer(gateway, upstream):
    call = {"functionCall": {"name": "sum", "args": {"a": 2, "b": 3}}, "thoughtSignature": "c2ln"}
    upstream.script(
        {"match": ":generateContent", "body": BOTCHED},
        {"match": ":generateContent", "body": answer(call)},
        {"match": ":streamGenerateContent", "events": [BOTCHED]},
        {"match": ":streamGenerateContent", "events": [answer(call)]},
    )
    client = sdk(gateway)
    whole = client.chat.completions.create(model="gemini-3-flash-preview", messages=USER, tools=[SUM])
    assert whole.choices[0].finish_reason == "tool_calls"
    assert whole.choices[0].message.tool_calls[0].function.name == "sum"
    with client.chat.completions.stream(model="gemini-3-flash-preview", messages=USER, tools=[SUM]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {"a": 2, "b": 3}
    assert len(generate_calls(upstream)) == 4


def test_a_tool_call_botched_twice_is_an_error_in_the_sdk_never_a_silent_stop(gateway, upstream):
    upstream.script(
        {"match": ":generateContent", "body": BOTCHED, "repeat": 2},
        {"match": ":streamGenerateContent", "events": [BOTCHED], "repeat": 2},
    )
    client = sdk(gateway)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gemini-3-flash-preview", messages=USER, tools=[SUM])
    assert caught.value.status_code == 502 and "MALFORMED_FUNCTION_CALL" in caught.value.message
    assert "print(default_api.sum(a=2,))" in caught.value.message
    stream = client.chat.completions.create(
        model="gemini-3-flash-preview", messages=USER, tools=[SUM], stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert "MALFORMED_FUNCTION_CALL" in caught.value.message
    assert len(generate_calls(upstream)) == 4  # each asked once more, no more


# -- tools ------------------------------------------------------------------------------------------


def test_tool_round_trip_with_a_short_id_and_the_signature_kept_in_the_store(gateway, upstream):
    gemini3 = fixture_json("gemini/function_call_gemini3.json")
    signature = gemini3["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    upstream.script({"match": ":generateContent", "body": gemini3})
    client = sdk(gateway)
    weather = {
        "type": "function",
        "function": {
            "name": "weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    }
    first = client.chat.completions.create(model="gemini-3-pro-preview", messages=USER, tools=[weather])
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {
        "location": "San Francisco"
    }
    assert call.model_extra["extra_content"]["google"]["thought_signature"] == signature
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call.id)  # short, like OpenAI's: chat UIs replay it
    # A client that keeps only the id, the name and the arguments (as most do):
    replay = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'},
    ]
    second = client.chat.completions.create(model="gemini-3-pro-preview", tools=[weather], messages=replay)
    assert second.choices[0].message.content == "Paris"
    body = generate_calls(upstream)[-1]["body"]
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "weather", "args": {"location": "San Francisco"}},
                "thoughtSignature": signature,
            }
        ],
    }
    assert body["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "weather", "response": {"temp_c": 18}}}],
    }
    # The store keeps it per client key: another key replaying the same id gets Google's stand-in.
    sdk(gateway, api_key=SEED_KEY).chat.completions.create(
        model="gemini-3-pro-preview", tools=[weather], messages=replay
    )
    other = generate_calls(upstream)[-1]["body"]["contents"][1]["parts"][0]
    assert other["thoughtSignature"] == BYPASS_SIGNATURE


def test_tool_round_trip_replaying_the_sdk_message_as_is(gateway, upstream):
    upstream.script({"match": ":generateContent", "body": fixture_json("gemini/function_call_gemini3.json")})
    client = sdk(gateway)
    first = client.chat.completions.create(model="gemini-3-pro-preview", messages=USER, tools=[SUM])
    message = first.choices[0].message
    client.chat.completions.create(
        model="gemini-3-pro-preview",
        tools=[SUM],
        messages=[
            *USER,
            message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "sunny"},
        ],
    )
    body = generate_calls(upstream)[-1]["body"]
    assert body["contents"][1]["parts"][0]["thoughtSignature"].startswith("Eqo+")


def test_parallel_tools(gateway, upstream):
    upstream.script(
        {"match": ":generateContent", "body": fixture_json("gemini/parallel_function_calls.json")}
    )
    client = sdk(gateway)
    first = client.chat.completions.create(
        model="gemini-2.5-flash", messages=USER, tools=[SUM], tool_choice="required", parallel_tool_calls=True
    )
    calls = first.choices[0].message.tool_calls
    assert len(calls) == 3 and len({c.id for c in calls}) == 3
    results = {c.id: str(sum(json.loads(c.function.arguments).values())) for c in calls}
    client.chat.completions.create(
        model="gemini-2.5-flash",
        tools=[SUM],
        messages=[
            *USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.function.name, "arguments": c.function.arguments},
                    }
                    for c in calls
                ],
            },
            *({"role": "tool", "tool_call_id": c.id, "content": results[c.id]} for c in reversed(calls)),
        ],
    )
    first_body, second_body = (c["body"] for c in generate_calls(upstream))
    assert first_body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    model_turn, answers = second_body["contents"][1:]
    assert [p["functionCall"]["args"] for p in model_turn["parts"]] == [
        {"a": 2, "b": 3},
        {"a": 4, "b": 5},
        {"a": 6, "b": 7},
    ]
    assert "thoughtSignature" in model_turn["parts"][0] and "thoughtSignature" not in model_turn["parts"][1]
    assert answers == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "sum", "response": {"result": r}}} for r in ("5", "9", "13")],
    }


def test_streamed_parallel_tool_calls_accumulate_in_the_sdk(gateway, upstream):
    events = [
        json.loads(line[6:])
        for line in (FIXTURES / "gemini" / "stream_parallel_function_calls_gemini3.sse")
        .read_text()
        .splitlines()
        if line.startswith("data: ")
    ]
    upstream.script({"match": ":streamGenerateContent", "events": events})
    with sdk(gateway).chat.completions.stream(
        model="gemini-3-flash-preview", messages=USER, tools=[SUM]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"b": 3, "a": 2},
        {"a": 4, "b": 5},
        {"b": 7, "a": 6},
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    # Each id was kept with Gemini's call id before it was sent: a replay without extra_content gets them.
    client = sdk(gateway)
    client.chat.completions.create(
        model="gemini-3-flash-preview",
        tools=[SUM],
        messages=[
            *USER,
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": "sum", "arguments": c.function.arguments},
                    }
                    for c in calls
                ],
            },
            *({"role": "tool", "tool_call_id": c.id, "content": "5"} for c in calls),
        ],
    )
    replayed = generate_calls(upstream)[-1]["body"]["contents"]
    assert [p["functionCall"]["id"] for p in replayed[1]["parts"]] == ["3ae8iwca", "up3kf30e", "ycroch25"]
    assert (
        replayed[1]["parts"][0]["thoughtSignature"]
        == events[0]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    )
    assert [p["functionResponse"]["id"] for p in replayed[2]["parts"]] == ["3ae8iwca", "up3kf30e", "ycroch25"]


# -- reasoning, structured output, images ---------------------------------------------------------


def test_reasoning(gateway, upstream):
    upstream.script(
        {"match": ":generateContent", "body": fixture_json("gemini/thinking_include_thoughts.json")}
    )
    completion = sdk(gateway).chat.completions.create(
        model="gemini-2.5-flash", messages=USER, reasoning_effort="medium"
    )
    message = completion.choices[0].message
    assert message.model_extra["reasoning_content"].startswith("**")
    assert not message.content.startswith("**")
    assert generate_calls(upstream)[0]["body"]["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 8192,
        "includeThoughts": True,
    }


def test_streamed_reasoning(gateway, upstream):
    events = [
        json.loads(line[6:])
        for line in (FIXTURES / "gemini" / "stream_thinking_include_thoughts.sse").read_text().splitlines()
        if line.startswith("data: ")
    ]
    upstream.script({"match": ":streamGenerateContent", "events": events})
    chunks = list(
        sdk(gateway).chat.completions.create(
            model="gemini-3-flash-preview", messages=USER, stream=True, reasoning_effort="high"
        )
    )
    reasoning = "".join(c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert reasoning.startswith("**Exploring Sky Color**") and content.startswith("The sky is blue")
    assert (
        generate_calls(upstream)[0]["body"]["generationConfig"]["thinkingConfig"]["thinkingLevel"] == "HIGH"
    )


class City(BaseModel):
    city: str
    population: int


def test_json_schema_with_the_sdk_parse_helper(gateway, upstream):
    upstream.script(
        {"match": ":generateContent", "body": answer({"text": '{"city": "Paris", "population": 2100000}'})}
    )
    completion = sdk(gateway).chat.completions.parse(
        model="gemini-2.5-flash", messages=USER, response_format=City
    )
    assert completion.choices[0].message.parsed == City(city="Paris", population=2100000)
    config = generate_calls(upstream)[0]["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["properties"]["population"] == {
        "title": "Population",
        "type": "integer",
    }


def test_image_in(gateway, upstream):
    sdk(gateway).chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    parts = generate_calls(upstream)[0]["body"]["contents"][0]["parts"]
    assert parts == [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}]


def test_private_image_url_is_refused(gateway, upstream):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway).chat.completions.create(
            model="gemini-2.5-flash",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/cat.png"}}],
                }
            ],
        )
    assert caught.value.body["param"] == "messages[0].content[0].image_url.url"
    assert not generate_calls(upstream)


def test_image_out(gateway, upstream):
    completion = sdk(gateway).chat.completions.create(model="gemini-2.5-flash-image", messages=USER)
    message = completion.choices[0].message
    assert f"![image](data:image/png;base64,{PNG})" in message.content
    assert message.model_extra["images"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    ]


# -- other endpoints ------------------------------------------------------------------------------


def test_models(gateway, upstream):
    client = sdk(gateway)
    ids = [m.id for m in client.models.list()]
    assert "gemini-2.5-flash" in ids and len(ids) == len(set(ids))
    model = client.models.retrieve("gemini-2.5-flash")
    assert model.id == "gemini-2.5-flash" and model.owned_by == "google"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("unknown-model")


def test_embeddings(gateway, upstream):
    vectors = {"embeddings": [{"values": [0.1, -2.5, 3.0]}, {"values": [1.0, 0.333, -0.75]}]}
    upstream.script({"match": ":batchEmbedContents", "body": vectors, "repeat": 2})
    client = sdk(gateway)
    floats = client.embeddings.create(
        model="gemini-embedding-001", input=["alpha", "beta"], encoding_format="float"
    )
    packed = client.embeddings.create(
        model="gemini-embedding-001", input=["alpha", "beta"]
    )  # the SDK asks for base64
    assert [d.index for d in floats.data] == [0, 1]
    assert [d.embedding for d in floats.data] == [e["values"] for e in vectors["embeddings"]]
    for a, b in zip(floats.data, packed.data, strict=False):
        assert b.embedding == [struct.unpack("<f", struct.pack("<f", v))[0] for v in a.embedding]
    call = [c for c in upstream.calls() if c["path"].endswith(":batchEmbedContents")][0]
    assert call["body"]["requests"][1] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "beta"}]},
    }


def test_images(gateway, upstream):
    result = sdk(gateway).images.generate(
        model="imagen-4.0-generate-001", prompt="A robot", n=3, size="1024x1024"
    )
    assert len(result.data) == 3 and base64.b64decode(result.data[0].b64_json).startswith(b"\x89PNG")
    call = [c for c in upstream.calls() if c["path"].endswith(":predict")][0]
    assert call["body"] == {
        "instances": [{"prompt": "A robot"}],
        "parameters": {"sampleCount": 3, "aspectRatio": "1:1"},
    }


def test_speech(gateway, upstream):
    client = sdk(gateway)
    wav = client.audio.speech.create(model="tts-1", voice="nova", input="Hello there", response_format="wav")
    assert wav.content[:4] == b"RIFF" and wav.response.headers["content-type"] == "audio/wav"
    mp3 = client.audio.speech.create(
        model="gemini-2.5-flash-preview-tts", voice="Charon", input="Hello there"
    )
    assert mp3.response.headers["content-type"] == "audio/mpeg" and mp3.content[:3] == b"ID3"
    bodies = [c["body"] for c in generate_calls(upstream)]
    voices = [
        b["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"]
        for b in bodies
    ]
    assert voices == ["Zephyr", "Charon"]


# -- errors ---------------------------------------------------------------------------------------


def test_client_errors_raise_typed_exceptions(gateway, upstream):
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(gateway, api_key="wrong").models.list()
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway).chat.completions.create(model="gemini-2.5-flash", messages=[])
    assert caught.value.param == "messages" and caught.value.type == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(gateway).chat.completions.create(model="unknown-model", messages=USER)
    assert caught.value.code == "model_not_found"
    assert not any(k in json.dumps(caught.value.body) for k in UPSTREAM_KEYS)


@pytest.mark.parametrize(
    "status, fixture, exception",
    [
        (400, "error_400_invalid_argument.json", openai.BadRequestError),
        (429, "error_429_resource_exhausted.json", openai.RateLimitError),
        (500, "error_500_internal.json", openai.InternalServerError),
        (503, "error_503_high_demand.json", openai.InternalServerError),
    ],
)
def test_upstream_errors_raise_typed_exceptions(start_gateway, upstream, status, fixture, exception):
    gateway = start_gateway(UPSTREAM_RETRIES=0)  # key state of its own
    upstream.script(
        {
            "match": ":generateContent",
            "status": status,
            "body": fixture_json(f"gemini/{fixture}"),
            "repeat": -1,
        }
    )
    with pytest.raises(exception) as caught:
        sdk(gateway).chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert caught.value.status_code == status
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    if status == 429:
        assert int(caught.value.response.headers["retry-after"]) >= 1
    assert not any(k in json.dumps(caught.value.body) for k in UPSTREAM_KEYS)


def test_a_model_the_key_may_not_use_raises_permission_denied(start_gateway, upstream, tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {"keys": [{"name": "flash-only", "key": "flash-only-key", "models": ["gemini-2.5-flash*"]}]}
        )
    )
    gateway = start_gateway(CLIENT_KEYS_FILE=keys)
    client = sdk(gateway, api_key="flash-only-key")
    assert (
        client.chat.completions.create(model="gemini-2.5-flash-high", messages=USER)
        .choices[0]
        .message.content
    )
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="gemini-2.5-pro", messages=USER)
    assert caught.value.param == "model" and caught.value.type == "permission_error"
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="gemini-embedding-001", input="x")
    assert len(generate_calls(upstream)) == 1


def test_heartbeats_are_sse_comments_the_sdk_skips(start_gateway, upstream):
    gateway = start_gateway(HEARTBEAT_INTERVAL=0.2)
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [answer({"text": "a"}, finish=None), answer({"text": "b"})],
            "interval": 0.7,
        }
    )
    with requests.post(
        gateway.url("/v1/chat/completions"),
        json={"model": "gemini-2.5-flash", "messages": USER, "stream": True},
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        timeout=10,
    ) as r:
        raw = r.content
    assert b": ping\n\n" in raw
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [answer({"text": "a"}, finish=None), answer({"text": "b"})],
            "interval": 0.7,
        }
    )
    chunks = list(sdk(gateway).chat.completions.create(model="gemini-2.5-flash", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "ab"


# -- the seed's curls, replayed unchanged --------------------------------------------------------------


def seed_requests() -> list[dict]:
    out = []
    for block in re.findall(r"```bash\n(.*?)```", SEED, re.S):
        if "/v1/chat/completions" in block:
            out.append(
                {
                    "path": re.search(r"http://localhost:7860(\S+)", block).group(1),
                    "headers": dict(re.findall(r'-H "([^:]+): ([^"]+)"', block)),
                    "body": re.search(r"-d '(.*)'", block, re.S).group(1),
                }
            )
    return out


SEED_REQUESTS = seed_requests()


def test_the_seed_has_the_four_openai_examples():
    assert len(SEED_REQUESTS) == 4 and all(SEED_KEY in s["headers"]["Authorization"] for s in SEED_REQUESTS)


@pytest.mark.parametrize("seed", SEED_REQUESTS, ids=["text", "stream", "image", "image-stream"])
def test_seed_openai_curls_work_unchanged(seed, gateway, upstream):
    r = requests.post(
        gateway.url(seed["path"]), data=seed["body"].encode(), headers=seed["headers"], timeout=10
    )
    assert r.status_code == 200, r.text
    request = json.loads(seed["body"])
    image = "image" in request["model"]
    if request["stream"]:
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        lines = [line for line in r.text.split("\n\n") if line]
        assert lines[-1] == "data: [DONE]"
        chunks = [json.loads(line[6:]) for line in lines[:-1]]
        content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    else:
        content = r.json()["choices"][0]["message"]["content"]
    if image:
        assert "![image](data:image/png;base64," in content
    else:
        assert content.startswith(("Paris", "I can help"))
    assert generate_calls(upstream)[0]["path"].startswith(f"/v1beta/models/{request['model']}:")
