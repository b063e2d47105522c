"""The Anthropic dialect end to end: real gunicorn + gevent, the fake Gemini, the official `anthropic` SDK."""

import base64
import json
import re
import secrets
import time

import anthropic
import pytest
import requests

from tests.anthropic.grammar import check_grammar, parse_events
from tests.conftest import CLIENT_KEY, FIXTURES, UPSTREAM_KEYS, fixture_json

SEED = (FIXTURES / "seed" / "api-examples.md").read_text()
PNG = base64.b64encode(
    base64.b64decode(
        fixture_json("gemini/image_generation.json")["candidates"][0]["content"]["parts"][1]["inlineData"][
            "data"
        ]
    )
).decode()
PDF = base64.b64encode(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF").decode()
USER = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def sdk():
    """Builds SDK clients for a gateway, closed after the test so the server can stop at once."""
    made = []

    def make(gateway, **kwargs) -> anthropic.Anthropic:
        kwargs.setdefault("api_key", CLIENT_KEY)
        made.append(anthropic.Anthropic(base_url=gateway.base_url, max_retries=0, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()


def signature() -> str:
    return base64.b64encode(secrets.token_bytes(48)).decode()


def chunk(*parts, finish=None, prompt=20, out=5, thoughts=7) -> dict:
    candidate = {"content": {"parts": list(parts), "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    usage = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": out,
        "thoughtsTokenCount": thoughts,
        "totalTokenCount": prompt + out + thoughts,
    }
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-3-flash-preview"}


def generate_calls(upstream) -> list[dict]:
    return [c for c in upstream.calls() if "GenerateContent" in c["path"] or "generateContent" in c["path"]]


# -- text ------------------------------------------------------------------------------


def test_text_message(gateway, upstream, sdk):
    reply = sdk(gateway).messages.create(
        model="gemini-2.5-flash",
        max_tokens=256,
        system="Be brief.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        metadata={"user_id": "u-1"},
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        # Sampling settings left this SDK's signature; other clients still send them.
        extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 20, "some_future_field": {"x": 1}},
    )
    assert reply.type == "message" and reply.role == "assistant" and reply.id.startswith("msg_")
    assert [b.type for b in reply.content] == ["text"] and reply.content[0].text == "Paris"
    assert reply.stop_reason == "end_turn" and reply.stop_sequence is None
    assert reply.usage.input_tokens == 11 and reply.usage.output_tokens == 1 + 34  # thoughts are output
    assert reply.model == "gemini-2.5-flash"
    (call,) = upstream.calls()
    assert call["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert call["key"] in UPSTREAM_KEYS and CLIENT_KEY not in json.dumps(call)
    body = call["body"]
    assert body["contents"] == [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["generationConfig"] == {"maxOutputTokens": 256, "temperature": 0.2, "topP": 0.9, "topK": 20}
    assert len(body["safetySettings"]) == 4 and "some_future_field" not in body


def test_bearer_auth_and_the_request_id_header(gateway, upstream, sdk):
    client = sdk(gateway, api_key=None, auth_token=CLIENT_KEY)
    raw = client.messages.with_raw_response.create(model="gemini-2.5-flash", max_tokens=10, messages=USER)
    assert raw.headers["request-id"].startswith("req_")
    assert raw.parse().content[0].text == "Paris"


def test_stream_helpers_yield_the_final_message(gateway, upstream, sdk):
    expected = "".join(
        json.loads(line[6:])["candidates"][0]["content"]["parts"][0]["text"]
        for line in (FIXTURES / "gemini/stream_text.sse").read_text().splitlines()
        if line.startswith("data: ")
    )
    with sdk(gateway).messages.stream(model="gemini-2.5-flash", max_tokens=1024, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == expected and final.content[0].text == expected
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 29 and final.usage.output_tokens > 199
    assert upstream.calls()[0]["path"].endswith(":streamGenerateContent")
    assert upstream.calls()[0]["query"] == "alt=sse"


def test_raw_stream_follows_the_event_grammar(gateway, upstream):
    r = requests.post(
        gateway.url("/v1/messages"),
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={"model": "gemini-2.5-flash", "max_tokens": 50, "stream": True, "messages": USER},
        timeout=10,
    )
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    events = parse_events(r.content)
    blocks = check_grammar(events)
    assert [b["type"] for b in blocks] == ["text"]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


# -- the seed's curls, unchanged ----------------------------------------------------------


def seed_anthropic_requests() -> list[dict]:
    blocks = [b for b in re.findall(r"```bash\n(.*?)```", SEED, re.S) if "/v1/messages" in b]
    out = []
    for block in blocks:
        headers = dict(re.findall(r'-H "([^:]+): ([^"]+)"', block))
        body = re.search(r"-d '(.*)'", block, re.S).group(1)
        out.append({"headers": headers, "body": body})
    return out


SEED_REQUESTS = seed_anthropic_requests()


def test_the_seed_has_both_anthropic_examples():
    assert len(SEED_REQUESTS) == 2


@pytest.mark.parametrize("seed", SEED_REQUESTS, ids=["message", "stream"])
def test_seed_anthropic_curls_work_unchanged(seed, gateway, upstream):
    headers = {k: v.replace("your-api-key-1", CLIENT_KEY) for k, v in seed["headers"].items()}
    r = requests.post(gateway.url("/v1/messages"), data=seed["body"].encode(), headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    if json.loads(seed["body"])["stream"]:
        blocks = check_grammar(parse_events(r.content))
        assert blocks[0]["text"].startswith("I can help")
    else:
        message = r.json()
        assert (
            message["content"] == [{"type": "text", "text": "Paris"}] and message["stop_reason"] == "end_turn"
        )
    assert upstream.calls()[0]["body"]["generationConfig"]["maxOutputTokens"] == 1024


# -- tools over many turns, with Gemini 3 thought signatures ------------------------------


TOOLS = [
    {
        "name": "sum",
        "description": "Add two numbers",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    },
]


def test_gemini3_tool_use_round_trips_signatures_over_many_turns(gateway, upstream, sdk):
    client = sdk(gateway)
    first_sse = [
        json.loads(line[6:])
        for line in (FIXTURES / "gemini/stream_parallel_function_calls_gemini3.sse").read_text().splitlines()
        if line.startswith("data: ")
    ]
    sig1 = first_sse[0]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    sig2, sig3 = signature(), signature()
    upstream.script(
        {"match": ":streamGenerateContent", "events": first_sse},
        {
            "match": ":streamGenerateContent",
            "events": [
                chunk({"text": "Let me add those.", "thought": True}),
                chunk(
                    {
                        "functionCall": {"name": "sum", "args": {"a": 5, "b": 9}, "id": "call-two"},
                        "thoughtSignature": sig2,
                    }
                ),
                chunk({"text": ""}, finish="STOP"),
            ],
        },
        {
            "match": ":generateContent",
            "body": chunk(
                {"functionCall": {"name": "sum", "args": {"a": 14, "b": 13}}, "thoughtSignature": sig3},
                finish="STOP",
            ),
        },
        {"match": ":streamGenerateContent", "events": [chunk({"text": "The total is 27."}, finish="STOP")]},
    )
    messages = [{"role": "user", "content": "Add 2+3, 4+5 and 6+7, then add the results."}]
    params = dict(
        model="gemini-3-flash-preview",
        max_tokens=2048,
        tools=TOOLS,
        thinking={"type": "enabled", "budget_tokens": 4096},
    )

    with client.messages.stream(messages=messages, **params) as stream:
        turn1 = stream.get_final_message()
    assert turn1.stop_reason == "tool_use"
    calls = [b for b in turn1.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [
        ("sum", {"b": 3, "a": 2}),
        ("sum", {"a": 4, "b": 5}),
        ("sum", {"b": 7, "a": 6}),
    ]
    assert len({c.id for c in calls}) == 3 and all(c.id.startswith("toolu_") for c in calls)
    messages.append({"role": "assistant", "content": turn1.content})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": c.id, "content": str(c.input["a"] + c.input["b"])}
                for c in calls
            ],
        }
    )

    with client.messages.stream(messages=messages, **params) as stream:
        turn2 = stream.get_final_message()
    assert [b.type for b in turn2.content] == ["thinking", "tool_use"]
    assert turn2.content[0].thinking == "Let me add those." and turn2.content[0].signature
    # This client keeps only the tool calls: the signature must survive in the tool_use id.
    messages.append({"role": "assistant", "content": [b for b in turn2.content if b.type == "tool_use"]})
    messages.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": turn2.content[1].id,
                    "content": [{"type": "text", "text": "14"}],
                },
                {"type": "text", "text": "Now add 13."},
            ],
        }
    )

    turn3 = client.messages.create(messages=messages, **params)
    assert turn3.stop_reason == "tool_use" and turn3.content[0].type == "thinking"  # carries sig3
    messages.append({"role": "assistant", "content": turn3.content})
    messages.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": turn3.content[1].id, "content": "27"}],
        }
    )

    with client.messages.stream(messages=messages, **params) as stream:
        final = stream.get_final_message()
    assert final.content[-1].text == "The total is 27." and final.stop_reason == "end_turn"

    bodies = [c["body"] for c in generate_calls(upstream)]
    assert len(bodies) == 4
    history = bodies[3]["contents"]
    assert [c["role"] for c in history] == ["user", "model", "user", "model", "user", "model", "user"]
    turn1_parts, results1 = history[1]["parts"], history[2]["parts"]
    assert turn1_parts[0]["thoughtSignature"] == sig1
    assert [p["functionCall"]["id"] for p in turn1_parts] == ["3ae8iwca", "up3kf30e", "ycroch25"]
    assert all("thoughtSignature" not in p for p in turn1_parts[1:])
    assert [
        (p["functionResponse"]["name"], p["functionResponse"]["id"], p["functionResponse"]["response"])
        for p in results1
    ] == [
        ("sum", "3ae8iwca", {"output": "5"}),
        ("sum", "up3kf30e", {"output": "9"}),
        ("sum", "ycroch25", {"output": "13"}),
    ]
    assert history[3]["parts"] == [
        {
            "functionCall": {"name": "sum", "args": {"a": 5, "b": 9}, "id": "call-two"},
            "thoughtSignature": sig2,
        }
    ]
    assert history[4]["parts"] == [
        {"functionResponse": {"name": "sum", "response": {"output": "14"}, "id": "call-two"}},
        {"text": "Now add 13."},
    ]
    assert history[5]["parts"] == [
        {"functionCall": {"name": "sum", "args": {"a": 14, "b": 13}}, "thoughtSignature": sig3}
    ]
    # Every request carried the same tools and thinking settings.
    for body in bodies:
        assert body["tools"][0]["functionDeclarations"][0]["name"] == "sum"
        assert body["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    # Earlier turns were sent back the same way each time.
    assert bodies[2]["contents"] == history[:5]


def test_tool_choice_and_server_tools(gateway, upstream, sdk):
    client = sdk(gateway)
    client.messages.create(
        model="gemini-3-flash-preview",
        max_tokens=100,
        messages=USER,
        tools=TOOLS
        + [
            {"type": "web_search_20250305", "name": "web_search"},
            {"type": "code_execution_20250825", "name": "code_execution"},
        ],
        tool_choice={"type": "tool", "name": "sum", "disable_parallel_tool_use": True},
    )
    body = upstream.calls()[0]["body"]
    assert body["tools"][1:] == [{"googleSearch": {}}, {"codeExecution": {}}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["sum"]}}


