"""What the admin page shows, as plain data: usage summaries, the masked settings, and the key actions."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import requests

from .. import jsonx
from ..config import SAFETY_THRESHOLDS, STREAMING_MODES, Config
from ..config.runtime import LiveSettings, env_text
from ..config.settings import RUNTIME_SETTINGS, read_runtime_setting
from ..upstream.key_pool import KeyPool, KeyState, UpstreamKey
from ..upstream.retry import Fault, Rules, judge

WINDOWS = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
DEFAULT_WINDOW = "24h"
BUCKETS = 48  # bars per chart
TOP = 8  # series per chart; the rest are summed as "other"
LATEST = 50  # rows in the latest-requests table
MAX_ROWS = 200_000  # usage rows read for one page view, at most
STATUS_FILTERS = {
    "2xx": (200, 300),
    "4xx": (400, 500),
    "429": (429, 430),
    "5xx": (500, 600),
    "errors": (400, 600),
}
DIALECTS = ("gemini", "openai", "anthropic")
OPERATOR_DISABLED = "disabled by the operator"
_FOREVER = 10 * 365 * 86400
RECHECK_TIMEOUT = 15.0


# -- usage ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    client: str = ""
    model: str = ""
    dialect: str = ""
    status: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Filters:
        status = args.get("status", "")
        dialect = args.get("dialect", "")
        return cls(
            client=args.get("client", "").strip()[:64],
            model=args.get("model", "").strip()[:128],
            dialect=dialect if dialect in DIALECTS else "",
            status=status if status in STATUS_FILTERS else "",
        )

    def matches(self, row: dict) -> bool:
        # The client is filtered by the store query itself.
        if self.model and row.get("model") != self.model:
            return False
        if self.dialect and row.get("dialect") != self.dialect:
            return False
        if self.status:
            low, high = STATUS_FILTERS[self.status]
            if not low <= (row.get("status") or 0) < high:
                return False
        return True


def summarize(rows: Iterable[dict], since: float, until: float, filters: Filters) -> dict:
    """Charts of requests and tokens over time per model and per client, and the latest requests."""
    step = (until - since) / BUCKETS
    series: dict[str, dict[str, list[int]]] = {
        name: {} for name in ("model_requests", "model_tokens", "client_requests", "client_tokens")
    }
    latest: deque = deque(maxlen=LATEST)
    models: set[str] = set()
    totals: Counter[str] = Counter()
    scanned = 0
    truncated = False
    for row in rows:
        scanned += 1
        if scanned > MAX_ROWS:
            truncated = True
            break
        if row.get("model"):
            models.add(row["model"])
        if not filters.matches(row):
            continue
        i = min(BUCKETS - 1, max(0, int((row["time"] - since) // step)))
        tokens = (
            (row.get("prompt_tokens") or 0)
            + (row.get("completion_tokens") or 0)
            + (row.get("thought_tokens") or 0)
        )
        model, client = row.get("model") or "(none)", row.get("client") or "(none)"
        for chart, name, amount in (
            ("model_requests", model, 1),
            ("model_tokens", model, tokens),
            ("client_requests", client, 1),
            ("client_tokens", client, tokens),
        ):
            if amount:
                series[chart].setdefault(name, [0] * BUCKETS)[i] += amount
        totals["requests"] += 1
        totals["tokens"] += tokens
        totals["errors"] += (row.get("status") or 0) >= 400 or bool(row.get("error"))
        latest.append(row)
    return {
        "charts": {name: _top(values) for name, values in series.items()},
        "start": since,
        "step": step,
        "count": BUCKETS,
        "latest": list(reversed(latest)),
        "models": sorted(models),
        "totals": dict(requests=totals["requests"], tokens=totals["tokens"], errors=totals["errors"]),
        "truncated": truncated,
    }


def _top(by_name: dict[str, list[int]]) -> list[dict]:
    ranked = sorted(by_name.items(), key=lambda item: (-sum(item[1]), item[0]))
    out = [{"name": name, "values": values} for name, values in ranked[:TOP]]
    rest = ranked[TOP:]
    if rest:
        out.append(
            {"name": "other", "values": [sum(values[i] for _, values in rest) for i in range(BUCKETS)]}
        )
    return out


# -- settings ---------------------------------------------------------------------------------

# The variable each Config field comes from. A field not listed is shown by its name.
ENV_NAMES = {
    "api_keys": "API_KEYS",
    "gemini_api_keys": "GEMINI_API_KEYS",
    "gemini_base_url": "GEMINI_BASE_URL",
    "data_dir": "DATA_DIR",
    "upstream_retries": "UPSTREAM_RETRIES",
    "connect_timeout": "UPSTREAM_CONNECT_TIMEOUT",
    "request_timeout": "UPSTREAM_TIMEOUT",
    "stream_idle_timeout": "STREAM_IDLE_TIMEOUT",
    "backoff_base": "UPSTREAM_BACKOFF",
    "backoff_max": "UPSTREAM_BACKOFF_MAX",
    "key_cooldown": "KEY_COOLDOWN",
    "key_cooldown_max": "KEY_COOLDOWN_MAX",
    "key_recheck": "KEY_RECHECK_INTERVAL",
    "model_fallbacks": "MODEL_FALLBACKS",
    "session_affinity_ttl": "SESSION_AFFINITY_TTL",
    "resource_affinity_ttl": "RESOURCE_AFFINITY_TTL",
    "heartbeat_interval": "HEARTBEAT_INTERVAL",
    "safety_threshold": "SAFETY_THRESHOLD",
    "https_proxy": "HTTPS_PROXY",
    "no_proxy": "NO_PROXY",
    "ca_bundle": "GEMINI_CA_BUNDLE",
    "pool_size": "UPSTREAM_POOL_SIZE",
    "max_request_bytes": "MAX_REQUEST_BYTES",
    "max_upload_bytes": "MAX_UPLOAD_BYTES",
    "media_urls": "MEDIA_URLS",
    "request_body_timeout": "REQUEST_BODY_TIMEOUT",
    "models_cache_ttl": "MODELS_CACHE_TTL",
    "cors_origins": "CORS_ORIGINS",
    "forwarded_allow_ips": "FORWARDED_ALLOW_IPS",
    "force_search": "FORCE_GOOGLE_SEARCH",
    "force_code": "FORCE_CODE_EXECUTION",
    "force_url_context": "FORCE_URL_CONTEXT",
    "force_thinking": "FORCE_THINKING",
    "force_dialects": "FORCE_DIALECTS",
    "streaming_mode": "STREAMING_MODE",
    "fake_stream_heartbeat": "FAKE_STREAM_HEARTBEAT",
    "nonstream_keepalive": "NONSTREAM_KEEPALIVE",
    "model_aliases": "MODEL_ALIASES",
    "redis_url": "REDIS_URL",
    "redis_prefix": "REDIS_PREFIX",
    "redis_tls_no_verify": "REDIS_TLS_NO_VERIFY",
    "usage_retention_days": "USAGE_RETENTION_DAYS",
    "responses_store_days": "RESPONSES_STORE_DAYS",
    "responses_store_bytes": "RESPONSES_STORE_BYTES",
    "client_keys": "CLIENT_KEYS_FILE",
    "reserved_output_tokens": "RESERVED_OUTPUT_TOKENS",
    "admin_password": "ADMIN_PASSWORD",
    "session_secret": "SESSION_SECRET",
    "metrics_token": "METRICS_TOKEN",
    "request_log": "REQUEST_LOG",
    "log_bodies": "LOG_BODIES",
}
# Text settings that never hold a secret, shown as they are. Any other text is masked.
PLAIN_TEXT = frozenset(
    (
        "data_dir",
        "safety_threshold",
        "no_proxy",
        "ca_bundle",
        "redis_prefix",
        "request_log",
        "cors_origins",
        "streaming_mode",
        "force_dialects",
        "forwarded_allow_ips",
        "media_urls",
    )
)
URLS = frozenset(("gemini_base_url", "https_proxy", "redis_url"))  # shown without credentials or query
_HIDDEN = frozenset(("generated_api_key", "generated_admin_password"))  # folded into their settings


def describe_config(config: Config) -> list[tuple[str, str]]:
    """(variable, value) for every setting, secrets masked: no key, password, token or URL credential."""
    out = []
    for f in dataclasses.fields(config):
        if f.name in _HIDDEN:
            continue
        value = getattr(config, f.name)
        out.append((ENV_NAMES.get(f.name, f.name), _describe(config, f.name, value)))
    return out


def _describe(config: Config, name: str, value) -> str:
    if name == "api_keys":
        shown = _labels(len(value))
        return f"{shown} (generated, kept in DATA_DIR)" if config.generated_api_key else shown
    if name == "gemini_api_keys":
        return _labels(len(value))
    if name == "admin_password" and config.generated_admin_password:
        return "generated, kept in DATA_DIR/admin_password"
    if name == "nonstream_keepalive" and not value:
        return "off"
    if name == "client_keys":
        return "; ".join(_client_key(k) for k in value) or "none"
    if name == "model_aliases":
        return ", ".join(f"{pattern}={target}" for pattern, target in value) or "none"
    if name == "model_fallbacks":
        return ", ".join(">".join(chain) for chain in value) or "none"
    if name in URLS:
        return _mask_url(value) if value else "not set"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if name == "request_log" and value == "-":
        return "- (standard output)"
    if name == "ca_bundle" and value is None:
        return "not set (requests' own bundle)"
    if name in PLAIN_TEXT:
        if isinstance(value, tuple):
            return ", ".join(value) or "none"
        return "not set" if value is None else str(value)
    return "set (hidden)" if value else "not set"


def _labels(count: int) -> str:
    if not count:
        return "none"
    return f"{count} key{'s' if count > 1 else ''}: " + ", ".join(f"key-{i}" for i in range(1, count + 1))


def _client_key(key) -> str:
    limits = [
        f"{v} {what}"
        for v, what in (
            (key.requests_per_minute, "requests/min"),
            (key.tokens_per_minute, "tokens/min"),
            (key.tokens_per_day, "tokens/day"),
            (key.concurrent_requests, "at once"),
        )
        if v
    ]
    if key.models is not None:
        limits.append("models " + ", ".join(key.models))
    return key.name + (f" ({'; '.join(limits)})" if limits else "")


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = ("****@" if parts.username or parts.password else "") + host + (f":{port}" if port else "")
    return f"{parts.scheme}://{netloc}{parts.path}" + ("?…" if parts.query else "")


# -- runtime settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeField:
    name: str  # the variable
    label: str
    kind: str  # "choice", "flag" or "seconds"
    choices: tuple[str, ...] = ()


RUNTIME_FORM = (
    RuntimeField("STREAMING_MODE", "Streaming mode", "choice", STREAMING_MODES),
    RuntimeField("FORCE_GOOGLE_SEARCH", "Force Google Search", "flag"),
    RuntimeField("FORCE_CODE_EXECUTION", "Force code execution", "flag"),
    RuntimeField("FORCE_URL_CONTEXT", "Force URL context", "flag"),
    RuntimeField("FORCE_THINKING", "Force thought summaries", "flag"),
    RuntimeField("SAFETY_THRESHOLD", "Default safety threshold", "choice", SAFETY_THRESHOLDS),
    RuntimeField("HEARTBEAT_INTERVAL", "Stream heartbeat, seconds (0: none)", "seconds"),
    RuntimeField("FAKE_STREAM_HEARTBEAT", "Fake stream heartbeat, seconds", "seconds"),
    RuntimeField("LOG_BODIES", "Log request and answer bodies", "flag"),
)


def runtime_view(live: LiveSettings) -> list[dict]:
    """Each runtime setting as the form shows it: its value now, the environment's, whether it changed."""
    current, overrides = live.fresh(), live.overrides()
    return [
        {
            "field": f,
            "value": env_text(current, f.name),
            "environment": env_text(live.base, f.name),
            "changed": f.name in overrides,
        }
        for f in RUNTIME_FORM
    ]


