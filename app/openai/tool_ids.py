"""Tool call ids that carry Gemini's function call id and thought signature through a client's history."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import NamedTuple

from .. import jsonx

# Clients echo `tool_calls[].id` (and the `tool_call_id` of their answers) but often drop anything
# else, while Gemini 3 refuses a replayed function call without its thought signature. So the id
# carries both: `call_<24 hex>`, then, when there is something to carry, `_` and base64url of
# {"i": gemini id, "s": signature}. Only [A-Za-z0-9_-], so it survives clients that sanitise ids.
PREFIX = "call_"
_NONCE_HEX = 24
_HEAD = len(PREFIX) + _NONCE_HEX


class CallRef(NamedTuple):
    gemini_id: str | None
    signature: str | None


def encode(gemini_id: str | None = None, signature: str | None = None) -> str:
    """A fresh, unique tool call id carrying Gemini's call id and signature (either may be None)."""
    head = PREFIX + secrets.token_hex(_NONCE_HEX // 2)
    payload = {}
    if gemini_id:
        payload["i"] = gemini_id
    if signature:
        payload["s"] = signature
    if not payload:
        return head
    return head + "_" + base64.urlsafe_b64encode(jsonx.dumps(payload)).rstrip(b"=").decode("ascii")


def decode(call_id: object) -> CallRef:
    """What an id made by `encode` carries; CallRef(None, None) for any other id."""
    if not isinstance(call_id, str) or len(call_id) <= _HEAD + 1 or not call_id.startswith(PREFIX):
        return CallRef(None, None)
    if call_id[_HEAD] != "_":
        return CallRef(None, None)
    tail = call_id[_HEAD + 1 :]
    try:
        payload = jsonx.loads(base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4)))
    except (binascii.Error, ValueError, jsonx.JSONDecodeError):
        return CallRef(None, None)
    if not isinstance(payload, dict):
        return CallRef(None, None)
    gemini_id, signature = payload.get("i"), payload.get("s")
    return CallRef(
        gemini_id if isinstance(gemini_id, str) and gemini_id else None,
        signature if isinstance(signature, str) and signature else None,
    )