BOTCHED = chunk(finish="MALFORMED_FUNCTION_CALL")
BOTCHED["candidates"][0]["finishMessage"] = "Malformed function call: print(default_api.sum(a=2,))"


def test_a_botched_tool_call_is_asked_for_once_more_and_the_sdk_sees_only_the_good_answer(
    gateway, upstream, sdk
):
    call = {"functionCall": {"name": "sum", "args": {"a": 2, "b": 3}}, "thoughtSignature": signature()}
    upstream.script(
        {"match": ":generateContent", "body": BOTCHED},
        {"match": ":generateContent", "body": chunk(call, finish="STOP")},
        {"match": ":streamGenerateContent", "events": [BOTCHED]},
        {"match": ":streamGenerateContent", "events": [chunk(call, finish="STOP")]},
    )
    client = sdk(gateway)
    whole = client.messages.create(model="gemini-3-flash-preview", max_tokens=100, messages=USER, tools=TOOLS)
    assert whole.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in whole.content] == [("tool_use", "sum", {"a": 2, "b": 3})]
    with client.messages.stream(
        model="gemini-3-flash-preview", max_tokens=100, messages=USER, tools=TOOLS
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"a": 2, "b": 3}
    assert len(generate_calls(upstream)) == 4


def test_a_tool_call_botched_twice_is_an_error_in_the_sdk_never_an_end_turn(gateway, upstream, sdk):
    upstream.script(
        {"match": ":generateContent", "body": BOTCHED, "repeat": 2},
        {"match": ":streamGenerateContent", "events": [BOTCHED], "repeat": 2},
    )
    client = sdk(gateway)
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model="gemini-3-flash-preview", max_tokens=100, messages=USER, tools=TOOLS)
    assert caught.value.status_code == 502 and caught.value.body["error"]["type"] == "api_error"
    assert "MALFORMED_FUNCTION_CALL" in caught.value.message
    assert "print(default_api.sum(a=2,))" in caught.value.message
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(
            model="gemini-3-flash-preview", max_tokens=100, messages=USER, tools=TOOLS
        ) as stream,
    ):
        stream.get_final_message()
    assert "MALFORMED_FUNCTION_CALL" in caught.value.body["error"]["message"]
    assert len(generate_calls(upstream)) == 4  # each asked once more, no more