def runtime_changes(live: LiveSettings, form: Mapping[str, str]) -> dict[str, str | None]:
    """What a submitted form changes: a value back at the environment's forgets the stored change
    (None); any other new value is stored as typed. ConfigError names the first bad value."""
    current, overrides = live.current(), live.overrides()
    changes: dict[str, str | None] = {}
    for f in RUNTIME_FORM:
        raw = ("true" if form.get(f.name) else "false") if f.kind == "flag" else form.get(f.name, "").strip()
        value = read_runtime_setting(f.name, raw)
        attribute = RUNTIME_SETTINGS[f.name][0]
        if value == getattr(live.base, attribute):
            if f.name in overrides:
                changes[f.name] = None
        elif value != getattr(current, attribute):
            changes[f.name] = raw
    return changes


# -- key actions --------------------------------------------------------------------------------


def find_key(pool: KeyPool, label: str) -> UpstreamKey | None:
    return next((key for key in pool.keys if key.label == label), None)


def disable(pool: KeyPool, key: UpstreamKey) -> None:
    """Take the key out of rotation until the operator enables it again."""
    until = pool.clock() + _FOREVER
    pool.store.update_key_state(
        key.id, lambda state: replace(state, disabled_until=until, last_error=OPERATOR_DISABLED)
    )


