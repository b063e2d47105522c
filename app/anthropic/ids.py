"""Anthropic message and tool_use ids, and thinking signatures, that carry Gemini's state through a client."""

from __future__ import annotations

import secrets
import string

from ..translate.signatures import pack, unpack

_ALPHABET = string.ascii_letters + string.digits
# A tool_use id holds the Gemini call's `id` and `thoughtSignature`, so a client that keeps only the
# tool calls (dropping thinking blocks) still sends back what Gemini 3 requires. Plain ids look like
# Anthropic's own, `toolu_01...`. Ours are [A-Za-z0-9_-], as Anthropic requires of tool_use ids.
_TOOL_PREFIX = "toolu_gg"
SIGNATURE_PREFIX = "gg1."  # marks Gemini's signatures, so a Claude one from older history is never sent
# A thinking block always ends with a signature (Anthropic's always do; clients' accumulators expect one).
# When Gemini gave none before the block had to end (it may sign a later, empty part), this stands in:
# it reads back as no signature at all.
NO_SIGNATURE = "gg0"


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def message_id() -> str:
    return "msg_01" + _random(22)


def tool_use_id(call_id: str | None = None, signature: str | None = None) -> str:
    """A `toolu_` id; a Gemini call id and signature, when there are any, are packed into it."""
    packed = pack(call_id, signature)
    return _TOOL_PREFIX + packed if packed else "toolu_01" + _random(22)


def parse_tool_use_id(tool_id: str) -> tuple[str | None, str | None]:
    """(Gemini call id, thoughtSignature) from an id made by `tool_use_id`; (None, None) otherwise."""
    if not tool_id.startswith(_TOOL_PREFIX):
        return None, None
    ref = unpack(tool_id[len(_TOOL_PREFIX) :])
    return ref.gemini_id, ref.signature


def thinking_signature(signature: str | None) -> str:
    """The `signature` of a thinking block: Gemini's, marked as ours (NO_SIGNATURE when there is none)."""
    return SIGNATURE_PREFIX + signature if signature else NO_SIGNATURE


def parse_thinking_signature(signature: object) -> str | None:
    """Gemini's signature back from a thinking block, or None for an empty or foreign one."""
    if (
        isinstance(signature, str)
        and signature.startswith(SIGNATURE_PREFIX)
        and len(signature) > len(SIGNATURE_PREFIX)
    ):
        return signature[len(SIGNATURE_PREFIX) :]
    return None
