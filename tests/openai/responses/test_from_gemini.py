"""Gemini answers -> Responses output items, whole and streamed, against the recorded Gemini bodies;
and the round trip: output replayed as input gives Gemini back its parts and signatures."""

import copy
import json

import pytest

from app.errors import UpstreamUnavailable
from app.openai import tool_ids
from app.openai.responses import from_gemini, to_gemini
from app.openai.responses.from_gemini import OutputBuilder, finished, shell, shown, whole_response
from app.openai.responses.ids import ItemIds, signature_of
from app.openai.responses.stream import EventSink, ResponseStream
from app.openai.responses.to_gemini import Entry, ToolNames
from app.translate.signatures import BYPASS_SIGNATURE
from tests.conftest import fixture_bytes, fixture_json
from tests.openai.responses.grammar import check_stream, parse_events
from tests.openai.test_to_gemini import FakeFetch

BODY = {"model": "gemini-2.5-flash"}


def candidate(*parts, finish="STOP", **extra) -> dict:
    return {
        "candidates": [{"content": {"role": "model", "parts": list(parts)}, "finishReason": finish, **extra}]
    }


def whole(answer: dict, names: ToolNames | None = None, **body) -> dict:
    ids = ItemIds()
    return whole_response(answer, shell({**BODY, **body}, ids, store=False), ids, names or ToolNames())


def sse_events(name: str) -> list[bytes]:
    text = fixture_bytes(f"gemini/{name}").decode()
    return [line[6:].encode() for line in text.splitlines() if line.startswith("data: ")]


def streamed(chunks: list[bytes], names: ToolNames | None = None, *, include=True, **body) -> list[dict]:
    ids = ItemIds()
    sink = EventSink(include)
    response = shell({**BODY, **body}, ids, store=False)
    builder = OutputBuilder(
        ids, names or ToolNames(), sink=sink, parallel_tool_calls=response["parallel_tool_calls"]
    )
    translator = ResponseStream(response, builder, sink)
    raw = translator.start() + b"".join(translator.feed(c) for c in chunks) + translator.finish()
    return parse_events(raw)


def replay(output: list[dict], names: ToolNames | None = None) -> list[dict]:
    """The model turn Gemini gets back when a client sends `output` as the next request's input."""
    items = [{"type": "message", "role": "user", "content": "Hi"}, *copy.deepcopy(output)]
    items += [
        {"type": f"{i['type']}_output", "call_id": i["call_id"], "output": "ok"}
        for i in output
        if i["type"] in ("function_call", "custom_tool_call")
    ]
    entries = [Entry(item, f"input[{n}]") for n, item in enumerate(items)]
    _, contents = to_gemini.convert_items(entries, FakeFetch())
    return contents[1]["parts"]


def gemini_parts(answer: dict) -> list[dict]:
    return answer["candidates"][0]["content"]["parts"]


# -- whole answers ----------------------------------------------------------------------------------------


