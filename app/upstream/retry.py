"""Pure retry policy: whose fault an upstream answer is, what it rests (the key, a (key, model) pair), until when."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from enum import Enum
from zoneinfo import ZoneInfo

# Gemini's daily quotas reset at midnight Pacific time, whatever RetryInfo says.
PACIFIC = ZoneInfo("America/Los_Angeles")

# ErrorInfo reasons that say the key itself is refused, whatever the call: disable it, re-check later.
KEY_REASONS = frozenset(
    (
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED",
        "API_KEY_IOS_APP_BLOCKED",
        "SERVICE_DISABLED",
        "CONSUMER_SUSPENDED",
        "CONSUMER_INVALID",
        "BILLING_DISABLED",
    )
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")
_RETRY_IN = re.compile(r"[Pp]lease retry in (\d+(?:\.\d+)?)s")
# 2026 wording: "* Quota exceeded for metric: <metric>, limit: <n>, model: <model>"
_QUOTA_LINE = re.compile(r"Quota exceeded for metric: ([\w./-]+), limit: (\d+)(?:, model: ([\w.-]+))?")
_WORD = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# A 403 whose message names what was refused (a file, a cached content, a tuned model): the
# request's own resource, owned by another project or gone. Nothing about the key or the model.
_RESOURCE_403 = re.compile(
    r"permission to access the (File|CachedContent|TunedModel|Corpus|Document)|"
    r"CachedContent not found|File \S+ (was not found|does not exist)|or it may not exist",
    re.IGNORECASE,
)
# A 403 that is about the key although no ErrorInfo says so: no identity, or a key Google revoked.
_KEY_403 = re.compile(r"unregistered callers|reported as leaked", re.IGNORECASE)


class Fault(Enum):
    OK = "ok"
    CALLER = "caller"  # the request's own: the answer is passed on
    KEY = "key"  # the key is refused for every call
    QUOTA = "quota"  # a quota ran out: rest the key or the (key, model) pair, try another key at once
    TRANSIENT = "transient"  # Gemini's fault: try again (another key) after a backoff


class Scope(Enum):
    NONE = "none"
    KEY = "key"  # every call with the key
    MODEL = "model"  # the key's calls for one model: the (key, model) pair


class Rest(Enum):
    NONE = "none"
    DISABLE = "disable"  # out of rotation until `until`, then re-checked by one request
    COOL = "cool"  # out of rotation until `until`, then probed by one request
    SOFT = "soft"  # used only when no other key is available, until `until` or a success


@dataclass(frozen=True)
class Rules:
    """The operator's settings the policy applies."""

    cooldown: float = 60.0  # a 429 that says nothing about when to come back (KEY_COOLDOWN)
    max_cooldown: float = 3600.0  # the longest cooldown Gemini may ask for (KEY_COOLDOWN_MAX)
    recheck: float = 600.0  # a refused key or pair is tried again after this (KEY_RECHECK_INTERVAL)


@dataclass(frozen=True)
class Judgement:
    fault: Fault
    scope: Scope = Scope.NONE
    rest: Rest = Rest.NONE
    until: float = 0.0  # wall-clock seconds the rest lasts until
    another_key: bool = False  # worth trying the call on another key
    reason: str = ""  # short, built by the gateway: never upstream text, so never a key
    daily: bool = False  # a daily quota: rests until the next Pacific midnight

    @property
    def outcome(self) -> str:
        """The metrics' label for the attempt."""
        return _OUTCOMES[self.fault]


_OUTCOMES = {
    Fault.OK: "ok",
    Fault.CALLER: "client_error",
    Fault.KEY: "key_invalid",
    Fault.QUOTA: "rate_limited",
    Fault.TRANSIENT: "server_error",
}
OK = Judgement(Fault.OK)


@dataclass(frozen=True)
class Quota:
    """One quota Gemini says was exceeded (QuotaFailure violation, ErrorInfo metadata or message line)."""

    quota_id: str = ""
    metric: str = ""
    limit: int | None = None
    model: str | None = None

    @property
    def per_day(self) -> bool:
        return "PerDay" in self.quota_id

    @property
    def per_model(self) -> bool:
        return bool(self.model) or "PerModel" in self.quota_id

    @property
    def input_tokens(self) -> bool:
        return "InputTokens" in self.quota_id or "input_token" in self.metric

    @property
    def label(self) -> str:
        return self.quota_id or self.metric.rsplit("/", 1)[-1]


def judge(
    status: int,
    payload: object,
    headers: Mapping[str, str] | None = None,
    *,
    model: str | None,
    now: float,
    rules: Rules,
    prompt_tokens: Callable[[], int] | None = None,
) -> Judgement:
    """What one upstream answer means. `model` is the call's model (None for calls on no model),
    `prompt_tokens` a cheap estimate of the request's input tokens, asked for only when needed."""
    if status < 300:
        return OK
    if status < 400:
        return Judgement(Fault.TRANSIENT, another_key=True, reason=f"HTTP {status}")
    reason = error_reason(payload)
    label = f"HTTP {status} {reason or _status_word(payload)}".strip()
    if reason in KEY_REASONS or status == 401 or (status == 403 and _KEY_403.search(_message(payload))):
        return _disable(Scope.KEY, now + rules.recheck, label)
    if status == 429:
        return _quota(payload, headers, label, model=model, now=now, rules=rules, prompt_tokens=prompt_tokens)
    if status == 403:
        # Retried once on another key (another project may own what the request names), never
        # a reason to disable a key.
        if model is None or _RESOURCE_403.search(_message(payload)):
            return Judgement(Fault.CALLER, another_key=True, reason=label)
        # A bare "The caller does not have permission" on a model call: this key's project may not
        # use the model. The pair is used only when no other key is left, until a success clears it.
        return Judgement(
            Fault.CALLER,
            Scope.MODEL,
            Rest.SOFT,
            now + rules.recheck,
            another_key=True,
            reason=f"{label} for this model",
        )
    if status == 408 or status >= 500:
        return Judgement(Fault.TRANSIENT, another_key=True, reason=label)
    return Judgement(Fault.CALLER, reason=label)  # 400 without a key reason, 404, 409, 413...