def enable(pool: KeyPool, key: UpstreamKey) -> None:
    """Back in rotation at once, for every model: no cooldown, no disable, no failure count."""
    pairs = [state_id for state_id in pool.store.key_states() if state_id.startswith(key.id + "/")]
    for state_id in (key.id, *pairs):
        pool.store.update_key_state(state_id, lambda state: KeyState())


def recheck(pool: KeyPool, session: requests.Session, config: Config, key: UpstreamKey) -> str:
    """One cheap real call with this key (a one-model page of the model list); its state follows
    the answer as it would for an API call. Returns what happened, for the operator."""
    started = time.perf_counter()
    try:
        response = session.get(
            f"{config.gemini_base_url}/v1beta/models",
            params={"pageSize": "1"},
            headers={"x-goog-api-key": key.secret},
            timeout=(config.connect_timeout, RECHECK_TIMEOUT),
        )
    except requests.Timeout:
        pool.failed(key, "timeout")
        return f"{key.label}: Gemini did not answer within {RECHECK_TIMEOUT:g} s."
    except requests.RequestException:
        pool.failed(key, "connection error")
        return f"{key.label}: could not reach Gemini."
    ms = (time.perf_counter() - started) * 1000
    with response:
        status = response.status_code
        payload = _payload(response) if status >= 400 else None
    if status < 400:
        pool.succeeded(key)
        enable(pool, key)
        return f"{key.label}: healthy (HTTP {status} in {ms:.0f} ms)."
    rules = Rules(
        cooldown=config.key_cooldown, max_cooldown=config.key_cooldown_max, recheck=config.key_recheck
    )
    judgement = judge(status, payload, response.headers, model=None, now=pool.clock(), rules=rules)
    reason = judgement.reason
    if judgement.fault is Fault.QUOTA:
        pool.judged(key, None, judgement)
        return f"{key.label}: rate limited ({reason}); cooling down."
    if judgement.fault is Fault.KEY:
        pool.judged(key, None, judgement)
        return f"{key.label}: rejected by Gemini ({reason}); disabled until the next automatic re-check."
    pool.failed(key, reason)
    return f"{key.label}: Gemini answered {reason}; the key keeps its state."


def _payload(response: requests.Response):
    try:
        payload = jsonx.loads(response.content[: 1 << 16])
    except (jsonx.JSONDecodeError, requests.RequestException):
        return None
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        payload = payload[0]
    return payload if isinstance(payload, dict) else None