# -- thinking, images, documents ------------------------------------------------------------


def test_thinking_stream(gateway, upstream, sdk):
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [
                json.loads(line[6:])
                for line in (FIXTURES / "gemini/stream_thinking_include_thoughts.sse")
                .read_text()
                .splitlines()
                if line.startswith("data: ")
            ],
        }
    )
    with sdk(gateway).messages.stream(
        model="gemini-2.5-flash",
        max_tokens=8000,
        messages=USER,
        thinking={"type": "enabled", "budget_tokens": 2048},
    ) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking.startswith("**Exploring Sky Color**")
    assert final.content[1].text.startswith("The sky is blue")
    assert "thinking" in events and "text" in events
    config = upstream.calls()[0]["body"]["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 2048, "includeThoughts": True}


def test_thinking_blocks_always_end_with_a_signature_the_sdk_keeps(gateway, upstream, sdk):
    sig = signature()
    upstream.script(
        {  # Gemini signs its thoughts on an empty part between the thoughts and the answer
            "match": ":streamGenerateContent",
            "events": [
                chunk({"text": "Pondering", "thought": True}),
                chunk({"text": "", "thoughtSignature": sig}),
                chunk({"text": "Answer"}, finish="STOP"),
            ],
        },
        {  # ... or on the final empty part, after the answer began: too late for the block
            "match": ":streamGenerateContent",
            "events": [
                chunk({"text": "Pondering", "thought": True}),
                chunk({"text": "Answer"}),
                chunk({"text": "", "thoughtSignature": sig}, finish="STOP"),
            ],
        },
    )
    client = sdk(gateway)
    finals = []
    for _ in range(2):
        with client.messages.stream(
            model="gemini-3-flash-preview",
            max_tokens=8000,
            messages=USER,
            thinking={"type": "enabled", "budget_tokens": 2048},
        ) as stream:
            finals.append(stream.get_final_message())
    signed, stand_in = (f.content[0] for f in finals)
    assert signed.type == "thinking" and signed.thinking == "Pondering" and signed.signature == "gg1." + sig
    assert stand_in.type == "thinking" and stand_in.signature  # never empty
    # Replayed as Claude Code does, the real one goes back to Gemini and the stand-in as nothing.
    for final in finals:
        client.messages.create(
            model="gemini-3-flash-preview",
            max_tokens=100,
            messages=[
                *USER,
                {"role": "assistant", "content": [b.model_dump() for b in final.content]},
                *USER,
            ],
        )
    first, second = (c["body"]["contents"][1]["parts"] for c in generate_calls(upstream)[2:])
    assert first == [{"text": "Answer", "thoughtSignature": sig}]
    assert second == [{"text": "Answer"}]


def test_images_and_documents_reach_gemini_as_inline_data(gateway, upstream, sdk):
    sdk(gateway).messages.create(
        model="gemini-2.5-flash",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        "title": "Report",
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "plain words"},
                    },
                    {"type": "text", "text": "Describe these.", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
    )
    parts = upstream.calls()[0]["body"]["contents"][0]["parts"]
    assert parts == [
        {"inlineData": {"mimeType": "image/png", "data": PNG}},  # the bytes say PNG, whatever the label
        {"text": "Report"},
        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
        {"text": "plain words"},
        {"text": "Describe these."},
    ]