def _quota(payload, headers, label, *, model, now, rules, prompt_tokens) -> Judgement:
    quotas = quotas_of(payload)
    # A quota that names no model is the project's, for every model: the key rests.
    project_wide = any(not q.per_model for q in quotas if q.quota_id)
    scope = Scope.MODEL if model is not None and not project_wide else Scope.KEY
    if any(q.limit == 0 for q in quotas):
        # The key's tier cannot use the model at all: "retry in 5 s" will never come true.
        return Judgement(
            Fault.QUOTA, scope, Rest.DISABLE, now + rules.recheck, another_key=True, reason=f"{label} limit 0"
        )
    daily = [q for q in quotas if q.per_day]
    if daily:
        return Judgement(
            Fault.QUOTA,
            scope,
            Rest.COOL,
            next_pacific_midnight(now),
            another_key=True,
            reason=f"{label} {daily[0].label}",
            daily=True,
        )
    token_limits = [q.limit for q in quotas if q.input_tokens and q.limit]
    only_tokens = token_limits and len(token_limits) == len(quotas) and prompt_tokens is not None
    if only_tokens and prompt_tokens() >= min(token_limits):
        # No key can take this prompt in a minute: the caller's, and no key is cooled for it.
        return Judgement(Fault.CALLER, reason=f"{label} prompt over the input tokens per minute")
    wait = retry_delay(payload, headers)
    wait = rules.cooldown if wait is None else min(wait, rules.max_cooldown)
    named = f" {quotas[0].label}" if quotas and quotas[0].label else ""
    return Judgement(Fault.QUOTA, scope, Rest.COOL, now + wait, another_key=True, reason=label + named)


def _disable(scope: Scope, until: float, reason: str) -> Judgement:
    return Judgement(Fault.KEY, scope, Rest.DISABLE, until, another_key=True, reason=reason)


def next_pacific_midnight(now: float) -> float:
    """The wall-clock seconds of the next midnight in Pacific time, daylight saving included."""
    today = datetime.fromtimestamp(now, PACIFIC).date()
    return datetime.combine(today + timedelta(days=1), clock_time(), tzinfo=PACIFIC).timestamp()


def quotas_of(payload: object) -> list[Quota]:
    """Every exceeded quota the answer names, from QuotaFailure, ErrorInfo metadata or the message."""
    found: list[Quota] = []
    for detail in _details(payload):
        kind = detail.get("@type", "")
        if kind.endswith("google.rpc.QuotaFailure"):
            for v in detail.get("violations") or ():
                if isinstance(v, dict):
                    dims = v.get("quotaDimensions")
                    model = dims.get("model") if isinstance(dims, dict) else None
                    found.append(
                        Quota(
                            _word(v.get("quotaId")),
                            _word(v.get("quotaMetric")),
                            _int(v.get("quotaValue")),
                            _word(model) or None,
                        )
                    )
        elif kind.endswith("google.rpc.ErrorInfo"):
            meta = detail.get("metadata")
            if isinstance(meta, dict) and ("quota_limit" in meta or "quota_metric" in meta):
                found.append(
                    Quota(
                        _word(meta.get("quota_limit")),
                        _word(meta.get("quota_metric")),
                        _int(meta.get("quota_limit_value")),
                    )
                )
    if not found:
        for metric, limit, model in _QUOTA_LINE.findall(_message(payload)):
            found.append(Quota(metric=metric, limit=int(limit), model=model or None))
    return found


def retry_delay(payload: object, headers: Mapping[str, str] | None = None) -> float | None:
    """Seconds Gemini asked us to wait: RetryInfo.retryDelay, a Retry-After header, or the message's
    "Please retry in 5.2s". Never negative, never infinite."""
    for detail in _details(payload):
        if detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return _finite(match.group(1))
    value = (headers or {}).get("Retry-After")
    if value:
        return _finite(value)
    match = _RETRY_IN.search(_message(payload))
    return _finite(match.group(1)) if match else None


def resource_refused(payload: object) -> bool:
    """Whether a 403 names the request's own resource as not there or not the key's (Gemini says the
    same for a file that expired, was deleted, or belongs to another project)."""
    return bool(_RESOURCE_403.search(_message(payload)))


def backoff(attempt: int, base: float, cap: float) -> float:
    """Capped exponential backoff with full jitter (attempt counts from 1)."""
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))


def error_reason(payload: object) -> str | None:
    """google.rpc.ErrorInfo.reason (an upper-case word), or API_KEY_INVALID read from the message."""
    for detail in _details(payload):
        if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
            reason = detail.get("reason")
            if isinstance(reason, str) and re.fullmatch(r"[A-Z0-9_]{1,64}", reason):
                return reason
    if _message(payload).startswith("API key not valid"):
        return "API_KEY_INVALID"
    return None


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None


def _status_word(payload: object) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    word = error.get("status") if isinstance(error, dict) else None
    return word if isinstance(word, str) and re.fullmatch(r"[A-Z_]{1,40}", word) else ""


def _message(payload: object) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


def _details(payload: object) -> list[dict]:
    error = payload.get("error") if isinstance(payload, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _word(value: object) -> str:
    """An identifier from an upstream body, or "" when it is not one (it may be kept in the store)."""
    return value if isinstance(value, str) and _WORD.match(value) else ""


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None
