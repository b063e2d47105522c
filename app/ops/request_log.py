"""The request log: one JSON line per request, without secrets, and bodies only when debugging (redacted)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime

from .. import jsonx

# Field names whose values are credentials wherever they appear in a body.
SECRET_NAMES = frozenset(
    (
        "key",
        "api_key",
        "apikey",
        "x-api-key",
        "x-goog-api-key",
        "authorization",
        "password",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
    )
)
BODY_LIMIT = 64 * 1024  # bytes of a body looked at; the rest is not logged
STRING_LIMIT = 2000  # characters of one string kept
_BASE64_MIN = 120
_BASE64 = re.compile(r"^[A-Za-z0-9+/_\-\s]+=*$")
_DATA_URL = re.compile(r"^data:[^,;]{0,100}(;[^,;]{0,100})*;base64,", re.IGNORECASE)


class RequestLog:
    """Writes each line with one `write` on a file descriptor: every gunicorn worker appends
    to the same stdout or file, and a line shorter than a pipe's buffer is never interleaved."""

    def __init__(
        self, target: str | None, bodies: bool = False, scrub: Callable[[bytes], bytes] | None = None
    ):
        self.enabled = target is not None
        self.bodies = bodies and self.enabled
        self.scrub = scrub or (lambda data: data)
        self._fd = None
        if target == "-":
            self._fd = 1
        elif target is not None:
            self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def write(self, entry: dict) -> None:
        if self._fd is None:
            return
        data = jsonx.dumps(entry) + b"\n"
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError:
            pass  # a full disk or a closed stdout must not fail the request

    def record(self, rec) -> None:
        """The line for an API request (an accounting.RequestRecord), written when it ends."""
        if self._fd is None:
            return
        entry = {
            "time": iso(rec.started),
            "request_id": rec.request_id,
            "method": rec.method,
            "path": rec.endpoint,
            "route": rec.route,
            "dialect": rec.dialect,
            "client": rec.client,
            "model": rec.model,
            "stream": rec.stream,
            "status": rec.status,
            "prompt_tokens": rec.prompt_tokens,
            "completion_tokens": rec.completion_tokens,
            "thought_tokens": rec.thought_tokens,
            "first_byte_ms": _ms(rec.first_byte_ms),
            "total_ms": _ms(rec.total_ms),
            "overhead_ms": _ms(rec.overhead_ms),
            "upstream_ms": _ms(rec.upstream_ms),
            "attempts": rec.attempts,
            "key_label": rec.key_label,
            "served_model": rec.served_model,
            "error": rec.error,
        }
        bodies = getattr(rec, "bodies", None)
        if bodies:
            entry.update(bodies)
        self.write(entry)

    def other(
        self,
        started: float,
        request_id: str,
        method: str,
        path: str,
        status: int,
        total_ms: float,
        overhead_ms: float,
    ) -> None:
        """The line for a request outside the API (health, metrics, admin, preflights): no query string."""
        if self._fd is None:
            return
        self.write(
            {
                "time": iso(started),
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "total_ms": _ms(total_ms),
                "overhead_ms": _ms(overhead_ms),
            }
        )

    def redacted(self, raw: bytes) -> object:
        """A body for the debug log: JSON with credentials, base64 data and long strings cut out."""
        if not raw:
            return None
        size = len(raw)
        raw = self.scrub(raw[:BODY_LIMIT])
        if size > BODY_LIMIT:
            return {"omitted": f"{size} bytes, over the {BODY_LIMIT}-byte debug limit"}
        try:
            data = jsonx.loads(raw)
        except jsonx.JSONDecodeError:
            return {"omitted": f"{size} bytes, not JSON"}
        return _redact(data)


def _redact(value):
    if isinstance(value, dict):
        return {
            k: "[redacted]" if isinstance(k, str) and k.lower() in SECRET_NAMES else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, str):
        if _DATA_URL.match(value):
            return f"[data URL, {len(value)} characters]"
        if len(value) >= _BASE64_MIN and " " not in value and _BASE64.match(value):
            return f"[base64, {len(value)} characters]"
        if len(value) > STRING_LIMIT:
            return value[:STRING_LIMIT] + f"... [{len(value) - STRING_LIMIT} more characters]"
    return value


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