def test_text_answer_and_usage():
    response = whole(fixture_json("gemini/generate_text.json"))
    assert response["status"] == "completed" and response["object"] == "response"
    (message,) = response["output"]
    assert (
        message["type"] == "message" and message["role"] == "assistant" and message["status"] == "completed"
    )
    assert message["content"] == [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Paris"}]
    assert message["id"].startswith("msg_") and response["id"].startswith("resp_")
    assert response["usage"] == {
        "input_tokens": 11,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 35,
        "output_tokens_details": {"reasoning_tokens": 34},
        "total_tokens": 46,
    }


def test_thoughts_are_a_reasoning_item_with_a_summary():
    response = whole(fixture_json("gemini/thinking_include_thoughts.json"))
    reasoning, message = response["output"]
    assert reasoning["type"] == "reasoning" and reasoning["summary"][0]["type"] == "summary_text"
    assert reasoning["summary"][0]["text"].startswith("**Thinking About Google's Head")
    assert message["content"][0]["text"] == "Mountain View"


def test_gemini3_text_signature_rides_in_the_reasoning_item_and_comes_back_on_the_text():
    answer = fixture_json("gemini/thinking_include_thoughts_gemini3.json")
    signature = gemini_parts(answer)[1]["thoughtSignature"]
    response = whole(answer)
    reasoning, message = response["output"]
    assert signature_of(reasoning["encrypted_content"]) == signature
    text = message["content"][0]["text"]
    assert replay(response["output"]) == [{"text": text, "thoughtSignature": signature}]


def test_a_signature_without_thoughts_gets_a_reasoning_item_of_its_own():
    answer = fixture_json("gemini/text_thought_signature_gemini3.json")
    signature = gemini_parts(answer)[0]["thoughtSignature"]
    message, reasoning = whole(answer)["output"]
    assert message["type"] == "message"
    assert reasoning == {
        "id": reasoning["id"],
        "type": "reasoning",
        "summary": [],
        "encrypted_content": reasoning["encrypted_content"],
    }
    assert signature_of(reasoning["encrypted_content"]) == signature
    assert replay([message, reasoning])[0]["thoughtSignature"] == signature


def test_gemini3_function_call_carries_its_id_and_signature_in_the_call_id():
    answer = fixture_json("gemini/function_call_gemini3.json")
    signature = gemini_parts(answer)[0]["thoughtSignature"]
    (call,) = whole(answer)["output"]
    assert call["type"] == "function_call" and call["status"] == "completed" and call["id"].startswith("fc_")
    assert call["name"] == "weather" and json.loads(call["arguments"]) == {"location": "San Francisco"}
    assert tool_ids.decode(call["call_id"]).signature == signature
    # The client may replay the call alone, without any reasoning item: the signature still comes back.
    assert replay([call]) == [
        {
            "functionCall": {"name": "weather", "args": {"location": "San Francisco"}},
            "thoughtSignature": signature,
        }
    ]


def test_thoughts_then_a_call_round_trip_without_a_second_signature():
    answer = fixture_json("gemini/function_call_thought_signature.json")
    signature = gemini_parts(answer)[1]["thoughtSignature"]
    output = whole(answer)["output"]
    assert [i["type"] for i in output] == ["reasoning", "function_call"]
    assert signature_of(output[0]["encrypted_content"]) == signature
    assert replay(output) == [{"functionCall": {"name": "now", "args": {}}, "thoughtSignature": signature}]


def test_parallel_calls_and_parallel_tool_calls_false():
    answer = fixture_json("gemini/parallel_function_calls.json")
    calls = whole(answer)["output"]
    assert [json.loads(c["arguments"]) for c in calls] == [
        {"a": 2, "b": 3},
        {"a": 4, "b": 5},
        {"a": 6, "b": 7},
    ]
    assert len({c["call_id"] for c in calls}) == 3
    parts = replay(calls)
    assert parts[0]["thoughtSignature"] == gemini_parts(answer)[0]["thoughtSignature"]
    assert "thoughtSignature" not in parts[1] and "thoughtSignature" not in parts[2]
    assert len(whole(answer, parallel_tool_calls=False)["output"]) == 1


def test_custom_and_namespaced_calls_come_back_as_openai_sends_them():
    names = ToolNames(custom={"apply_patch"}, namespaced={"agents.spawn": ("agents", "spawn")})
    patch = "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch\n"
    answer = candidate(
        {"functionCall": {"name": "apply_patch", "args": {"input": patch}}},
        {"functionCall": {"name": "agents.spawn", "args": {"task": "x"}}},
    )
    custom, spawned = whole(answer, names)["output"]
    assert (
        custom["type"] == "custom_tool_call" and custom["input"] == patch and custom["name"] == "apply_patch"
    )
    assert custom["id"].startswith("ctc_") and "namespace" not in custom
    assert spawned["type"] == "function_call" and (spawned["namespace"], spawned["name"]) == (
        "agents",
        "spawn",
    )
    assert replay([custom, spawned], names)[0]["functionCall"] == {
        "name": "apply_patch",
        "args": {"input": patch},
    }


def test_code_and_its_result_are_markdown_in_the_message():
    output = whole(fixture_json("gemini/code_execution.json"))["output"]
    text = output[0]["content"][0]["text"]
    assert text.startswith("```python\nprint('ok')") and "```output\nok\n```" in text
    assert "OUTCOME_FAILED" in text and "The code execution resulted in" in text


def test_grounding_becomes_url_citations():
    answer = candidate(
        {"text": "Paris is the capital."},
        groundingMetadata={
            "groundingChunks": [{"web": {"uri": "https://example.com/paris", "title": "example.com"}}],
            "groundingSupports": [
                {"segment": {"startIndex": 0, "endIndex": 21}, "groundingChunkIndices": [0]}
            ],
        },
    )
    (message,) = whole(answer)["output"]
    assert message["content"][0]["annotations"] == [
        {
            "type": "url_citation",
            "start_index": 0,
            "end_index": 21,
            "url": "https://example.com/paris",
            "title": "example.com",
        }
    ]


@pytest.mark.parametrize(
    "answer, status, details",
    [
        (fixture_json("gemini/max_tokens.json"), "incomplete", {"reason": "max_output_tokens"}),
        (fixture_json("gemini/finish_reason_safety.json"), "incomplete", {"reason": "content_filter"}),
        (fixture_json("gemini/prompt_blocked_safety.json"), "incomplete", {"reason": "content_filter"}),
    ],
)
def test_incomplete_answers(answer, status, details):
    response = whole(answer)
    assert (response["status"], response["incomplete_details"], response["completed_at"]) == (
        status,
        details,
        None,
    )
    assert all(i.get("status", "incomplete") == "incomplete" for i in response["output"])


def test_a_botched_tool_call_fails_the_response():
    response = whole(candidate({"text": "Let me call"}, finish="MALFORMED_FUNCTION_CALL"))
    assert response["status"] == "failed" and response["error"]["code"] == "server_error"
    assert response["output"][0]["status"] == "incomplete"
    assert "MALFORMED_FUNCTION_CALL" in response["error"]["message"]


def test_encrypted_content_is_shown_only_when_asked():
    response = whole(fixture_json("gemini/thinking_include_thoughts_gemini3.json"))
    assert shown(response, True)["output"][0]["encrypted_content"]
    assert shown(response, False)["output"][0]["encrypted_content"] is None
    assert response["output"][0]["encrypted_content"]  # the stored copy keeps it


def test_the_shell_echoes_the_request():
    body = {
        "model": "gpt-5-codex",
        "instructions": "Be brief.",
        "max_output_tokens": 100,
        "parallel_tool_calls": False,
        "previous_response_id": "resp_x",
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_object"}, "verbosity": "low"},
        "tool_choice": "required",
        "tools": [{"type": "function", "name": "f"}],
        "metadata": {"k": "v"},
        "user": "u1",
        "temperature": 0.5,
    }
    response = shell(body, ItemIds(), store=True, created_at=5)
    for name in (
        "model",
        "instructions",
        "max_output_tokens",
        "previous_response_id",
        "tools",
        "metadata",
        "user",
    ):
        assert response[name] == body[name]
    assert (
        response["parallel_tool_calls"] is False and response["store"] is True and response["created_at"] == 5
    )
    assert response["reasoning"] == {"effort": "low", "summary": "auto"}
    assert response["text"] == body["text"] and response["tool_choice"] == "required"


# -- streams ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture",
    [
        "stream_text.sse",
        "stream_thinking_include_thoughts.sse",
        "stream_function_call_thought_signature.sse",
        "stream_parallel_function_calls.sse",
        "stream_parallel_function_calls_gemini3.sse",
        "stream_text_gemini3_empty_final_part.sse",
        "stream_prompt_blocked_prohibited_content.sse",
    ],
)
def test_recorded_streams_follow_openais_order(fixture):
    check_stream(streamed(sse_events(fixture)))


