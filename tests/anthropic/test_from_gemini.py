"""Whole Gemini answers -> Anthropic Messages, on plain dicts and the recorded fixtures."""

import pytest

from app.anthropic import ids
from app.anthropic.from_gemini import StopScanner, count_tokens, message, stop_reason, usage
from app.errors import UpstreamIncomplete
from tests.conftest import fixture_json


def parts_of(name):
    return fixture_json(name)["candidates"][0]["content"]["parts"]


def test_text_answer():
    reply = message(fixture_json("gemini/generate_text.json"), model="gemini-2.5-flash")
    assert reply["id"].startswith("msg_") and reply["type"] == "message" and reply["role"] == "assistant"
    assert reply["model"] == "gemini-2.5-flash"
    assert reply["content"] == [{"type": "text", "text": "Paris"}]
    assert reply["stop_reason"] == "end_turn" and reply["stop_sequence"] is None
    assert reply["usage"] == {
        "input_tokens": 11,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 35,
        "service_tier": "standard",
    }


def test_thinking_and_a_call_share_the_signature():
    answer = fixture_json("gemini/function_call_thought_signature.json")
    thought, call = parts_of("gemini/function_call_thought_signature.json")
    reply = message(answer, model="m", thinking=True)
    thinking, tool = reply["content"]
    assert thinking == {
        "type": "thinking",
        "thinking": thought["text"],
        "signature": ids.thinking_signature(call["thoughtSignature"]),
    }
    assert tool["type"] == "tool_use" and tool["name"] == "now" and tool["input"] == {}
    assert ids.parse_tool_use_id(tool["id"]) == (None, call["thoughtSignature"])
    assert reply["stop_reason"] == "tool_use"


def test_thought_parts_make_a_thinking_block_even_unasked():
    reply = message(fixture_json("gemini/thinking_include_thoughts.json"), model="m")
    assert [b["type"] for b in reply["content"]] == ["thinking", "text"]
    assert reply["content"][0]["signature"] == ids.NO_SIGNATURE  # Gemini sent none
    assert reply["content"][1]["text"] == "Mountain View"
    assert reply["usage"]["output_tokens"] == 2 + 24


def test_gemini3_text_signature():
    answer = fixture_json("gemini/text_thought_signature_gemini3.json")
    (part,) = parts_of("gemini/text_thought_signature_gemini3.json")
    asked = message(answer, model="m", thinking=True)
    assert asked["content"] == [
        {"type": "thinking", "thinking": "", "signature": ids.thinking_signature(part["thoughtSignature"])},
        {"type": "text", "text": part["text"]},
    ]
    # A client that did not ask for thinking gets no thinking block.
    assert message(answer, model="m")["content"] == [{"type": "text", "text": part["text"]}]


def test_parallel_calls_and_disable_parallel_tool_use():
    answer = fixture_json("gemini/parallel_function_calls.json")
    reply = message(answer, model="m")
    calls = reply["content"]
    assert [(c["type"], c["input"]) for c in calls] == [
        ("tool_use", {"a": 2, "b": 3}),
        ("tool_use", {"a": 4, "b": 5}),
        ("tool_use", {"a": 6, "b": 7}),
    ]
    assert (
        ids.parse_tool_use_id(calls[0]["id"])[1]
        == parts_of("gemini/parallel_function_calls.json")[0]["thoughtSignature"]
    )
    assert ids.parse_tool_use_id(calls[1]["id"]) == (None, None)
    assert len({c["id"] for c in calls}) == 3
    single = message(answer, model="m", single_tool=True)
    assert [c["input"] for c in single["content"]] == [{"a": 2, "b": 3}] and single[
        "stop_reason"
    ] == "tool_use"


def test_gemini3_call_ids_are_kept():
    answer = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {"name": "sum", "args": {"a": 1}, "id": "3ae8iwca"},
                            "thoughtSignature": "c2ln",
                        }
                    ]
                },
                "finishReason": "STOP",
            }
        ]
    }
    (tool,) = message(answer, model="m")["content"]
    assert ids.parse_tool_use_id(tool["id"]) == ("3ae8iwca", "c2ln")


def test_code_execution_as_markdown():
    reply = message(fixture_json("gemini/code_execution.json"), model="m")
    (block,) = reply["content"]
    text = block["text"]
    assert "```python\nprint('ok')\nprint(1/0)\n```" in text
    assert "```output\nok\n```" in text and "```output\nOUTCOME_FAILED\ndivision by zero" in text
    assert text.endswith("ZeroDivisionError: division by zero\n```")
    assert reply["usage"]["input_tokens"] == 23 + 289  # tool-use prompt tokens are input too


def test_images_as_markdown_and_an_image_block():
    reply = message(fixture_json("gemini/image_generation.json"), model="m")
    text, image = reply["content"]
    blob = parts_of("gemini/image_generation.json")[1]["inlineData"]
    assert text["type"] == "text" and text["text"].endswith(f"![image](data:image/png;base64,{blob['data']})")
    assert image == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": blob["data"]},
    }


