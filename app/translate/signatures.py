"""Gemini's thought signatures through clients that only echo ids: the (call id, signature) codec.

Gemini 3 refuses a replayed function call without the signature it came with, and clients of other
dialects keep a tool call's id but drop most else. So a dialect's tool-call id carries Gemini's call
`id` and `thoughtSignature`, packed here; each dialect adds its own prefix.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import NamedTuple

# Google's documented stand-in for a signature we never saw (history from another model, or a client
# that rewrote the ids): Gemini 3 refuses a replayed function call with none at all.
BYPASS_SIGNATURE = "skip_thought_signature_validator"

_SIG_BYTES, _SIG_TEXT = 1, 2  # the signature kept as its decoded bytes (a third shorter), or as text
_NONCE = 4  # random bytes: two calls with the same contents still get different ids
_MAX_CALL_ID = 255


class CallRef(NamedTuple):
    gemini_id: str | None
    signature: str | None


NO_REF = CallRef(None, None)


def pack(gemini_id: str | None, signature: str | None) -> str | None:
    """The call id and signature as URL-safe base64 ([A-Za-z0-9_-]); None when there is nothing to carry
    or the call id is too long to keep."""
    call = (gemini_id or "").encode()
    if (not call and not signature) or len(call) > _MAX_CALL_ID:
        return None
    version, sig = _SIG_TEXT, (signature or "").encode()
    raw = _exact_b64decode(signature) if signature else None
    if raw is not None:
        version, sig = _SIG_BYTES, raw
    blob = bytes([version]) + secrets.token_bytes(_NONCE) + bytes([len(call)]) + call + sig
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def unpack(text: str) -> CallRef:
    """What `pack` packed; NO_REF for anything else."""
    try:
        blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return NO_REF
    head = 1 + _NONCE + 1
    if len(blob) < head or blob[0] not in (_SIG_BYTES, _SIG_TEXT) or head + blob[head - 1] > len(blob):
        return NO_REF
    end = head + blob[head - 1]
    try:
        call_id = blob[head:end].decode() or None
        sig = blob[end:]
        signature = (base64.b64encode(sig) if blob[0] == _SIG_BYTES else sig).decode() or None
    except UnicodeDecodeError:
        return NO_REF
    return CallRef(call_id, signature)


def _exact_b64decode(text: str) -> bytes | None:
    """The bytes of standard base64 that re-encodes to exactly `text`, else None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def ensure_call_signatures(contents: list[dict]) -> None:
    """Give each model turn's first function call a signature when it has none (BYPASS_SIGNATURE):
    Gemini 3 refuses the request otherwise, and other models accept the stand-in."""
    for content in contents:
        if content.get("role") != "model":
            continue
        for part in content.get("parts") or ():
            if "functionCall" in part:
                part.setdefault("thoughtSignature", BYPASS_SIGNATURE)
                break
