"""Gemini answers -> OpenAI chat.completion, on the recorded fixtures."""

import base64
import json
import re

import pytest

from app.errors import UpstreamIncomplete
from app.openai import tool_ids
from app.openai.from_gemini import chat_completion, finish_reason, logprobs, usage
from tests.conftest import fixture_json


def complete(answer, **options):
    return chat_completion(answer, model="gemini-x", created=1700000000, **options)


def message(answer, **options):
    return complete(answer, **options)["choices"][0]["message"]


def test_text_answer_has_openai_shape():
    out = complete(fixture_json("gemini/generate_text.json"))
    assert out["id"] == "chatcmpl-xlWYafXAOKSf1e8PpcODiAg"
    assert out["object"] == "chat.completion" and out["created"] == 1700000000 and out["model"] == "gemini-x"
    assert out["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]


def test_usage_counts_thoughts_as_completion_tokens():
    out = complete(fixture_json("gemini/generate_text.json"))
    assert out["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 35,
        "total_tokens": 46,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 34,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def test_usage_with_cached_and_tool_use_tokens():
    meta = {
        "promptTokenCount": 100,
        "candidatesTokenCount": 20,
        "cachedContentTokenCount": 60,
        "toolUsePromptTokenCount": 5,
        "thoughtsTokenCount": 7,
        "totalTokenCount": 132,
        "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 20}],
    }
    out = usage(meta)
    assert (out["prompt_tokens"], out["completion_tokens"], out["total_tokens"]) == (105, 27, 132)
    assert out["prompt_tokens_details"]["cached_tokens"] == 60
    assert out["completion_tokens_details"]["reasoning_tokens"] == 7
    assert out["completion_tokens_details"]["audio_tokens"] == 20
    assert usage(None)["total_tokens"] == 0


@pytest.mark.parametrize(
    "reason, expected",
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        (None, "stop"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("LANGUAGE", "content_filter"),
        ("OTHER", "content_filter"),
        ("NO_IMAGE", "content_filter"),
        ("A_REASON_NEWER_THAN_THIS_LIST", "content_filter"),
    ],
)
def test_finish_reason_mapping(reason, expected):
    assert finish_reason(reason, False) == expected


@pytest.mark.parametrize(
    "reason",
    ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "MISSING_THOUGHT_SIGNATURE"],
)
def test_a_botched_tool_call_is_an_error_never_a_gemini_name_or_a_stop(reason):
    with pytest.raises(UpstreamIncomplete) as err:
        finish_reason(reason, True, "Malformed function call: print(default_api.f(x=))")
    assert (
        err.value.status == 502 and reason in err.value.message and "print(default_api" in err.value.message
    )
    answer = {"candidates": [{"content": {"parts": []}, "finishReason": reason, "index": 0}]}
    with pytest.raises(UpstreamIncomplete):
        complete(answer)


def test_any_function_call_finishes_with_tool_calls():
    assert finish_reason("STOP", True) == "tool_calls"


def test_max_tokens_fixture_finishes_with_length():
    assert complete(fixture_json("gemini/max_tokens.json"))["choices"][0]["finish_reason"] == "length"


def test_safety_fixture_finishes_with_content_filter():
    out = complete(fixture_json("gemini/finish_reason_safety.json"))
    assert out["choices"][0]["finish_reason"] == "content_filter"
    out = complete(fixture_json("gemini/finish_reason_safety_blocked_rating.json"))
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] == ""


@pytest.mark.parametrize("name", ["prompt_blocked_prohibited_content.json", "prompt_blocked_safety.json"])
def test_blocked_prompt_is_a_content_filter_choice_with_a_refusal(name):
    answer = fixture_json(f"gemini/{name}")
    out = complete(answer)
    [choice] = out["choices"]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None
    assert answer["promptFeedback"]["blockReason"] in choice["message"]["refusal"]


def test_function_call_carries_the_signature_in_the_id_and_in_extra_content():
    answer = fixture_json("gemini/function_call_gemini3.json")
    part = answer["candidates"][0]["content"]["parts"][0]
    out = complete(answer)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    msg = choice["message"]
    assert msg["content"] is None
    [call] = msg["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "weather", "arguments": '{"location":"San Francisco"}'}
    assert call["extra_content"] == {"google": {"thought_signature": part["thoughtSignature"]}}
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call["id"])  # short, like OpenAI's own


def test_what_each_tool_call_id_stands_for_is_collected_for_the_store():
    answer = fixture_json("gemini/function_call_gemini3.json")
    part = answer["candidates"][0]["content"]["parts"][0]
    carried: dict = {}
    [call] = complete(answer, carried=carried)["choices"][0]["message"]["tool_calls"]
    assert carried == {call["id"]: tool_ids.CallRef(part["functionCall"].get("id"), part["thoughtSignature"])}


def test_parallel_calls_get_distinct_ids_and_only_the_first_a_signature():
    answer = fixture_json("gemini/parallel_function_calls.json")
    calls = message(answer)["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"a": 2, "b": 3},
        {"a": 4, "b": 5},
        {"a": 6, "b": 7},
    ]
    assert len({c["id"] for c in calls}) == 3
    assert "extra_content" in calls[0] and "extra_content" not in calls[1] and "extra_content" not in calls[2]
    carried: dict = {}
    calls = complete(answer, carried=carried)["choices"][0]["message"]["tool_calls"]
    assert [c["id"] in carried for c in calls] == [True, False, False]  # the 2.5 calls carry no call id


