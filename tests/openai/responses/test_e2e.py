"""The Responses API end to end: real gunicorn + gevent, the fake Gemini, the official `openai` SDK's
`client.responses.*` as an application would call it."""

import base64
import json

import openai
import pytest

from app.openai import tool_ids
from tests.conftest import FIXTURES, fixture_json
from tests.openai.responses.grammar import check_stream, parse_events
from tests.openai.test_e2e import City, _close_clients, answer, generate_calls, sdk  # noqa: F401  (fixture)

GEN = ":generateContent"
STREAM = ":streamGenerateContent"
PNG = fixture_json("gemini/image_generation.json")["candidates"][0]["content"]["parts"][1]["inlineData"][
    "data"
]
WEATHER = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
        "additionalProperties": False,
    },
    "strict": True,
}


def sse(name: str) -> list[dict]:
    text = (FIXTURES / "gemini" / name).read_text()
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_create(gateway, upstream):
    response = sdk(gateway).responses.create(
        model="gemini-2.5-flash", input="Capital of France?", instructions="Be brief.", max_output_tokens=100
    )
    assert response.status == "completed" and response.output_text == "Paris"
    assert response.usage.input_tokens == 11 and response.usage.output_tokens_details.reasoning_tokens == 34
    (call,) = generate_calls(upstream)
    assert call["body"]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert call["body"]["generationConfig"]["maxOutputTokens"] == 100


def test_stream_helper(gateway, upstream):
    upstream.script({"match": STREAM, "events": sse("stream_thinking_include_thoughts.sse")})
    with sdk(gateway).responses.stream(
        model="gemini-2.5-flash", input="Why is the sky blue?", reasoning={"summary": "auto", "effort": "low"}
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds and "response.output_text.delta" in kinds
    assert final.output_text.startswith("The sky is blue")
    assert final.output[0].type == "reasoning" and final.output[0].summary[0].text.startswith("**Exploring")


def _logprobs_answer(text: str, finish: str | None = None) -> dict:
    chosen = [{"token": t, "logProbability": -0.25} for t in text.split(" ")]
    result = {"chosenCandidates": chosen, "topCandidates": [{"candidates": [c]} for c in chosen]}
    candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "logprobsResult": result}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4}}


def test_logprobs_as_the_sdk_reads_them(gateway, upstream):
    upstream.script(
        {"match": GEN, "body": _logprobs_answer("Paris is", "STOP")},
        {"match": STREAM, "events": [_logprobs_answer("Paris is"), _logprobs_answer(" lovely", "STOP")]},
    )
    client = sdk(gateway)
    asked = {"include": ["message.output_text.logprobs"], "top_logprobs": 1}
    response = client.responses.create(model="gemini-2.5-flash", input="Capital of France?", **asked)
    [text] = response.output[0].content
    assert [(p.token, p.logprob) for p in text.logprobs] == [("Paris", -0.25), ("is", -0.25)]
    assert text.logprobs[0].top_logprobs[0].token == "Paris" and text.logprobs[0].bytes == list(b"Paris")
    with client.responses.stream(model="gemini-2.5-flash", input="Capital of France?", **asked) as stream:
        deltas = [e.logprobs for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert [[p.token for p in d] for d in deltas] == [["Paris", "is"], ["", "lovely"]]
    assert len(final.output[0].content[0].logprobs) == 4
    calls = generate_calls(upstream)
    assert all(c["body"]["generationConfig"]["responseLogprobs"] is True for c in calls)


def test_parse_with_a_pydantic_model(gateway, upstream):
    upstream.script({"match": GEN, "body": answer({"text": '{"city": "Paris", "population": 2100000}'})})
    response = sdk(gateway).responses.parse(
        model="gemini-2.5-flash", input="Biggest French city?", text_format=City
    )
    assert response.output_parsed == City(city="Paris", population=2100000)
    config = generate_calls(upstream)[0]["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseJsonSchema"]  # as the SDK made it strict
    assert schema["required"] == ["city", "population"] and schema["additionalProperties"] is False


def test_input_tokens_count(gateway, upstream):
    count = sdk(gateway).responses.input_tokens.count(model="gemini-2.5-flash", input="Hello there")
    assert (
        count.object == "response.input_tokens"
        and count.input_tokens == fixture_json("gemini/count_tokens.json")["totalTokens"]
    )
    assert upstream.calls()[0]["path"].endswith(":countTokens")


def test_previous_response_id_across_three_turns(gateway, upstream):
    upstream.script(
        {"match": GEN, "body": answer({"text": "Hello Ada."})},
        {"match": GEN, "body": answer({"text": "Your name is Ada."})},
        {"match": GEN, "body": answer({"text": "Goodbye, Ada."})},
    )
    client = sdk(gateway)
    first = client.responses.create(model="gemini-2.5-flash", input="I am Ada.", instructions="Be warm.")
    second = client.responses.create(
        model="gemini-2.5-flash", input="Who am I?", previous_response_id=first.id
    )
    third = client.responses.create(model="gemini-2.5-flash", input="Bye!", previous_response_id=second.id)
    assert third.output_text == "Goodbye, Ada." and third.previous_response_id == second.id
    last = generate_calls(upstream)[-1]["body"]
    assert [(c["role"], c["parts"][0]["text"]) for c in last["contents"]] == [
        ("user", "I am Ada."),
        ("model", "Hello Ada."),
        ("user", "Who am I?"),
        ("model", "Your name is Ada."),
        ("user", "Bye!"),
    ]
    assert "systemInstruction" not in last  # the first turn's instructions are not carried over
    assert client.responses.retrieve(second.id).output_text == "Your name is Ada."
    items = client.responses.input_items.list(third.id)
    assert [i.content[0].text for i in items.data] == ["Bye!"]
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gemini-2.5-flash", input="?", previous_response_id=first.id)


def test_function_tool_loop_on_gemini3_with_signatures(gateway, upstream):
    gemini3 = fixture_json("gemini/function_call_gemini3.json")
    signature = gemini3["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    upstream.script(
        {"match": STREAM, "events": [gemini3]},
        {"match": STREAM, "events": [answer({"text": "It is 18 degrees in San Francisco."})]},
    )
    client = sdk(gateway)
    with client.responses.stream(
        model="gemini-3-pro-preview", input="Weather in SF?", tools=[WEATHER], store=False
    ) as stream:
        first = stream.get_final_response()
    (call,) = first.output
    assert (
        call.type == "function_call"
        and call.name == "weather"
        and json.loads(call.arguments) == {"location": "San Francisco"}
    )
    # The client replays what it got and the output of the call, as agents do with store=False.
    history = [
        {"role": "user", "content": "Weather in SF?"},
        *(item.model_dump(exclude_none=True) for item in first.output),
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 18}'},
    ]
    with client.responses.stream(
        model="gemini-3-pro-preview", input=history, tools=[WEATHER], store=False
    ) as stream:
        second = stream.get_final_response()
    assert second.output_text == "It is 18 degrees in San Francisco."
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
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"temp_c": 18}}}
    ]


