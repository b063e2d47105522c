"""OpenAI tool call ids: chat completions' short ones, like OpenAI's own (what they stand for is kept in the
shared store, see call_memory), and ids that carry Gemini's call id and signature inside (the Responses
API's `call_id`s, and chat completions' of earlier versions)."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from collections.abc import Iterable

from .. import jsonx
from ..translate.signatures import NO_REF, CallRef, pack, unpack

__all__ = ["CallRef", "decode", "encode", "extra_signature", "new_id", "unresolved"]

# Chat UIs that replay a conversation to another provider choke on long ids, so an id is `call_` and 24
# letters and digits, as OpenAI's are. Gemini 3 needs a call's thought signature back with it: it
# travels in `extra_content.google.thought_signature` (as Google's own OpenAI endpoint sends it) and,
# for clients that drop that, in the store by (client key, id) for a week (call_memory). Past that, the
# signature is lost and the request carries Google's documented stand-in (signatures.BYPASS_SIGNATURE).
PREFIX = "call_"
_ALPHABET = string.ascii_letters + string.digits
_SHORT = re.compile(r"^call_[A-Za-z0-9]{24}$")
# Ids that carry Gemini's state inside: `call_gg` and the packed (call id, signature), or a plain
# `call_<24 hex>` when there is nothing to carry (only [A-Za-z0-9_-], so clients that sanitise ids
# keep them); older ones, `call_<24 hex>_` and base64url JSON, are still read.
_PACKED = PREFIX + "gg"
_EARLIER = re.compile(r"^call_[0-9a-f]{24}_([A-Za-z0-9_-]+)$")


def new_id() -> str:
    """A fresh tool call id: `call_` and 24 random letters and digits."""
    return PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def encode(gemini_id: str | None = None, signature: str | None = None) -> str:
    """A fresh, unique tool call id carrying Gemini's call id and signature (either may be None)."""
    packed = pack(gemini_id, signature)
    return _PACKED + packed if packed else PREFIX + secrets.token_hex(12)


def decode(call_id: object) -> CallRef:
    """What an id made by `encode` (or an older version) carries inside; NO_REF for a short id and any other."""
    if not isinstance(call_id, str):
        return NO_REF
    if call_id.startswith(_PACKED):
        return unpack(call_id[len(_PACKED) :])
    earlier = _EARLIER.match(call_id)
    return _decode_earlier(earlier.group(1)) if earlier else NO_REF


def unresolved(messages: Iterable[dict]) -> list[str]:
    """The short ids of the assistant tool calls in a history that bring no signature of their own
    (no `extra_content`): the ones worth looking up in the store."""
    found = []
    for message in messages:
        if message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or ():
            call_id = call.get("id") if isinstance(call, dict) else None
            if isinstance(call_id, str) and _SHORT.match(call_id) and not extra_signature(call):
                found.append(call_id)
    return found


def extra_signature(call: dict) -> str | None:
    """The signature a client sent back in a tool call's `extra_content.google.thought_signature`."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _decode_earlier(tail: str) -> CallRef:
    try:
        payload = jsonx.loads(base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4)))
    except (binascii.Error, ValueError, jsonx.JSONDecodeError):
        return NO_REF
    if not isinstance(payload, dict):
        return NO_REF
    gemini_id, signature = payload.get("i"), payload.get("s")
    return CallRef(
        gemini_id if isinstance(gemini_id, str) and gemini_id else None,
        signature if isinstance(signature, str) and signature else None,
    )