def test_parallel_tool_calls_false_keeps_only_the_first_call():
    calls = message(fixture_json("gemini/parallel_function_calls.json"), parallel_tool_calls=False)[
        "tool_calls"
    ]
    assert len(calls) == 1 and json.loads(calls[0]["function"]["arguments"]) == {"a": 2, "b": 3}


def test_thoughts_become_reasoning_content_and_never_content():
    answer = fixture_json("gemini/thinking_include_thoughts.json")
    parts = answer["candidates"][0]["content"]["parts"]
    msg = message(answer)
    assert msg["reasoning_content"] == "".join(p["text"] for p in parts if p.get("thought"))
    assert msg["content"] == "".join(p["text"] for p in parts if not p.get("thought"))
    assert msg["reasoning_content"] not in msg["content"]


def test_thought_then_function_call():
    msg = message(fixture_json("gemini/function_call_thought_signature.json"))
    assert msg["reasoning_content"].startswith("**Thinking Through")
    assert msg["tool_calls"][0]["function"]["name"] == "now"
    assert msg["content"] is None


def test_images_are_markdown_in_content_and_listed_in_images():
    answer = fixture_json("gemini/image_generation.json")
    text, image = answer["candidates"][0]["content"]["parts"]
    url = f"data:image/png;base64,{image['inlineData']['data']}"
    msg = message(answer)
    assert msg["content"] == text["text"] + "\n\n" + f"![image]({url})"
    assert msg["images"] == [{"type": "image_url", "image_url": {"url": url}}]


def test_text_after_an_image_is_separated():
    answer = {
        "candidates": [
            {
                "content": {
                    "parts": [{"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}}, {"text": "A cat."}]
                },
                "finishReason": "STOP",
            }
        ]
    }
    assert message(answer)["content"] == "![image](data:image/jpeg;base64,AAAA)\n\nA cat."


def test_code_execution_parts_become_fenced_blocks():
    answer = fixture_json("gemini/code_execution.json")
    content = message(answer)["content"]
    code = next(
        p["executableCode"]["code"]
        for p in answer["candidates"][0]["content"]["parts"]
        if "executableCode" in p
    )
    assert f"```python\n{code}\n```" in content
    assert "```output\n" in content


def test_audio_parts_become_message_audio_as_wav():
    answer = fixture_json("gemini/tts.json")
    pcm = base64.b64decode(answer["candidates"][0]["content"]["parts"][0]["inlineData"]["data"])
    audio = message(answer, audio_format="wav")["audio"]
    wav = base64.b64decode(audio["data"])
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and wav[44:] == pcm
    assert int.from_bytes(wav[24:28], "little") == 24000
    assert audio["id"].startswith("audio_") and audio["expires_at"] > 1700000000 and audio["transcript"] == ""
    assert base64.b64decode(message(answer, audio_format="pcm")["audio"]["data"]) == pcm


def test_several_candidates_become_several_choices():
    answer = {
        "candidates": [
            {"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP", "index": 1},
            {"content": {"parts": [{"text": "a"}]}, "finishReason": "MAX_TOKENS", "index": 0},
        ]
    }
    choices = complete(answer)["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "a", "length"),
        (1, "b", "stop"),
    ]


def test_logprobs():
    result = {
        "topCandidates": [
            {
                "candidates": [
                    {"token": "Hi", "logProbability": -0.1},
                    {"token": "Hey", "logProbability": -2.5},
                ]
            }
        ],
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
    }
    assert logprobs(result) == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                    {"token": "Hey", "logprob": -2.5, "bytes": [72, 101, 121]},
                ],
            }
        ],
        "refusal": None,
    }
    answer = {
        "candidates": [
            {"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP", "logprobsResult": result}
        ]
    }
    assert complete(answer)["choices"][0]["logprobs"]["content"][0]["token"] == "Hi"


def test_search_grounding_becomes_url_citations():
    answer = {
        "candidates": [
            {
                "content": {"parts": [{"text": "Paris is the capital."}]},
                "finishReason": "STOP",
                "groundingMetadata": {
                    "groundingChunks": [
                        {"web": {"uri": "https://example.org/paris", "title": "example.org"}}
                    ],
                    "groundingSupports": [
                        {"segment": {"startIndex": 0, "endIndex": 21}, "groundingChunkIndices": [0]}
                    ],
                },
            }
        ]
    }
    assert message(answer)["annotations"] == [
        {
            "type": "url_citation",
            "url_citation": {
                "start_index": 0,
                "end_index": 21,
                "url": "https://example.org/paris",
                "title": "example.org",
            },
        }
    ]


def test_gemini3_text_signature_is_dropped_and_text_kept():
    answer = fixture_json("gemini/text_thought_signature_gemini3.json")
    msg = message(answer)
    assert msg["content"] and "thoughtSignature" not in json.dumps(msg)
