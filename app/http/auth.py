"""Client authentication for every dialect: where the key may come from, and a constant-time check."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from werkzeug.datastructures import Headers

from ..config import ClientKey
from ..errors import AuthenticationFailed


def presented_key(headers: Headers | Mapping[str, str], args: Mapping[str, str]) -> str | None:
    """The client's key from `Authorization: Bearer`, `x-api-key`, `x-goog-api-key` or `?key=`."""
    auth = headers.get("Authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    for name in ("x-api-key", "x-goog-api-key"):
        value = headers.get(name)
        if value:
            return value.strip()
    return args.get("key") or None


class ClientKeys:
    """The gateway's own keys. Compared as SHA-256 digests, so neither content nor length leaks.

    API_KEYS are named key-1, key-2...; CLIENT_KEYS_FILE keys carry their own names and limits.
    """

    def __init__(self, keys: tuple[str, ...], entries: tuple[ClientKey, ...] = ()):
        self._digests = [(f"key-{i}", _digest(k)) for i, k in enumerate(keys, 1)]
        self._digests += [(entry.name, entry.digest) for entry in entries]
        self.entries = {entry.name: entry for entry in entries}

    def identify(self, presented: str | None) -> str:
        """The name of the matching key; raises AuthenticationFailed otherwise."""
        if not presented:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>', 'x-api-key', "
                "'x-goog-api-key' or the 'key' query parameter."
            )
        digest = _digest(presented)
        found = None
        for name, expected in self._digests:  # no early exit: every key is compared
            if hmac.compare_digest(digest, expected):
                found = name
        if found is None:
            raise AuthenticationFailed("Invalid API key.")
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