def test_an_image_model_answer_comes_back_as_markdown_and_an_image_block(gateway, upstream, sdk):
    reply = sdk(gateway).messages.create(model="gemini-2.5-flash-image", max_tokens=100, messages=USER)
    image = fixture_json("gemini/image_generation.json")["candidates"][0]["content"]["parts"][1]["inlineData"]
    assert reply.content[0].type == "text"
    assert f"![image](data:image/png;base64,{image['data']})" in reply.content[0].text
    assert reply.content[-1].type == "image"
    assert reply.content[-1].source == {"type": "base64", "media_type": "image/png", "data": image["data"]}


# -- count_tokens and models -------------------------------------------------------------


def test_count_tokens(gateway, upstream, sdk):
    counted = sdk(gateway).messages.count_tokens(
        model="gemini-2.5-flash", messages=USER, system="sys", tools=TOOLS
    )
    assert counted.input_tokens == 5
    call = upstream.calls()[0]
    assert call["path"] == "/v1beta/models/gemini-2.5-flash:countTokens"
    request = call["body"]["generateContentRequest"]
    assert request["model"] == "models/gemini-2.5-flash" and request["systemInstruction"] == {
        "parts": [{"text": "sys"}]
    }
    assert request["tools"][0]["functionDeclarations"][0]["name"] == "sum"