def test_streamed_parallel_calls_keep_gemini_ids(gateway, upstream):
    upstream.script({"match": STREAM, "events": sse("stream_parallel_function_calls_gemini3.sse")})
    sum_tool = {"type": "function", "name": "sum", "parameters": {"type": "object", "properties": {}}}
    with sdk(gateway).responses.stream(
        model="gemini-3-flash-preview", input="Sums?", tools=[sum_tool]
    ) as stream:
        final = stream.get_final_response()
    assert [tool_ids.decode(c.call_id).gemini_id for c in final.output] == [
        "3ae8iwca",
        "up3kf30e",
        "ycroch25",
    ]


def test_custom_tool(gateway, upstream):
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
    upstream.script(
        {"match": GEN, "body": answer({"functionCall": {"name": "apply_patch", "args": {"input": patch}}})}
    )
    tool = {
        "type": "custom",
        "name": "apply_patch",
        "description": "Edit files.",
        "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" /(.|\\n)*/'},
    }
    response = sdk(gateway).responses.create(model="gemini-2.5-flash", input="Add hello.txt", tools=[tool])
    (call,) = response.output
    assert call.type == "custom_tool_call" and call.name == "apply_patch" and call.input == patch
    declared = generate_calls(upstream)[0]["body"]["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == "apply_patch" and "Lark grammar" in declared["description"]


def test_image_input(gateway, upstream):
    sdk(gateway).responses.create(
        model="gemini-2.5-flash",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
                ],
            }
        ],
    )
    parts = generate_calls(upstream)[0]["body"]["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert base64.b64decode(PNG)[:4] == b"\x89PNG"


def test_upstream_error_before_the_first_byte(start_gateway, upstream):
    gateway = start_gateway()  # its keys end up cooling: not the shared gateway
    upstream.script(
        {"match": GEN, "status": 503, "body": fixture_json("gemini/error_503_unavailable.json"), "repeat": 3}
    )
    with pytest.raises(openai.InternalServerError):
        sdk(gateway).responses.create(model="gemini-2.5-flash", input="Hi")
    upstream.script(
        {
            "match": STREAM,
            "status": 429,
            "body": fixture_json("gemini/error_429_resource_exhausted.json"),
            "repeat": 3,
        }
    )
    with pytest.raises(openai.RateLimitError) as caught:
        sdk(gateway).responses.create(model="gemini-2.5-flash", input="Hi", stream=True)
    assert caught.value.body["type"] == "rate_limit_error"


def test_upstream_error_after_the_first_byte_is_response_failed(gateway, upstream):
    upstream.script(
        {
            "match": STREAM,
            "events": [answer({"text": "Hel"}, finish=None)] * 3,
            "fault": "reset_after",
            "after": 1,
        }
    )
    stream = sdk(gateway).responses.create(model="gemini-2.5-flash", input="Hi", stream=True)
    events = list(stream)  # the SDK yields the failure as an event: it raises on error frames only
    assert events[-1].type == "response.failed" and events[-1].response.error.code == "server_error"
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["Hel"]


def test_raw_stream_grammar_through_the_server(gateway, upstream):
    upstream.script({"match": STREAM, "events": sse("stream_function_call_thought_signature.sse")})
    client = sdk(gateway)
    raw = client.responses.with_raw_response.create(
        model="gemini-2.5-flash",
        input="What day is it?",
        stream=True,
        include=["reasoning.encrypted_content"],
    )
    final = check_stream(parse_events(raw.http_response.read()))
    assert [i["type"] for i in final["output"]] == ["reasoning", "function_call"]
    assert final["output"][0]["encrypted_content"].startswith("gg1.")