def test_a_stream_and_a_whole_answer_give_the_same_output():
    chunks = sse_events("stream_function_call_thought_signature.sse")
    final = check_stream(streamed(chunks))
    merged_parts = [p for c in chunks for p in json.loads(c)["candidates"][0]["content"]["parts"]]
    answer = candidate(*merged_parts)
    whole_output = whole(answer)["output"]
    assert (
        [i["type"] for i in final["output"]]
        == [i["type"] for i in whole_output]
        == ["reasoning", "function_call"]
    )
    assert final["output"][0]["summary"] == whole_output[0]["summary"]
    assert (
        tool_ids.decode(final["output"][1]["call_id"]).signature
        == tool_ids.decode(whole_output[1]["call_id"]).signature
    )


def test_a_late_signature_in_a_stream_is_emitted_before_completed_and_replays_on_the_text():
    signature = "bGF0ZS1zaWduYXR1cmU="
    chunks = [
        json.dumps(candidate({"text": "thinking", "thought": True}, finish=None)).encode(),
        json.dumps(candidate({"text": "The answer"}, finish=None)).encode(),
        json.dumps(candidate({"text": "", "thoughtSignature": signature})).encode(),
    ]
    events = streamed(chunks)
    final = check_stream(events)
    assert [i["type"] for i in final["output"]] == ["reasoning", "message", "reasoning"]
    assert final["output"][0]["encrypted_content"] is None  # closed before the signature came
    assert signature_of(final["output"][2]["encrypted_content"]) == signature
    assert replay(final["output"]) == [{"text": "The answer", "thoughtSignature": signature}]