def test_models_in_anthropic_shape(gateway, upstream, sdk):
    client = sdk(gateway)
    listed = list(client.models.list(limit=3))
    gemini = [
        m["name"].removeprefix("models/")
        for m in fixture_json("gemini/models_list_page.json")["models"]
        if "generateContent" in m["supportedGenerationMethods"]
    ]
    assert [m.id for m in listed] == gemini  # the SDK pages through with after_id
    assert all(m.type == "model" and m.display_name for m in listed)
    one = client.models.retrieve("gemini-2.5-flash")
    assert one.id == "gemini-2.5-flash" and one.type == "model"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("unknown-model")


# -- errors: the SDK's typed exceptions ----------------------------------------------------


def test_missing_max_tokens_is_invalid_request(gateway, upstream):
    r = requests.post(
        gateway.url("/v1/messages"),
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={"model": "gemini-2.5-flash", "messages": USER},
        timeout=10,
    )
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"] and body["request_id"].startswith("req_")
    assert upstream.calls() == []


def test_client_errors_raise_the_matching_exceptions(gateway, upstream, sdk):
    with pytest.raises(anthropic.AuthenticationError) as err:
        sdk(gateway, api_key="wrong").messages.create(model="gemini-2.5-flash", max_tokens=10, messages=USER)
    assert err.value.type == "authentication_error" and err.value.request_id.startswith("req_")
    client = sdk(gateway)
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(
            model="gemini-2.5-flash",
            max_tokens=10,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_nowhere", "content": "x"}],
                }
            ],
        )
    assert "toolu_nowhere" in err.value.api_message
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="unknown-model", max_tokens=10, messages=USER)
    assert [c["path"] for c in upstream.calls()] == ["/v1beta/models/unknown-model:generateContent"]


