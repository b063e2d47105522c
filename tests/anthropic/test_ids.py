"""Tool-use ids and thinking signatures that carry Gemini's state through an Anthropic client."""

import base64
import re
import secrets

from app.anthropic import ids

SIG = base64.b64encode(secrets.token_bytes(700)).decode()
VALID_ID = re.compile(r"^[a-zA-Z0-9_-]+$")  # what Anthropic accepts as a tool_use id


def test_a_plain_call_gets_an_anthropic_looking_id():
    tool_id = ids.tool_use_id()
    assert tool_id.startswith("toolu_01") and len(tool_id) == 30 and VALID_ID.match(tool_id)
    assert ids.parse_tool_use_id(tool_id) == (None, None)
    assert ids.tool_use_id() != tool_id


def test_call_id_and_signature_survive_the_round_trip():
    tool_id = ids.tool_use_id("3ae8iwca", SIG)
    assert VALID_ID.match(tool_id)
    assert ids.parse_tool_use_id(tool_id) == ("3ae8iwca", SIG)
    assert ids.parse_tool_use_id(ids.tool_use_id(None, SIG)) == (None, SIG)
    assert ids.parse_tool_use_id(ids.tool_use_id("only-id")) == ("only-id", None)
    # Two calls with the same signature and no id still get different ids.
    assert ids.tool_use_id(None, SIG) != ids.tool_use_id(None, SIG)


def test_a_signature_that_is_not_canonical_base64_is_kept_as_text():
    for odd in ("skip_thought_signature_validator", "YWJj", "YWJjZA", "not base64 at all!"):
        assert ids.parse_tool_use_id(ids.tool_use_id("x", odd)) == ("x", odd)


def test_foreign_or_damaged_ids_carry_nothing():
    for tool_id in (
        "toolu_01X9wcHKKAZD9tBC711xipPa",
        "call_abc",
        "toolu_gg",
        "toolu_gg!!!",
        "toolu_ggAAAA",
        "toolu_gg" + base64.urlsafe_b64encode(b"\x07junkjunk").decode(),
    ):
        assert ids.parse_tool_use_id(tool_id) == (None, None)


def test_thinking_signatures_are_marked_as_ours():
    assert ids.parse_thinking_signature(ids.thinking_signature(SIG)) == SIG
    assert ids.thinking_signature(None) == ids.NO_SIGNATURE  # never empty, and it reads back as none
    assert ids.parse_thinking_signature(ids.NO_SIGNATURE) is None
    # Claude's own signatures (a conversation that started there) are never sent to Gemini.
    for foreign in ("EvMCCkYICxgCKkCHP2cSuEdcJK", "", None, "gg1.", 42):
        assert ids.parse_thinking_signature(foreign) is None


def test_message_ids():
    assert ids.message_id().startswith("msg_01") and ids.message_id() != ids.message_id()
