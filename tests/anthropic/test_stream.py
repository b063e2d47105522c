"""The stream translator on the recorded Gemini SSE fixtures: Anthropic's event grammar, block by block."""

import json

import pytest

from app.anthropic import ids
from app.anthropic.stream import PING, MessageStream
from app.errors import GatewayError, UpstreamUnavailable
from tests.anthropic.grammar import check_grammar, parse_events
from tests.conftest import FIXTURES, fixture_bytes

GEMINI_STREAMS = sorted(p.name for p in (FIXTURES / "gemini").glob("*.sse"))


def payloads(name: str) -> list[bytes]:
    return [line[6:] for line in fixture_bytes(f"gemini/{name}").splitlines() if line.startswith(b"data: ")]


def run(events: list[bytes], **options) -> tuple[list[tuple[str, dict]], MessageStream]:
    """As stream_response drives it: a failure at the end becomes the error event."""
    translator = MessageStream(model="gemini-test", **options)
    out = translator.start()
    for event in events:
        out += translator.feed(event)
    try:
        out += translator.finish()
    except GatewayError as err:
        out += translator.fail(err)
    return parse_events(out), translator


def finished(name: str) -> bool:
    return any(b'"finishReason"' in p or b'"blockReason"' in p for p in payloads(name))


def chunk(*parts, finish=None) -> bytes:
    candidate = {"content": {"parts": list(parts), "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return json.dumps({"candidates": [candidate], "usageMetadata": {"promptTokenCount": 3}}).encode()


@pytest.mark.parametrize("name", GEMINI_STREAMS)
@pytest.mark.parametrize("thinking", [False, True])
def test_every_recorded_gemini_stream_gives_the_exact_grammar(name, thinking):
    events, _ = run(payloads(name), thinking=thinking)
    if finished(name):
        check_grammar(events)
    else:  # a fragment of a stream, cut before Gemini said why it stopped: never a normal end
        assert events[-1][0] == "error" and "message_stop" not in [n for n, _ in events]


@pytest.mark.parametrize("name", ["messages_stream_thinking_text.sse", "messages_stream_tool_use.sse"])
def test_the_grammar_check_accepts_anthropics_own_streams(name):
    blocks = check_grammar(parse_events(fixture_bytes(f"anthropic/{name}")))
    assert blocks


def test_text_stream():
    events, translator = run(payloads("stream_text.sse"))
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and start["model"] == "gemini-test" and start["content"] == []
    first = json.loads(payloads("stream_text.sse")[0])["usageMetadata"]
    assert start["stop_reason"] is None and start["usage"]["input_tokens"] == first["promptTokenCount"]
    (block,) = check_grammar(events)
    texts = [
        json.loads(p)["candidates"][0]["content"]["parts"][0]["text"] for p in payloads("stream_text.sse")
    ]
    assert block == {"type": "text", "text": "".join(texts)}
    # One text delta per Gemini chunk, sent as it came.
    assert [d["delta"]["text"] for n, d in events if n == "content_block_delta"] == [t for t in texts if t]
    delta = events[-2][1]
    last = json.loads(payloads("stream_text.sse")[-1])["usageMetadata"]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == last["candidatesTokenCount"] + last["thoughtsTokenCount"]
    assert delta["usage"]["input_tokens"] == last["promptTokenCount"]
    assert translator.usage == last


def test_each_event_is_translated_as_it_arrives():
    translator = MessageStream(model="m")
    assert translator.start() == b""  # message_start waits for the prompt's token count
    first = parse_events(translator.feed(chunk({"text": "Hel"})))
    assert [n for n, _ in first] == ["message_start", "content_block_start", "content_block_delta"]
    assert first[0][1]["message"]["usage"]["input_tokens"] == 3
    assert parse_events(translator.feed(chunk({"text": "lo"})))[0][1]["delta"]["text"] == "lo"


def test_thinking_then_a_call_with_its_signature():
    name = "stream_function_call_thought_signature.sse"
    events, _ = run(payloads(name), thinking=True)
    thinking, tool = check_grammar(events)
    signature = next(
        p["thoughtSignature"]
        for e in payloads(name)
        for p in json.loads(e)["candidates"][0]["content"]["parts"]
        if "thoughtSignature" in p
    )
    assert thinking["type"] == "thinking" and thinking["thinking"].startswith("**Calculating the Days**")
    assert thinking["signature"] == ids.thinking_signature(signature)
    deltas = [d["delta"]["type"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert deltas[-1] == "signature_delta"  # once, just before the block stops
    assert tool["type"] == "tool_use" and tool["name"] == "now" and tool["input"] == {}
    assert ids.parse_tool_use_id(tool["id"]) == (None, signature)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_gemini3_parallel_calls_one_per_chunk():
    events, _ = run(payloads("stream_parallel_function_calls_gemini3.sse"))
    blocks = check_grammar(events)
    assert [(b["type"], b["input"]) for b in blocks] == [
        ("tool_use", {"b": 3, "a": 2}),
        ("tool_use", {"a": 4, "b": 5}),
        ("tool_use", {"b": 7, "a": 6}),
    ]
    assert [ids.parse_tool_use_id(b["id"])[0] for b in blocks] == ["3ae8iwca", "up3kf30e", "ycroch25"]
    assert ids.parse_tool_use_id(blocks[0]["id"])[1] and ids.parse_tool_use_id(blocks[1]["id"])[1] is None
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    single, _ = run(payloads("stream_parallel_function_calls_gemini3.sse"), single_tool=True)
    assert len(check_grammar(single)) == 1


def test_thought_summaries_then_the_answer():
    events, _ = run(payloads("stream_thinking_include_thoughts.sse"), thinking=True)
    thinking, text = check_grammar(events)
    assert thinking["thinking"].startswith("**Exploring Sky Color**") and "**Refining" in thinking["thinking"]
    assert thinking["signature"] == ids.NO_SIGNATURE  # Gemini sent none: the stand-in, never empty
    assert text["text"].startswith("The sky is blue")


def test_gemini3_final_empty_part_opens_no_block():
    events, _ = run(payloads("stream_text_gemini3_empty_final_part.sse"))
    (block,) = check_grammar(events)
    assert block["text"].endswith("is 13.")
    assert events[-2][1]["usage"]["input_tokens"] == 281  # the last chunk's count wins


def test_a_late_signature_becomes_the_thinking_block_when_thinking_was_asked():
    sig = "c2lnbmF0dXJl"
    events, _ = run(
        [chunk({"text": "", "thoughtSignature": sig}), chunk({"text": "Answer"}, finish="STOP")],
        thinking=True,
    )
    thinking, text = check_grammar(events)
    assert thinking == {"type": "thinking", "thinking": "", "signature": ids.thinking_signature(sig)}
    assert text["text"] == "Answer"


def test_a_blocked_prompt_is_a_refusal_with_no_blocks():
    events, _ = run(payloads("stream_prompt_blocked_prohibited_content.sse"))
    assert check_grammar(events) == []
    assert events[-2][1]["delta"]["stop_reason"] == "refusal"


def test_stop_sequence_split_across_chunks():
    events, translator = run(
        [
            chunk({"text": "Thought: done\nObs"}),
            chunk({"text": "ervation: 42"}),
            chunk({"text": "never sent"}, finish="STOP"),
        ],
        stop_sequences=["Observation:"],
    )
    (block,) = check_grammar(events)
    assert block["text"] == "Thought: done\n"
    assert events[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "Observation:"}
    assert translator.done


def test_held_back_text_is_released_before_a_call():
    events, _ = run(
        [
            chunk({"text": "Check ST"}),
            chunk({"functionCall": {"name": "f", "args": {"x": 1}}}, finish="STOP"),
        ],
        stop_sequences=["STOP!"],
    )
    text, tool = check_grammar(events)
    assert text["text"] == "Check ST" and tool["input"] == {"x": 1}


def test_images_go_out_as_markdown_only():
    events, _ = run(
        payloads("stream_text_single_chunk.sse") + [fixture_bytes("gemini/image_generation.json")]
    )
    blocks = check_grammar(events)
    assert [b["type"] for b in blocks] == ["text"] and "![image](data:image/png;base64," in blocks[0]["text"]


def test_a_failure_after_the_first_byte_is_an_error_event():
    translator = MessageStream(model="m")
    translator.start()
    translator.feed(chunk({"text": "Hello"}))
    out = translator.fail(UpstreamUnavailable("The connection to Gemini broke in the middle of the stream."))
    assert out.startswith(b"event: error\ndata: ") and out.endswith(b"\n\n")
    ((name, data),) = parse_events(out)
    assert data == {
        "type": "error",
        "error": {
            "type": "overloaded_error",
            "message": "The connection to Gemini broke in the middle of the stream.",
        },
    }


def test_garbage_from_upstream_is_an_error():
    translator = MessageStream(model="m")
    with pytest.raises(UpstreamUnavailable):
        translator.feed(b"[1, 2]")
    with pytest.raises(UpstreamUnavailable):
        translator.feed(b"not json")


def test_the_heartbeat_is_a_ping_event():
    assert parse_events(PING) == [("ping", {"type": "ping"})]


# -- message_start, signatures, cut streams ---------------------------------------------------


def test_a_heartbeat_before_the_first_event_sends_message_start_with_the_estimate_first():
    translator = MessageStream(model="m", estimated_input_tokens=250)
    assert translator.start() == b""
    beat = parse_events(translator.heartbeat())
    assert [n for n, _ in beat] == ["message_start", "ping"]
    assert beat[0][1]["message"]["usage"]["input_tokens"] == 250
    assert translator.heartbeat() == PING  # once started, a heartbeat is a ping
    events = parse_events(translator.feed(chunk({"text": "Hi"}, finish="STOP")) + translator.finish())
    assert "message_start" not in [n for n, _ in events]
    assert events[-2][1]["usage"]["input_tokens"] == 3  # the real count follows in message_delta


def test_message_start_never_says_zero_input_tokens():
    translator = MessageStream(model="m", estimated_input_tokens=0)
    no_usage = json.dumps({"candidates": [{"content": {"parts": [{"text": "x"}]}, "index": 0}]}).encode()
    (start, *_) = parse_events(translator.feed(no_usage))
    assert start[0] == "message_start" and start[1]["message"]["usage"]["input_tokens"] == 1


def test_the_signature_on_a_later_empty_part_ends_the_thinking_block():
    sig = "c2lnbmF0dXJl"
    events, _ = run(
        [
            chunk({"text": "Pondering", "thought": True}),
            chunk({"text": "", "thoughtSignature": sig}),
            chunk({"text": "Answer"}, finish="STOP"),
        ],
        thinking=True,
    )
    thinking, text = check_grammar(events)
    assert thinking == {"type": "thinking", "thinking": "Pondering", "signature": ids.thinking_signature(sig)}
    assert text["text"] == "Answer"


def test_a_signature_too_late_for_its_block_leaves_the_stand_in():
    events, _ = run(
        [
            chunk({"text": "Pondering", "thought": True}),
            chunk({"text": "Answer"}),
            chunk({"text": "", "thoughtSignature": "c2ln"}, finish="STOP"),
        ],
        thinking=True,
    )
    thinking, text = check_grammar(events)
    signatures = [
        d["delta"]["signature"] for n, d in events if d.get("delta", {}).get("type") == "signature_delta"
    ]
    assert signatures == [ids.NO_SIGNATURE] and thinking["signature"] == ids.NO_SIGNATURE
    assert text["text"] == "Answer"


def test_thoughts_then_parallel_calls_sign_the_block_with_the_first_call_s_signature():
    calls = payloads("stream_parallel_function_calls_gemini3.sse")
    events, _ = run([chunk({"text": "Adding up", "thought": True})] + calls, thinking=True)
    thinking, *tools = check_grammar(events)
    first = json.loads(calls[0])["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert thinking["signature"] == ids.thinking_signature(first)
    assert len(tools) == 3 and ids.parse_tool_use_id(tools[0]["id"])[1] == first


@pytest.mark.parametrize(
    "events",
    [
        [],  # nothing at all
        [chunk({"text": "Hel"}), chunk({"text": "lo"})],  # cut before the finish reason
    ],
)
def test_a_stream_that_ends_without_a_finish_reason_is_an_error_not_a_stop(events):
    out, _ = run(events)
    names = [n for n, _ in out]
    assert names[-1] == "error" and "message_delta" not in names and "message_stop" not in names
    assert "no finish reason" in out[-1][1]["error"]["message"]


def test_a_stop_sequence_match_ends_the_stream_normally_without_a_finish_reason():
    events, _ = run([chunk({"text": "one STOP two"})], stop_sequences=[f"S{i}" for i in range(5)] + ["STOP"])
    (block,) = check_grammar(events)
    assert block["text"] == "one " and events[-2][1]["delta"]["stop_reason"] == "stop_sequence"
