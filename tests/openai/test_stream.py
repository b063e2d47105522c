"""Gemini SSE -> OpenAI chat.completion.chunk events, on the recorded streams."""

import json

import pytest

from app.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from app.http.sse import SSEDecoder
from app.openai.stream import DONE, ChatCompletionStream
from tests.conftest import fixture_bytes


def upstream_events(name: str) -> list[bytes]:
    decoder = SSEDecoder()
    return decoder.feed(fixture_bytes(f"gemini/{name}")) + decoder.close()


def run(events: list[bytes], **options) -> tuple[bytes, ChatCompletionStream]:
    """As stream_response drives it: a failure becomes the error event; what ids stand for is kept."""
    translator = ChatCompletionStream(
        model="gemini-x", created=1700000000, remember=REMEMBERED.update, **options
    )
    out = translator.start()
    try:
        for event in events:
            out += translator.feed(event)
        out += translator.finish()
    except GatewayError as err:
        out += translator.fail(err)
    return out, translator


REMEMBERED: dict = {}  # what run's translators handed to the store


def frames(raw: bytes) -> list:
    """Every `data:` payload; each frame must be `data: ...\\n\\n` (SSE with LF, as OpenAI sends)."""
    assert raw.endswith(b"\n\n")
    out = []
    for frame in raw.split(b"\n\n")[:-1]:
        assert frame.startswith(b"data: "), frame
        payload = frame[6:]
        out.append(payload.decode() if payload == b"[DONE]" else json.loads(payload))
    return out


def deltas(chunks: list, key: str) -> str:
    return "".join(
        c["choices"][0]["delta"].get(key) or "" for c in chunks if isinstance(c, dict) and c.get("choices")
    )