@pytest.mark.parametrize(
    "status, fixture, exception, kind",
    [
        (400, "error_400_invalid_argument.json", anthropic.BadRequestError, "invalid_request_error"),
        (429, "error_429_resource_exhausted.json", anthropic.RateLimitError, "rate_limit_error"),
        (500, "error_500_internal.json", anthropic.InternalServerError, "api_error"),
        (503, "error_503_high_demand.json", anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_upstream_errors_raise_the_matching_exceptions(
    start_gateway, upstream, status, fixture, exception, kind, sdk
):
    gateway = start_gateway(UPSTREAM_RETRIES=0)  # key state of its own
    upstream.script(
        {
            "match": ":generateContent",
            "status": status,
            "body": fixture_json(f"gemini/{fixture}"),
            "repeat": -1,
        }
    )
    with pytest.raises(exception) as err:
        sdk(gateway).messages.create(model="gemini-2.5-flash", max_tokens=10, messages=USER)
    assert err.value.type == kind and err.value.body["type"] == "error"
    if status == 503:
        assert err.value.status_code == 529
    if status == 429:
        assert int(err.value.response.headers["retry-after"]) >= 1
    assert not any(k in json.dumps(err.value.body) for k in UPSTREAM_KEYS)


def test_request_too_large(start_gateway, upstream, sdk):
    gateway = start_gateway(MAX_REQUEST_BYTES=4096)
    with pytest.raises(anthropic.ContentTooLargeError) as err:
        sdk(gateway).messages.create(
            model="gemini-2.5-flash", max_tokens=10, messages=[{"role": "user", "content": "x" * 10000}]
        )
    assert err.value.type == "request_too_large"


def test_a_failure_mid_stream_becomes_an_error_event(gateway, upstream, sdk):
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [chunk({"text": "Hello"}), chunk({"text": " world"})],
            "fault": "reset_after",
            "after": 1,
        }
    )
    client = sdk(gateway)
    seen = []
    with (
        pytest.raises(anthropic.APIStatusError) as err,
        client.messages.stream(model="gemini-2.5-flash", max_tokens=10, messages=USER) as stream,
    ):
        for text in stream.text_stream:
            seen.append(text)
    assert seen == ["Hello"]
    assert err.value.body["error"]["type"] in ("overloaded_error", "api_error")


def test_pings_while_gemini_is_silent(start_gateway, upstream, sdk):
    gateway = start_gateway(HEARTBEAT_INTERVAL=0.2)
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "interval": 0.7,
            "repeat": 2,
            "events": [chunk({"text": "a"}), chunk({"text": "b"}, finish="STOP")],
        }
    )
    r = requests.post(
        gateway.url("/v1/messages"),
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={"model": "gemini-2.5-flash", "max_tokens": 50, "stream": True, "messages": USER},
        timeout=10,
    )
    events = parse_events(r.content)
    assert "ping" in [name for name, _ in events]
    assert check_grammar(events)[0]["text"] == "ab"
    with sdk(gateway).messages.stream(model="gemini-2.5-flash", max_tokens=10, messages=USER) as stream:
        assert stream.get_final_message().content[0].text == "ab"


