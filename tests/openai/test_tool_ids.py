"""Tool call ids: today's short ones, and the ones of earlier versions that carried Gemini's call id
and thought signature inside."""

import base64
import re

import pytest

from app.openai.tool_ids import CallRef, decode, encode, new_id, unresolved

SIGNATURE = (
    "CmIBvj72+4pAeKnGzc+2rNwOgLyF3mo/fgOg3Nblgmuo9Mi8ln6O1N7n44cra26xGGff6ytv5zn/"
    "rtbUZtxEbAH/r2gaff8IVDzP9yg6eVn5b8Q9KgZ+9e=="
)


@pytest.mark.parametrize(
    "gemini_id, signature", [(None, None), ("3ae8iwca", None), (None, SIGNATURE), ("3ae8iwca", SIGNATURE)]
)
def test_ids_that_carry_the_call_round_trip(gemini_id, signature):
    # The Responses API's call_ids, and chat completions' ids of the previous version.
    call_id = encode(gemini_id, signature)
    assert re.fullmatch(r"call_[0-9a-f]{24}|call_gg[A-Za-z0-9_-]+", call_id)
    assert decode(call_id) == CallRef(gemini_id, signature)


def test_ids_that_carry_the_call_are_unique_even_for_the_same_call():
    assert encode("x", SIGNATURE) != encode("x", SIGNATURE)


def test_ids_of_earlier_versions_still_decode():
    # `call_<24 hex>_` and base64url of {"i": id, "s": signature}, as ids were made before.
    earlier = (
        "call_"
        + "a" * 24
        + "_"
        + base64.urlsafe_b64encode(b'{"i":"3ae8iwca","s":"c2ln"}').decode().rstrip("=")
    )
    assert decode(earlier) == CallRef("3ae8iwca", "c2ln")


def test_new_ids_are_short_like_openai_s_and_unique():
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"call_[A-Za-z0-9]{24}", i) for i in ids)
    assert all(decode(i) == CallRef(None, None) for i in ids)  # what they stand for is in the store


def test_unresolved_lists_short_ids_without_a_signature_of_their_own():
    short, kept, old = new_id(), new_id(), encode("x", SIGNATURE)
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": short, "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {
                    "id": kept,
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                    "extra_content": {"google": {"thought_signature": SIGNATURE}},
                },
                {"id": old, "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "call_abc", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": short, "content": "ok"},
    ]
    assert unresolved(messages) == [short]
    assert unresolved([{"role": "user", "content": "hi"}]) == []


@pytest.mark.parametrize(
    "other",
    [
        None,
        42,
        "",
        "call_abc",
        "toolu_01A09q90qw90lq917835lq9",
        "call_" + "0" * 24,
        "call_" + "0" * 24 + "x!!",
        "call_" + "0" * 24 + "_%%%",
        "call_" + "0" * 24 + "_WzFd",  # base64 of a JSON list
        "call_gg",
        "call_ggAAAA",  # too short to hold its own header
        "call_gg" + "_" * 12,
    ],
)
def test_foreign_or_damaged_ids_carry_nothing(other):
    assert decode(other) == CallRef(None, None)
