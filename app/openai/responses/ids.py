"""Responses API ids, and the opaque strings that carry Gemini's state through a client.

A response id is `resp_` and 48 hex digits; each of its items' ids is a prefix (`msg`, `rs`, `fc`...),
those same digits and a counter, so an item id names the response it came from (an `item_reference`
needs no index). Call ids carry Gemini's call id and thought signature (app.openai.tool_ids); a
reasoning item's `encrypted_content` carries a thought signature, a compaction item's the summary.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import zlib

from ...errors import InvalidRequest

RESPONSE_PREFIX = "resp_"
_TOKEN = re.compile(r"^[a-z]+_([0-9a-f]{48})[0-9a-f]{4,}$")
_SIGNATURE = "gg1."  # marks Gemini's signatures, so OpenAI's own encrypted reasoning is never sent on
_SUMMARY = "ggc1."
MAX_SUMMARY_BYTES = 4 << 20  # a summary is text a model wrote: far less than this


def new_token() -> str:
    return secrets.token_hex(24)


class ItemIds:
    """The ids of one response and its items (input and output alike)."""

    def __init__(self, token: str | None = None):
        self.token = token or new_token()
        self.response = RESPONSE_PREFIX + self.token
        self._count = 0

    def __call__(self, prefix: str) -> str:
        item_id = f"{prefix}_{self.token}{self._count:04x}"
        self._count += 1
        return item_id


def response_of_item(item_id: str) -> str | None:
    """The id of the response an item id made here belongs to; None for any other id."""
    found = _TOKEN.match(item_id)
    return RESPONSE_PREFIX + found.group(1) if found else None


def encrypted_signature(signature: str) -> str:
    return _SIGNATURE + signature


def signature_of(encrypted: object) -> str | None:
    """The thought signature in a reasoning item's `encrypted_content`; None for anything else."""
    if isinstance(encrypted, str) and encrypted.startswith(_SIGNATURE) and len(encrypted) > len(_SIGNATURE):
        return encrypted[len(_SIGNATURE) :]
    return None


def encrypted_summary(summary: str) -> str:
    packed = base64.urlsafe_b64encode(zlib.compress(summary.encode("utf-8"), 6)).rstrip(b"=")
    return _SUMMARY + packed.decode("ascii")


def summary_of(encrypted: object, *, param: str) -> str | None:
    """The summary in a compaction item made here; None for another's (OpenAI's own is opaque)."""
    if not isinstance(encrypted, str) or not encrypted.startswith(_SUMMARY):
        return None
    text = encrypted[len(_SUMMARY) :]
    try:
        packed = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        inflate = zlib.decompressobj()
        raw = inflate.decompress(packed, MAX_SUMMARY_BYTES)
    except (binascii.Error, ValueError, zlib.error):
        raw, inflate = b"", None
    if inflate is not None and inflate.unconsumed_tail:
        raise InvalidRequest("The compaction item's summary is too large.", param=param)
    try:
        if inflate is None or not inflate.eof:
            raise ValueError
        return raw.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The compaction item's encrypted_content is damaged.", param=param) from None
