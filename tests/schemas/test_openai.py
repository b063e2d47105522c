"""The OpenAI request schemas: what they refuse (with the field path) and what they let through."""

import pytest

from schemas import first_error
from schemas.openai import ChatCompletionRequest, EmbeddingsRequest, ImagesRequest, SpeechRequest

CHAT = ChatCompletionRequest()
BASE = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}]}


def problem(schema, data):
    errors = schema.validate(data)
    return first_error(errors) if errors else None


def test_a_full_modern_request_passes():
    assert (
        problem(
            CHAT,
            {
                **BASE,
                "messages": [
                    {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AA==", "detail": "low"},
                            },
                            {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
                            {
                                "type": "file",
                                "file": {
                                    "file_data": "data:application/pdf;base64,AA==",
                                    "filename": "a.pdf",
                                },
                            },
                        ],
                    },
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                                "extra_content": {"google": {"thought_signature": "c2ln"}},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
                ],
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"type": "object"}, "strict": True},
                    }
                ],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {}, "strict": True},
                },
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_completion_tokens": 10,
                "temperature": 1,
                "top_p": 0.5,
                "n": 1,
                "stop": ["a"],
                "seed": 1,
                "logprobs": True,
                "top_logprobs": 2,
                "reasoning_effort": "low",
                "parallel_tool_calls": False,
                "modalities": ["text", "audio"],
                "audio": {"voice": "alloy", "format": "wav"},
                "extra_body": {"google": {}},
            },
        )
        is None
    )


def test_unknown_fields_and_nulls_pass():
    assert (
        problem(
            CHAT,
            {
                **BASE,
                "metadata": {"a": 1},
                "prediction": {},
                "verbosity": "low",
                "store": True,
                "temperature": None,
                "tools": None,
                "stop": None,
                "max_tokens": None,
                "n": None,
                "response_format": None,
                "stream_options": None,
                "user": "u",
            },
        )
        is None
    )


@pytest.mark.parametrize(
    "change, path",
    [
        ({"model": ""}, "model"),
        ({"messages": "Hi"}, "messages"),
        ({"messages": [{"content": "Hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]},
            "messages[0].content[0].file",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}
                ]
            },
            "messages[0].tool_calls[0].function.name",
        ),
        ({"temperature": 3}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": "2"}, "n"),
        ({"stop": [1]}, "stop[0]"),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function.name"),
        ({"tool_choice": {"type": "function", "function": {}}}, "tool_choice.function.name"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"stream": "yes please"}, "stream"),
    ],
)
def test_bad_chat_requests_name_the_field(change, path):
    found = problem(CHAT, {**BASE, **change})
    assert found is not None and found[0] == path, found


def test_other_request_schemas():
    assert problem(EmbeddingsRequest(), {"model": "m", "input": ["a", "b"], "dimensions": 8}) is None
    assert problem(EmbeddingsRequest(), {"model": "m", "input": [[1, 2]]})[0] == "input"
    assert problem(EmbeddingsRequest(), {"model": "m", "input": ["a", 3]})[0] == "input"
    assert (
        problem(EmbeddingsRequest(), {"model": "m", "input": "x", "encoding_format": "int8"})[0]
        == "encoding_format"
    )
    assert problem(ImagesRequest(), {"prompt": "cat", "n": 4, "quality": "hd", "style": "vivid"}) is None
    assert problem(ImagesRequest(), {"prompt": "cat", "n": 5})[0] == "n"
    assert problem(ImagesRequest(), {"prompt": ""})[0] == "prompt"
    assert problem(SpeechRequest(), {"model": "tts-1", "input": "x", "voice": {"id": "alloy"}}) is None
    assert problem(SpeechRequest(), {"model": "tts-1", "input": "x", "speed": 0.1})[0] == "speed"
    assert problem(SpeechRequest(), {"model": "tts-1", "input": "x", "voice": 3})[0] == "voice"