def test_a_streamed_custom_tool_call_has_its_input_events():
    names = ToolNames(custom={"apply_patch"})
    chunk = json.dumps(
        candidate({"functionCall": {"name": "apply_patch", "args": {"input": "*** Begin Patch"}}})
    )
    events = streamed([chunk.encode()], names)
    final = check_stream(events)
    assert [e["type"] for e in events if "custom_tool_call_input" in e["type"]] == [
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
    ]
    assert final["output"][0]["input"] == "*** Begin Patch"


def test_stream_hides_encrypted_content_unless_asked():
    chunks = sse_events("stream_function_call_thought_signature.sse")
    hidden = check_stream(streamed(chunks, include=False))
    assert hidden["output"][0]["encrypted_content"] is None
    assert all(
        e["item"].get("encrypted_content") is None for e in streamed(chunks, include=False) if "item" in e
    )
    assert check_stream(streamed(chunks, include=True))["output"][0]["encrypted_content"]


def test_finish_stores_before_the_terminal_event():
    ids = ItemIds()
    sink = EventSink(True)
    seen = []

    def on_finish(final):
        seen.append(final["status"])
        return {**final, "store": False}

    response = shell(BODY, ids, store=True)
    translator = ResponseStream(
        response, OutputBuilder(ids, ToolNames(), sink=sink), sink, on_finish=on_finish
    )
    raw = (
        translator.start()
        + b"".join(translator.feed(c) for c in sse_events("stream_text.sse"))
        + translator.finish()
    )
    final = check_stream(parse_events(raw))
    assert seen == ["completed"] and final["store"] is False


def test_a_failure_mid_item_ends_with_response_failed():
    ids = ItemIds()
    sink = EventSink(True)
    translator = ResponseStream(
        shell(BODY, ids, store=False), OutputBuilder(ids, ToolNames(), sink=sink), sink
    )
    raw = translator.start() + translator.feed(sse_events("stream_text.sse")[0])
    raw += translator.fail(UpstreamUnavailable("Gemini went away.", retry_after=2.5))
    events = parse_events(raw)
    final = check_stream(events)
    assert final["status"] == "failed" and final["output"][0]["status"] == "incomplete"
    assert final["error"] == {"code": "server_error", "message": "Gemini went away. Please try again in 3s."}
    assert b'data: {"error"' not in raw


def test_a_failure_before_start_still_opens_the_response():
    ids = ItemIds()
    sink = EventSink(True)
    translator = ResponseStream(
        shell(BODY, ids, store=False), OutputBuilder(ids, ToolNames(), sink=sink), sink
    )
    events = parse_events(translator.fail(UpstreamUnavailable("No.")))
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]


def test_an_odd_stream_event_is_an_upstream_error_not_a_500():
    ids = ItemIds()
    translator = ResponseStream(
        shell(BODY, ids, store=False), OutputBuilder(ids, ToolNames()), EventSink(True)
    )
    translator.start()
    translator.feed(b'{"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": ["odd"]}]}')
    with pytest.raises(UpstreamUnavailable):
        translator.finish()
    with pytest.raises(UpstreamUnavailable):
        translator.feed(b'["not", "an", "object"]')


def test_finished_response_keeps_usage_for_accounting():
    ids = ItemIds()
    builder = OutputBuilder(ids, ToolNames())
    builder.feed(fixture_json("gemini/generate_text.json"))
    assert builder.usage["promptTokenCount"] == 11
    assert finished(shell(BODY, ids, store=False), builder)["usage"]["total_tokens"] == 46


def test_usage_of_no_metadata_is_all_zero():
    assert from_gemini.usage(None)["total_tokens"] == 0


def test_bypass_is_never_handed_to_a_client():
    # A call Gemini sent without any signature gets a plain call id, not the stand-in.
    (call,) = whole(candidate({"functionCall": {"name": "f", "args": {}}}))["output"]
    assert tool_ids.decode(call["call_id"]).signature is None
    assert BYPASS_SIGNATURE not in json.dumps(call)
