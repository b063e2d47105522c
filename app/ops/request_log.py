"""The request log: one JSON line per request, without secrets, and bodies only when debugging (redacted)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .. import jsonx
from ..budget import LOG_BODY_BYTES, LOG_STRING_CHARS, MAX_JSON_DEPTH

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
BODY_LIMIT = LOG_BODY_BYTES  # bytes of a body looked at; the rest is not logged
STRING_LIMIT = LOG_STRING_CHARS  # characters of one string kept
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
        self.worker = os.getpid()  # each gunicorn worker builds its own app, and log
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
            "worker": self.worker,
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
    """`value` with credentials, base64 data and long strings cut out. Iterative, so any nesting is safe;
    containers deeper than MAX_JSON_DEPTH are summarised, so the log line can always be written."""
    root: list = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]  # (node, container, slot in it, depth)
    while stack:
        node, holder, slot, depth = stack.pop()
        if isinstance(node, (dict, list)) and depth > MAX_JSON_DEPTH:
            holder[slot] = f"[nested more than {MAX_JSON_DEPTH} levels deep]"
        elif isinstance(node, dict):
            out: dict = {}
            holder[slot] = out
            for k, v in node.items():
                secret = isinstance(k, str) and k.lower() in SECRET_NAMES
                out[k] = "[redacted]" if secret else None  # set now, so the keys keep their order
                if not secret:
                    stack.append((v, out, k, depth + 1))
        elif isinstance(node, list):
            items: list = [None] * len(node)
            holder[slot] = items
            stack.extend((v, items, i, depth + 1) for i, v in enumerate(node))
        else:
            holder[slot] = _redact_scalar(node)
    return root[0]


def _redact_scalar(value):
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
