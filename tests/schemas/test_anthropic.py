"""The Anthropic request schemas: as strict as Anthropic's API about JSON types."""

import pytest
from marshmallow import ValidationError

from schemas import first_error
from schemas.anthropic import CountTokensRequest, MessagesRequest

MESSAGES = MessagesRequest()
BASE = {"model": "gemini-2.5-flash", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}


def problem(data):
    try:
        MESSAGES.load(data)
    except ValidationError as err:
        return first_error(err.normalized_messages())
    return None


@pytest.mark.parametrize(
    "field, value",
    [
        ("stream", "false"),
        ("stream", 0),
        ("temperature", "0.5"),
        ("top_p", True),
        ("top_k", 2.0),
        ("max_tokens", "100"),
        ("max_tokens", True),
        ("temperature", 3),
    ],
)
def test_values_of_the_wrong_type_or_range_are_refused_with_their_field(field, value):
    assert problem({**BASE, field: value})[0] == field


def test_a_request_with_what_claude_code_sends_loads():
    data = {
        **BASE,
        "stream": True,
        "temperature": 1,
        "system": [{"type": "text", "text": "You are a helper.", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "user_abc"},
        "context_management": {"edits": []},  # unknown fields pass through
    }
    loaded = MESSAGES.load(data)
    assert loaded["stream"] is True and loaded["context_management"] == {"edits": []}


def test_nested_booleans_are_strict_too():
    blocks = [{"type": "tool_result", "tool_use_id": "t", "content": "x", "is_error": "false"}]
    assert (
        problem({**BASE, "messages": [{"role": "user", "content": blocks}]})[0]
        == "messages[0].content[0].is_error"
    )
    choice = {"type": "auto", "disable_parallel_tool_use": "yes"}
    assert problem({**BASE, "tool_choice": choice})[0] == "tool_choice.disable_parallel_tool_use"


def test_count_tokens_needs_no_max_tokens():
    assert CountTokensRequest().load({"model": "m", "messages": BASE["messages"]})["model"] == "m"