def test_text_stream_shape():
    raw, translator = run(upstream_events("stream_text.sse"))
    chunks = frames(raw)
    assert chunks[-1] == "[DONE]" and raw.endswith(DONE)
    chunks = chunks[:-1]
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert all(
        c["object"] == "chat.completion.chunk" and c["model"] == "gemini-x" and c["created"] == 1700000000
        for c in chunks
    )
    assert chunks[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert deltas(chunks, "content").startswith("I can help you with that!")
    assert deltas(chunks, "content").endswith(" the current weather for you!")
    assert chunks[-1]["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
    assert [c["choices"][0]["finish_reason"] for c in chunks].count("stop") == 1
    assert all("usage" not in c for c in chunks)  # no include_usage: no usage key at all
    assert translator.usage["candidatesTokenCount"] == 115


def test_include_usage_adds_a_final_chunk_with_no_choices():
    chunks = frames(run(upstream_events("stream_text.sse"), include_usage=True)[0])[:-1]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 29
    assert chunks[-1]["usage"]["completion_tokens"] == 115 + 199
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 199
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_each_event_is_translated_at_once():
    translator = ChatCompletionStream(model="m", created=1)
    events = upstream_events("stream_text.sse")
    assert translator.start()
    for event in events[:-1]:
        out = frames(translator.feed(event))
        assert len(out) == 1 and out[0]["choices"][0]["delta"]["content"]
    last = frames(translator.feed(events[-1]))
    assert [c["choices"][0]["finish_reason"] for c in last] == [None, "stop"]


def test_thoughts_stream_as_reasoning_content():
    chunks = frames(run(upstream_events("stream_thinking_include_thoughts.sse"))[0])[:-1]
    reasoning, content = deltas(chunks, "reasoning_content"), deltas(chunks, "content")
    assert (
        reasoning.startswith("**Exploring Sky Color**") and "**Constructing a Concise Answer**" in reasoning
    )
    assert content.startswith("The sky is blue") and "**" not in content
    # Reasoning comes first, then the answer.
    first_content = next(i for i, c in enumerate(chunks[1:], 1) if c["choices"][0]["delta"].get("content"))
    assert all("reasoning_content" not in c["choices"][0]["delta"] for c in chunks[first_content:])


def test_gemini3_parallel_calls_one_per_chunk_with_stable_index_and_id():
    chunks = frames(run(upstream_events("stream_parallel_function_calls_gemini3.sse"))[0])[:-1]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [tc["index"] for tc in calls] == [0, 1, 2]
    assert [json.loads(tc["function"]["arguments"]) for tc in calls] == [
        {"b": 3, "a": 2},
        {"a": 4, "b": 5},
        {"b": 7, "a": 6},
    ]
    assert all(tc["type"] == "function" and tc["function"]["name"] == "sum" for tc in calls)
    assert all(len(tc["id"]) == len("call_") + 24 for tc in calls)
    refs = [REMEMBERED[tc["id"]] for tc in calls]  # kept for the store before each id went out
    assert [r.gemini_id for r in refs] == ["3ae8iwca", "up3kf30e", "ycroch25"]
    assert refs[0].signature and refs[1].signature is None and refs[2].signature is None
    assert calls[0]["extra_content"]["google"]["thought_signature"] == refs[0].signature
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert deltas(chunks, "content") == ""  # the final {"text": ""} part adds nothing


def test_gemini25_parallel_calls_in_one_chunk():
    chunks = frames(run(upstream_events("stream_parallel_function_calls.sse"))[0])[:-1]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [tc["index"] for tc in calls] == [0, 1, 2] and len({tc["id"] for tc in calls}) == 3
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_parallel_tool_calls_false_streams_only_the_first_call():
    chunks = frames(
        run(upstream_events("stream_parallel_function_calls_gemini3.sse"), parallel_tool_calls=False)[0]
    )[:-1]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert len(calls) == 1 and calls[0]["index"] == 0


def test_thinking_then_function_call_stream():
    chunks = frames(run(upstream_events("stream_function_call_thought_signature.sse"))[0])[:-1]
    assert deltas(chunks, "reasoning_content")
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "now" and REMEMBERED[calls[0]["id"]].signature
    assert calls[0]["extra_content"]["google"]["thought_signature"] == REMEMBERED[calls[0]["id"]].signature
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "name", ["stream_prompt_blocked_prohibited_content.sse", "prompt_blocked_safety.sse"]
)
def test_blocked_prompt_finishes_with_content_filter(name):
    chunks = frames(run(upstream_events(name), include_usage=True)[0])[:-1]
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == "content_filter"
    assert "blocked" in finish[0]["choices"][0]["delta"]["refusal"]
    assert chunks[-1]["choices"] == []


def test_gemini3_empty_final_part_and_revised_prompt_count():
    raw, translator = run(upstream_events("stream_text_gemini3_empty_final_part.sse"), include_usage=True)
    chunks = frames(raw)[:-1]
    assert all(c["choices"][0]["delta"] != {"content": ""} for c in chunks[1:] if c["choices"])
    last_usage = json.loads(upstream_events("stream_text_gemini3_empty_final_part.sse")[-1])["usageMetadata"]
    assert chunks[-1]["usage"]["prompt_tokens"] == last_usage["promptTokenCount"]


def test_image_stream_carries_markdown_and_images():
    event = fixture_bytes("gemini/image_generation.json").replace(b"\n", b"")
    chunks = frames(run([event])[0])[:-1]
    delta = chunks[1]["choices"][0]["delta"]
    assert "![image](data:image/png;base64," in delta["content"]
    assert delta["images"][0]["index"] == 0 and delta["images"][0]["image_url"]["url"].startswith(
        "data:image/png"
    )


def test_a_stream_without_finish_reason_is_an_error_never_a_stop():
    chunk = {"candidates": [{"content": {"parts": [{"text": "half"}]}, "index": 0}]}
    chunks = frames(run([json.dumps(chunk).encode()], include_usage=True)[0])
    assert chunks[-2]["choices"][0]["delta"] == {"content": "half"}
    assert (
        chunks[-1]["error"]["type"] == "server_error" and "no finish reason" in chunks[-1]["error"]["message"]
    )
    assert not [c for c in chunks if c != chunks[-1] and c["choices"] and c["choices"][0]["finish_reason"]]
    assert "[DONE]" not in chunks


def test_a_botched_tool_call_is_an_error_event():
    chunk = {
        "candidates": [{"content": {"parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}]
    }
    chunks = frames(run([json.dumps(chunk).encode()])[0])
    assert "MALFORMED_FUNCTION_CALL" in chunks[-1]["error"]["message"] and "[DONE]" not in chunks


def test_n_choices_each_get_a_role_and_a_finish():
    events = [
        json.dumps(
            {
                "candidates": [
                    {"content": {"parts": [{"text": "a"}]}, "index": 0, "finishReason": "STOP"},
                    {"content": {"parts": [{"text": "b"}]}, "index": 1, "finishReason": "MAX_TOKENS"},
                ]
            }
        ).encode()
    ]
    chunks = frames(run(events, n=2)[0])[:-1]
    roles = [c["choices"][0]["index"] for c in chunks if c["choices"][0]["delta"].get("role")]
    finishes = {
        c["choices"][0]["index"]: c["choices"][0]["finish_reason"]
        for c in chunks
        if c["choices"][0]["finish_reason"]
    }
    assert roles == [0, 1] and finishes == {0: "stop", 1: "length"}


def test_failure_becomes_an_error_event():
    translator = ChatCompletionStream(model="m", created=1)
    out = translator.fail(UpstreamTimeout("Gemini went silent in the middle of the stream."))
    assert frames(out) == [
        {
            "error": {
                "message": "Gemini went silent in the middle of the stream.",
                "type": "server_error",
                "param": None,
                "code": "timeout",
            }
        }
    ]


def test_an_error_object_inside_the_stream_raises_for_the_error_event():
    translator = ChatCompletionStream(model="m", created=1)
    with pytest.raises(UpstreamError) as caught:
        translator.feed(b'{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}')
    assert caught.value.status == 503 and caught.value.message == "overloaded"
    with pytest.raises(UpstreamUnavailable):
        translator.feed(b"not json")
