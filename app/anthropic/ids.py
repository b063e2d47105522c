"""Anthropic message and tool_use ids, and thinking signatures, that carry Gemini's state through a client."""

from __future__ import annotations

import base64
import binascii
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
# A tool_use id holds the Gemini call's `id` and `thoughtSignature`, so a client that keeps only the
# tool calls (dropping thinking blocks) still sends back what Gemini 3 requires. Plain ids look like
# Anthropic's own, `toolu_01...`. Ours are [A-Za-z0-9_-], as Anthropic requires of tool_use ids.
_TOOL_PREFIX = "toolu_gg"
_SIG_BYTES, _SIG_TEXT = 1, 2  # how the signature is kept in the id
SIGNATURE_PREFIX = "gg1."  # marks Gemini's signatures, so a Claude one from older history is never sent


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def message_id() -> str:
    return "msg_01" + _random(22)


def tool_use_id(call_id: str | None = None, signature: str | None = None) -> str:
    """A `toolu_` id; a Gemini call id and signature, when there are any, are encoded in it."""
    call = (call_id or "").encode()
    if not signature and not call or len(call) > 255:
        return "toolu_01" + _random(22)
    version, sig = _SIG_TEXT, (signature or "").encode()
    raw = _exact_b64decode(signature) if signature else None
    if raw is not None:  # a third shorter than the text: ids stay as short as they can
        version, sig = _SIG_BYTES, raw
    blob = bytes([version]) + secrets.token_bytes(4) + bytes([len(call)]) + call + sig
    return _TOOL_PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode()


def parse_tool_use_id(tool_id: str) -> tuple[str | None, str | None]:
    """(Gemini call id, thoughtSignature) from an id made by `tool_use_id`; (None, None) otherwise."""
    if not tool_id.startswith(_TOOL_PREFIX):
        return None, None
    payload = tool_id[len(_TOOL_PREFIX) :]
    try:
        blob = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        return None, None
    if len(blob) < 6 or blob[0] not in (_SIG_BYTES, _SIG_TEXT) or 6 + blob[5] > len(blob):
        return None, None
    end = 6 + blob[5]
    try:
        call_id = blob[6:end].decode() or None
        sig = blob[end:]
        signature = (base64.b64encode(sig) if blob[0] == _SIG_BYTES else sig).decode() or None
    except UnicodeDecodeError:
        return None, None
    return call_id, signature


def _exact_b64decode(text: str) -> bytes | None:
    """The bytes of standard base64 that re-encodes to exactly `text`, else None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def thinking_signature(signature: str | None) -> str:
    """The `signature` of a thinking block: Gemini's, marked as ours ("" when there is none)."""
    return SIGNATURE_PREFIX + signature if signature else ""


def parse_thinking_signature(signature: object) -> str | None:
    """Gemini's signature back from a thinking block, or None for an empty or foreign one."""
    if (
        isinstance(signature, str)
        and signature.startswith(SIGNATURE_PREFIX)
        and len(signature) > len(SIGNATURE_PREFIX)
    ):
        return signature[len(SIGNATURE_PREFIX) :]
    return None