def test_message_start_carries_the_prompt_s_tokens_or_an_estimate_when_a_ping_comes_first(
    start_gateway, upstream, sdk
):
    gateway = start_gateway(HEARTBEAT_INTERVAL=0.3)
    long_prompt = [{"role": "user", "content": "word " * 400}]  # about 500 tokens by the estimate
    upstream.script(
        # Gemini answers at once: message_start waits for its first event and carries its count.
        {
            "match": ":streamGenerateContent",
            "events": [chunk({"text": "a"}, prompt=321), chunk({"text": "b"}, finish="STOP", prompt=321)],
        },
        # Gemini thinks first: a ping must go, message_start goes before it with the estimate.
        {
            "match": ":streamGenerateContent",
            "lead": 1.0,
            "events": [chunk({"text": "a"}, prompt=321), chunk({"text": "b"}, finish="STOP", prompt=321)],
        },
    )
    client = sdk(gateway)
    for expected in ("real", "estimate"):
        with client.messages.create(
            model="gemini-2.5-flash", max_tokens=50, messages=long_prompt, stream=True
        ) as stream:
            events = list(stream)  # the SDK's raw events: pings are skipped
        start = events[0]
        assert start.type == "message_start"
        if expected == "real":
            assert start.message.usage.input_tokens == 321
        else:
            assert 300 <= start.message.usage.input_tokens <= 700 and start.message.usage.input_tokens != 321
        assert events[-2].type == "message_delta" and events[-2].usage.input_tokens == 321
    raw = requests.post(
        gateway.url("/v1/messages"),
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        json={"model": "gemini-2.5-flash", "max_tokens": 50, "stream": True, "messages": USER},
        timeout=10,
    )
    assert [n for n, _ in parse_events(raw.content)][:2] == ["message_start", "content_block_start"]


def test_more_than_five_stop_sequences_end_the_stream_and_the_upstream_call_early(gateway, upstream, sdk):
    words = ["Step one.", " Step two.", " DONE and more"] + [" words"] * 12
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "interval": 0.25,
            "events": [chunk({"text": w}) for w in words[:-1]] + [chunk({"text": words[-1]}, finish="STOP")],
        }
    )
    started = time.time()
    sequences = ["DONE", "HALT", "END", "STOP!", "QUIT", "EXIT"]  # Gemini takes five: the gateway scans
    with sdk(gateway).messages.stream(
        model="gemini-2.5-flash", max_tokens=100, messages=USER, stop_sequences=sequences
    ) as stream:
        final = stream.get_final_message()
    assert time.time() - started < 1.5  # the whole answer takes 3.5 s
    assert final.content[0].text == "Step one. Step two. "
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "DONE"
    assert "stopSequences" not in upstream.calls()[0]["body"]["generationConfig"]
    deadline = time.time() + 5
    while time.time() < deadline and not upstream.calls()[0]["closed"]:
        time.sleep(0.05)
    assert upstream.calls()[0]["closed"] - started < 2.5  # the gateway hung up on Gemini


def test_up_to_five_stop_sequences_go_to_gemini_and_end_as_end_turn(gateway, upstream, sdk):
    upstream.script(
        {"match": ":streamGenerateContent", "events": [chunk({"text": "Step one. "}, finish="STOP")]},
        {
            "match": ":generateContent",
            "body": {
                "candidates": [
                    {
                        "content": {"parts": [{"text": "Step one. "}], "role": "model"},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ]
            },
        },
    )
    with sdk(gateway).messages.stream(
        model="gemini-2.5-flash", max_tokens=100, messages=USER, stop_sequences=["DONE", "HALT"]
    ) as stream:
        final = stream.get_final_message()
    # Gemini stopped generating at the sequence (no tokens paid past it) but does not say which matched.
    assert final.content[0].text == "Step one. " and final.stop_reason == "end_turn"
    assert final.stop_sequence is None
    whole = sdk(gateway).messages.create(
        model="gemini-2.5-flash", max_tokens=100, messages=USER, stop_sequences=["DONE"]
    )
    assert whole.stop_reason == "end_turn" and whole.content[0].text == "Step one. "
    stream_call, whole_call = upstream.calls()
    assert stream_call["body"]["generationConfig"]["stopSequences"] == ["DONE", "HALT"]
    assert whole_call["body"]["generationConfig"]["stopSequences"] == ["DONE"]
