"""Named client keys with limits, from CLIENT_KEYS_FILE (YAML or JSON)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True)
class ClientKey:
    """One client key from CLIENT_KEYS_FILE: its name and what it may do (None: no limit)."""

    name: str
    digest: bytes = field(repr=False)  # SHA-256 of the key; the key itself is not kept
    models: tuple[str, ...] | None = None  # wildcard patterns; None: every model
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    concurrent_requests: int | None = None


_CLIENT_KEY_FIELDS = (
    "name",
    "key",
    "key_sha256",
    "models",
    "requests_per_minute",
    "tokens_per_minute",
    "tokens_per_day",
    "concurrent_requests",
)
_CLIENT_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}$")


def load_client_keys(path: str) -> tuple[ClientKey, ...]:
    """The keys listed in CLIENT_KEYS_FILE (YAML, or JSON when it ends in .json)."""
    if not path:
        return ()
    where = f"CLIENT_KEYS_FILE {path!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    data = _parse_keys_file(path, text, where)
    entries = data.get("keys") if isinstance(data, dict) else data
    if isinstance(data, dict) and set(data) != {"keys"}:
        raise ConfigError(f"{where} must hold one field, 'keys', listing the client keys")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where} must list at least one client key under 'keys'")
    keys = tuple(_client_key(entry, f"{where}, entry {i}") for i, entry in enumerate(entries, 1))
    for field_name, what in (("name", "name"), ("digest", "key")):
        values = [getattr(k, field_name) for k in keys]
        if len(set(values)) != len(values):
            raise ConfigError(f"{where} lists the same {what} twice")
    return keys


def _parse_keys_file(path: str, text: str, where: str):
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as exc:  # its message has a position, never the file's text
            raise ConfigError(f"{where} is not valid JSON: {exc}") from None
    import yaml  # only needed when there is a YAML keys file

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the position: the error's own text quotes the line, which may hold a key.
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{where} is not valid YAML{at}: {getattr(exc, 'problem', None) or 'syntax error'}"
        ) from None


def _client_key(entry, where: str) -> ClientKey:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping with name, key and limits")
    unknown = sorted(str(k) for k in entry if k not in _CLIENT_KEY_FIELDS)
    if unknown:
        raise ConfigError(
            f"{where} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(_CLIENT_KEY_FIELDS)}"
        )
    name = entry.get("name")
    if not isinstance(name, str) or not _CLIENT_KEY_NAME.match(name):
        raise ConfigError(
            f"{where}: 'name' must be 1-64 letters, digits or . _ @ - (it goes into usage records)"
        )
    where = f"{where} ({name})"
    key, hashed = entry.get("key"), entry.get("key_sha256")
    if (key is None) == (hashed is None):
        raise ConfigError(f"{where} must give exactly one of 'key' or 'key_sha256'")
    if key is not None:
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"{where}: 'key' must be a non-empty string (quote it in YAML)")
        digest = hashlib.sha256(key.strip().encode("utf-8", "surrogatepass")).digest()
    else:
        if not isinstance(hashed, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", hashed):
            raise ConfigError(f"{where}: 'key_sha256' must be the key's SHA-256 as 64 hex digits")
        digest = bytes.fromhex(hashed)
    models = entry.get("models")
    if models is not None:
        if isinstance(models, str):
            models = [models]
        if (
            not isinstance(models, list)
            or not models
            or not all(isinstance(m, str) and m.strip() for m in models)
        ):
            raise ConfigError(
                f"{where}: 'models' must be a list of model names or wildcards such as 'gemini-2.5-*'"
            )
        models = tuple(m.strip().removeprefix("models/") for m in models)
    limits = {}
    for limit in _CLIENT_KEY_FIELDS[4:]:
        value = entry.get(limit)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{where}: {limit!r} must be a whole number >= 1, or left out for no limit")
        limits[limit] = value
    return ClientKey(name=name, digest=digest, models=models, **limits)


def check_distinct(api_keys: tuple[str, ...], client_keys: tuple[ClientKey, ...]) -> None:
    """API_KEYS are named key-1, key-2...; a keys file may not reuse those names or keys."""
    flat = {f"key-{i}" for i in range(1, len(api_keys) + 1)}
    digests = {hashlib.sha256(k.encode("utf-8", "surrogatepass")).digest() for k in api_keys}
    for key in client_keys:
        if key.name in flat:
            raise ConfigError(f"CLIENT_KEYS_FILE names a key {key.name!r}, the name API_KEYS gives its keys")
        if key.digest in digests:
            raise ConfigError(f"CLIENT_KEYS_FILE key {key.name!r} is also listed in API_KEYS")
