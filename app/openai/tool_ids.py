"""OpenAI tool call ids that carry Gemini's function call id and thought signature through a client's history."""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from .. import jsonx
from ..translate.signatures import NO_REF, CallRef, pack, unpack

__all__ = ["CallRef", "decode", "encode"]

# Clients echo `tool_calls[].id` (and the `tool_call_id` of their answers) but often drop anything
# else, so the id carries Gemini's state: `call_gg` and the packed (call id, signature), or a plain
# `call_<24 hex>` when there is nothing to carry. Only [A-Za-z0-9_-], so it survives clients that
# sanitise ids.
PREFIX = "call_"
_PACKED = PREFIX + "gg"
# Ids from earlier versions, still in clients' histories: `call_<24 hex>_` and base64url JSON.
_EARLIER = re.compile(r"^call_[0-9a-f]{24}_([A-Za-z0-9_-]+)$")


def encode(gemini_id: str | None = None, signature: str | None = None) -> str:
    """A fresh, unique tool call id carrying Gemini's call id and signature (either may be None)."""
    packed = pack(gemini_id, signature)
    return _PACKED + packed if packed else PREFIX + secrets.token_hex(12)


def decode(call_id: object) -> CallRef:
    """What an id made by `encode` (or an earlier version) carries; NO_REF for any other id."""
    if not isinstance(call_id, str):
        return NO_REF
    if call_id.startswith(_PACKED):
        return unpack(call_id[len(_PACKED) :])
    earlier = _EARLIER.match(call_id)
    return _decode_earlier(earlier.group(1)) if earlier else NO_REF


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
