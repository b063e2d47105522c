"""Pure retry policy: what an upstream answer means for the key and for the request."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from enum import Enum

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")


class Verdict(Enum):
    OK = "ok"
    CALLER = "caller"  # the request itself is wrong: pass the answer on, no retry, no penalty
    KEY_INVALID = "key_invalid"  # disable the key, try another at once
    RATE_LIMITED = "rate_limited"  # cool the key down, try another at once
    TRANSIENT = "transient"  # Gemini's fault: try again (another key) after a backoff


def classify(status: int, payload: object) -> Verdict:
    if status < 300:
        return Verdict.OK
    if status < 400:
        return Verdict.TRANSIENT  # Gemini does not redirect: a proxy or outage page does
    if status == 429:
        return Verdict.RATE_LIMITED
    if status in (401, 403):
        return Verdict.KEY_INVALID
    if status == 400 and _reason(payload) == "API_KEY_INVALID":
        return Verdict.KEY_INVALID
    if status == 408 or status >= 500:
        return Verdict.TRANSIENT
    return Verdict.CALLER


def retry_delay(payload: object, headers: Mapping[str, str] | None = None) -> float | None:
    """Seconds Gemini asked us to wait: RetryInfo.retryDelay, else a Retry-After header."""
    for detail in _details(payload):
        if detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    value = (headers or {}).get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    return None


def backoff(attempt: int, base: float, cap: float) -> float:
    """Capped exponential backoff with full jitter (attempt counts from 1)."""
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))


def _details(payload: object) -> list[dict]:
    error = payload.get("error") if isinstance(payload, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _reason(payload: object) -> str | None:
    for detail in _details(payload):
        if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
            return detail.get("reason")
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message", "") if isinstance(error, dict) else ""
    if isinstance(message, str) and message.startswith("API key not valid"):
        return "API_KEY_INVALID"
    return None