@pytest.mark.parametrize(
    "name, reason, content",
    [
        ("gemini/max_tokens.json", "max_tokens", [{"type": "text", "text": "The capital of France is"}]),
        (
            "gemini/finish_reason_safety.json",
            "refusal",
            [{"type": "text", "text": "Safety error incoming in 5, 4, 3, 2..."}],
        ),
        ("gemini/finish_reason_safety_blocked_rating.json", "refusal", []),
        ("gemini/prompt_blocked_prohibited_content.json", "refusal", []),
        ("gemini/prompt_blocked_safety.json", "refusal", []),
        ("gemini/image_generation_no_image.json", "end_turn", []),
    ],
)
def test_stop_reasons(name, reason, content):
    reply = message(fixture_json(name), model="m")
    assert reply["stop_reason"] == reason and reply["content"] == content


def test_stop_sequences_are_cut_by_the_gateway():
    answer = {
        "candidates": [{"content": {"parts": [{"text": "one two THREE four"}]}, "finishReason": "STOP"}]
    }
    reply = message(answer, model="m", stop_sequences=["four", "THREE"])
    assert reply["content"] == [{"type": "text", "text": "one two "}]
    assert reply["stop_reason"] == "stop_sequence" and reply["stop_sequence"] == "THREE"
    untouched = message(answer, model="m", stop_sequences=["five"])
    assert untouched["content"][0]["text"] == "one two THREE four" and untouched["stop_reason"] == "end_turn"


def test_a_stop_sequence_drops_the_calls_after_it():
    answer = {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "Done.\nObservation:"}, {"functionCall": {"name": "f", "args": {}}}]
                },
                "finishReason": "STOP",
            }
        ]
    }
    reply = message(answer, model="m", stop_sequences=["Observation:"])
    assert (
        reply["content"] == [{"type": "text", "text": "Done.\n"}] and reply["stop_reason"] == "stop_sequence"
    )


def test_stop_scanner_holds_back_only_a_possible_start():
    scanner = StopScanner(["</answer>", "STOP"])
    assert scanner.feed("Hello </ans") == ("Hello ", None)
    assert scanner.feed("wer was ST") == ("</answer was ", None)
    assert scanner.feed("OP! more") == ("", "STOP")
    scanner = StopScanner(["xyz"])
    assert scanner.feed("abc x") == ("abc ", None)
    assert scanner.flush() == "x" and scanner.flush() == ""


def test_usage_with_cache_and_missing_fields():
    meta = fixture_json("gemini/max_tokens.json")["usageMetadata"]
    assert usage(meta)["output_tokens"] == 5
    full = {
        "promptTokenCount": 12,
        "candidatesTokenCount": 71,
        "cachedContentTokenCount": 4,
        "toolUsePromptTokenCount": 65,
        "thoughtsTokenCount": 89,
    }
    assert usage(full) == {
        "input_tokens": 12 + 65 - 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 4,
        "output_tokens": 71 + 89,
    }
    assert usage(None)["input_tokens"] == 0 and usage({"promptTokenCount": "x"})["input_tokens"] == 0


def test_stop_reason_table():
    assert stop_reason("STOP", tool_use=False, blocked=False, stop_sequence=None) == "end_turn"
    assert stop_reason("STOP", tool_use=True, blocked=False, stop_sequence=None) == "tool_use"
    assert stop_reason("MAX_TOKENS", tool_use=False, blocked=False, stop_sequence=None) == "max_tokens"
    assert stop_reason("RECITATION", tool_use=False, blocked=False, stop_sequence=None) == "refusal"
    assert stop_reason(None, tool_use=False, blocked=True, stop_sequence=None) == "refusal"
    assert stop_reason("STOP", tool_use=False, blocked=False, stop_sequence="x") == "stop_sequence"


def test_a_botched_tool_call_is_an_upstream_error_naming_gemini_s_reason():
    answer = {
        "candidates": [
            {"finishReason": "MALFORMED_FUNCTION_CALL", "finishMessage": "Malformed function call: f(a=)"}
        ]
    }
    with pytest.raises(UpstreamIncomplete) as caught:
        message(answer, model="m")
    assert "MALFORMED_FUNCTION_CALL" in caught.value.message and "f(a=)" in caught.value.message
    # A stop sequence that matched first ends the answer before the botched call could matter.
    assert (
        stop_reason("UNEXPECTED_TOOL_CALL", tool_use=False, blocked=False, stop_sequence="x")
        == "stop_sequence"
    )


def test_count_tokens():
    assert count_tokens(fixture_json("gemini/count_tokens.json")) == {"input_tokens": 5}
    assert count_tokens({}) == {"input_tokens": 0}
