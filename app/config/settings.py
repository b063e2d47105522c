"""The gateway's settings, read once from the environment into a typed object."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .client_keys import ClientKey, check_distinct, load_client_keys
from .errors import ConfigError
from .generated import load_or_create_admin_password, load_or_create_client_key, session_secret

SAFETY_THRESHOLDS = (
    "OFF",
    "BLOCK_NONE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_LOW_AND_ABOVE",
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
)
STREAMING_MODES = ("real", "fake")
# Where the CA certificates for Gemini's TLS come from, first set wins: the gateway's own variable, then
# requests' (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) and OpenSSL's (SSL_CERT_FILE, SSL_CERT_DIR).
CA_BUNDLE_VARIABLES = (
    "GEMINI_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
DIALECTS = ("gemini", "openai", "anthropic")


@dataclass(frozen=True)
class Config:
    api_keys: tuple[str, ...] = ()
    gemini_api_keys: tuple[str, ...] = ()
    gemini_base_url: str = "https://generativelanguage.googleapis.com"
    data_dir: Path = Path("data")
    # Upstream behaviour
    upstream_retries: int = 2
    connect_timeout: float = 10.0
    request_timeout: float = 600.0
    stream_idle_timeout: float = 300.0
    backoff_base: float = 0.25
    backoff_max: float = 4.0
    key_cooldown: float = 60.0
    key_cooldown_max: float = 3600.0  # the longest cooldown Gemini's RetryInfo or Retry-After may ask for
    key_recheck: float = 600.0
    model_fallbacks: tuple[tuple[str, ...], ...] = ()  # chains: when every key rests for a model, the next
    session_affinity_ttl: float = 3600.0  # how long a session hint remembers its key
    resource_affinity_ttl: float = 172800.0  # how long the key that holds a file or cache is remembered
    heartbeat_interval: float = 15.0
    safety_threshold: str = "OFF"
    https_proxy: str | None = None
    no_proxy: str | None = None
    # CA certificates trusted for Gemini's TLS (a file or a directory): GEMINI_CA_BUNDLE, or the variables
    # requests and OpenSSL read; None: requests' own bundle.
    ca_bundle: str | None = None
    pool_size: int = 4000  # connections to Gemini kept per worker: one per request it may serve at once
    # Requests. Gemini takes inline data up to 100 MB (base64, within the JSON): that plus room for
    # the rest of the request. Uploads go by stream, up to Gemini's largest file.
    max_request_bytes: int = 105 * 1024 * 1024
    max_upload_bytes: int = 2 * 1024 * 1024 * 1024
    media_urls: str = "pass"  # http(s) media URLs in OpenAI and Anthropic requests: "pass" or "fetch"
    request_body_timeout: float = 120.0  # seconds for a whole request body to arrive
    models_cache_ttl: float = 60.0
    cors_origins: tuple[str, ...] = ("*",)
    # Proxies whose X-Forwarded-For is believed (gunicorn's forwarded_allow_ips, the same variable)
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
    force_search: bool = False  # add Google Search to every generate call that has no functions
    model_aliases: tuple[tuple[str, str], ...] = ()  # (wildcard pattern, Gemini model), first match wins
    force_code: bool = False  # the same for code execution
    force_url_context: bool = False  # the same for URL context
    force_thinking: bool = False  # ask for thought summaries where the client said nothing about them
    force_dialects: tuple[str, ...] = DIALECTS  # the dialects the four force switches apply to
    # Streams: "real" streams Gemini's own stream; "fake" calls generateContent and streams the whole
    # answer, with heartbeats every fake_stream_heartbeat seconds while Gemini works.
    streaming_mode: str = "real"
    fake_stream_heartbeat: float = 5.0
    nonstream_keepalive: float = 0.0  # seconds between whitespace before a slow JSON answer; 0: off
    # Shared state (app/store): SQLite in data_dir, or Redis when redis_url is set
    redis_url: str | None = None
    redis_prefix: str = "gemgate:"
    redis_tls_no_verify: bool = False  # Heroku Redis: rediss:// with a self-signed certificate
    usage_retention_days: float = 90.0  # 0 keeps usage records forever
    responses_store_days: float = 30.0  # how long stored Responses API responses are kept; 0 stores none
    responses_store_bytes: int = 64 * 1024 * 1024  # per client key: its oldest stored responses go first
    client_keys: tuple[ClientKey, ...] = ()
    # Output tokens held against a client's token limits while a request that names no cap runs
    reserved_output_tokens: int = 8192
    # The operator's view (app/admin, app/metrics, app/logs). The admin page exists only with a
    # password; its sessions are signed with session_secret (SESSION_SECRET, or generated in data_dir).
    admin_password: str | None = field(default=None, repr=False)
    session_secret: bytes | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)  # None: /metrics needs no token
    request_log: str | None = "-"  # JSON request log: "-" for stdout, a file path, or None for none
    log_bodies: bool = False  # debug: request and response bodies in the request log, redacted
    # Where the API key and the admin password came from when the gateway generated them
    generated_api_key: bool = field(default=False, compare=False)
    generated_admin_password: bool = field(default=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build and validate the config; a bad value raises ConfigError naming the variable."""
        env = os.environ if env is None else env
        reader = _Reader(env)
        data_dir = Path(reader.text("DATA_DIR", "data"))
        api_keys = reader.key_list("API_KEYS")
        client_keys = load_client_keys(reader.text("CLIENT_KEYS_FILE", ""))
        generated = False
        if not api_keys and not client_keys:
            api_keys = (load_or_create_client_key(data_dir),)
            generated = True
        check_distinct(api_keys, client_keys)
        redis_url = reader.text("REDIS_URL", "") or None
        if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        base_url = reader.text("GEMINI_BASE_URL", cls.gemini_base_url).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"GEMINI_BASE_URL must be an http(s) URL, got {base_url!r}")
        threshold = reader.threshold("SAFETY_THRESHOLD")
        proxy = env.get("HTTPS_PROXY") or env.get("https_proxy") or None
        chosen = reader.text("ADMIN_PASSWORD", "")
        generated_admin = not chosen
        admin_password: str | None = chosen
        if generated_admin:
            admin_password = load_or_create_admin_password(data_dir)
        elif chosen.lower() == "off":
            admin_password = None
        elif len(chosen) < 8:
            raise ConfigError("ADMIN_PASSWORD must be at least 8 characters (or off, for no admin page)")
        request_log = reader.text("REQUEST_LOG", "-")
        no_proxy = env.get("NO_PROXY") or env.get("no_proxy") or None
        # A worker serves WORKER_CONNECTIONS requests at once (gunicorn.conf.py): a pool as large keeps a
        # connection for each, so no call opens (and no TLS handshake starts) one while others idle.
        worker_connections = reader.integer("WORKER_CONNECTIONS", cls.pool_size, 1, 100000)
        return cls(
            api_keys=api_keys,
            gemini_api_keys=reader.key_list("GEMINI_API_KEYS"),
            gemini_base_url=base_url,
            data_dir=data_dir,
            upstream_retries=reader.integer("UPSTREAM_RETRIES", cls.upstream_retries, 0, 20),
            connect_timeout=reader.number("UPSTREAM_CONNECT_TIMEOUT", cls.connect_timeout),
            request_timeout=reader.number("UPSTREAM_TIMEOUT", cls.request_timeout),
            stream_idle_timeout=reader.number("STREAM_IDLE_TIMEOUT", cls.stream_idle_timeout),
            backoff_base=reader.number("UPSTREAM_BACKOFF", cls.backoff_base, minimum=0),
            backoff_max=reader.number("UPSTREAM_BACKOFF_MAX", cls.backoff_max, minimum=0),
            key_cooldown=reader.number("KEY_COOLDOWN", cls.key_cooldown, minimum=0),
            key_cooldown_max=reader.number("KEY_COOLDOWN_MAX", cls.key_cooldown_max, minimum=1),
            key_recheck=reader.number("KEY_RECHECK_INTERVAL", cls.key_recheck, minimum=0),
            model_fallbacks=reader.chains("MODEL_FALLBACKS"),
            session_affinity_ttl=reader.number("SESSION_AFFINITY_TTL", cls.session_affinity_ttl, minimum=0),
            resource_affinity_ttl=reader.number(
                "RESOURCE_AFFINITY_TTL", cls.resource_affinity_ttl, minimum=0
            ),
            heartbeat_interval=reader.number("HEARTBEAT_INTERVAL", cls.heartbeat_interval, minimum=0),
            safety_threshold=threshold,
            https_proxy=proxy,
            no_proxy=no_proxy,
            ca_bundle=reader.ca_bundle(CA_BUNDLE_VARIABLES),
            pool_size=reader.integer("UPSTREAM_POOL_SIZE", worker_connections, 1, 100000),
            max_request_bytes=reader.integer("MAX_REQUEST_BYTES", cls.max_request_bytes, 1024, 2**40),
            max_upload_bytes=reader.integer("MAX_UPLOAD_BYTES", cls.max_upload_bytes, 1024, 2**44),
            media_urls=reader.choice("MEDIA_URLS", cls.media_urls, ("pass", "fetch")),
            request_body_timeout=reader.number("REQUEST_BODY_TIMEOUT", cls.request_body_timeout),
            models_cache_ttl=reader.number("MODELS_CACHE_TTL", cls.models_cache_ttl, minimum=0),
            cors_origins=reader.origins("CORS_ORIGINS"),
            forwarded_allow_ips=reader.networks("FORWARDED_ALLOW_IPS", cls.forwarded_allow_ips),
            force_search=reader.flag("FORCE_GOOGLE_SEARCH"),
            model_aliases=reader.aliases("MODEL_ALIASES"),
            force_code=reader.flag("FORCE_CODE_EXECUTION"),
            force_url_context=reader.flag("FORCE_URL_CONTEXT"),
            force_thinking=reader.flag("FORCE_THINKING"),
            force_dialects=reader.dialects("FORCE_DIALECTS"),
            streaming_mode=reader.choice("STREAMING_MODE", cls.streaming_mode, STREAMING_MODES),
            fake_stream_heartbeat=reader.number("FAKE_STREAM_HEARTBEAT", cls.fake_stream_heartbeat, 0.05),
            nonstream_keepalive=reader.seconds_or_off("NONSTREAM_KEEPALIVE"),
            redis_url=redis_url,
            redis_prefix=reader.text("REDIS_PREFIX", cls.redis_prefix),
            redis_tls_no_verify=reader.flag("REDIS_TLS_NO_VERIFY"),
            usage_retention_days=reader.number("USAGE_RETENTION_DAYS", cls.usage_retention_days, minimum=0),
            responses_store_days=reader.number("RESPONSES_STORE_DAYS", cls.responses_store_days, minimum=0),
            responses_store_bytes=reader.integer(
                "RESPONSES_STORE_BYTES", cls.responses_store_bytes, 1024, 2**40
            ),
            client_keys=client_keys,
            reserved_output_tokens=reader.integer(
                "RESERVED_OUTPUT_TOKENS", cls.reserved_output_tokens, 0, 10_000_000
            ),
            admin_password=admin_password,
            session_secret=session_secret(reader.text("SESSION_SECRET", ""), data_dir)
            if admin_password
            else None,
            metrics_token=reader.text("METRICS_TOKEN", "") or None,
            request_log=None if request_log.lower() in ("off", "none") else request_log,
            log_bodies=reader.flag("LOG_BODIES"),
            generated_api_key=generated,
            generated_admin_password=generated_admin and admin_password is not None,
        )

    @property
    def upstream_configured(self) -> bool:
        return bool(self.gemini_api_keys)


class _Reader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def text(self, name: str, default: str) -> str:
        value = self.env.get(name, "").strip()
        return value or default

    def key_list(self, name: str) -> tuple[str, ...]:
        raw = self.env.get(name, "")
        keys = tuple(k.strip() for k in raw.split(",") if k.strip())
        if len(set(keys)) != len(keys):
            raise ConfigError(f"{name} lists the same key twice")
        return keys

    def ca_bundle(self, names: tuple[str, ...]) -> str | None:
        """The first of `names` that is set: a CA bundle file or a directory of certificates that exists."""
        for name in names:
            value = self.text(name, "")
            if not value:
                continue
            if not os.path.exists(value):
                raise ConfigError(f"{name} names a CA bundle that does not exist: {value!r}")
            if not (os.path.isdir(value) or os.access(value, os.R_OK)):
                raise ConfigError(f"{name} names a CA bundle the gateway cannot read: {value!r}")
            return value
        return None

    def aliases(self, name: str) -> tuple[tuple[str, str], ...]:
        pairs = []
        for entry in filter(None, (e.strip() for e in self.env.get(name, "").split(","))):
            pattern, sep, target = (part.strip() for part in entry.partition("="))
            if not sep or not pattern or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]*", target):
                raise ConfigError(f"{name} entries look like claude-*=gemini-2.5-pro, got {entry!r}")
            pairs.append((pattern, target))
        return tuple(pairs)

    def threshold(self, name: str) -> str:
        value = self.text(name, "OFF").upper()
        if value not in SAFETY_THRESHOLDS:
            raise ConfigError(f"{name} must be one of {', '.join(SAFETY_THRESHOLDS)}, got {value!r}")
        return value

    def dialects(self, name: str) -> tuple[str, ...]:
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return DIALECTS
        if raw.strip().lower() == "none":
            return ()
        chosen = tuple(d.strip().lower() for d in raw.split(",") if d.strip())
        for dialect in chosen:
            if dialect not in DIALECTS:
                raise ConfigError(
                    f"{name} lists dialects among {', '.join(DIALECTS)} (or none), got {dialect!r}"
                )
        return tuple(d for d in DIALECTS if d in chosen)

    def seconds_or_off(self, name: str) -> float:
        """A number of seconds, where 0, off or unset switch the feature off."""
        raw = self.env.get(name, "").strip().lower()
        if raw in ("", "0", "off", "false", "no"):
            return 0.0
        return self.number(name, 0.0, minimum=0.05)

    def chains(self, name: str) -> tuple[tuple[str, ...], ...]:
        chains = []
        for entry in filter(None, (e.strip() for e in self.env.get(name, "").split(","))):
            chain = tuple(model.strip().removeprefix("models/") for model in entry.split(">"))
            if len(chain) < 2 or not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]*", m) for m in chain):
                raise ConfigError(
                    f"{name} entries look like gemini-2.5-pro>gemini-2.5-flash (two or more models), got {entry!r}"
                )
            if len(set(chain)) != len(chain):
                raise ConfigError(f"{name} names a model twice in one chain: {entry!r}")
            chains.append(chain)
        return tuple(chains)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def flag(self, name: str) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if raw in ("", "0", "false", "no", "off"):
            return False
        if raw in ("1", "true", "yes", "on"):
            return True
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def origins(self, name: str) -> tuple[str, ...]:
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return ("*",)
        if raw.strip().lower() == "none":
            return ()
        origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(
                    f"{name} must list origins such as https://chat.example.com, got {origin!r}"
                )
        return origins

    def networks(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        entries = tuple(e.strip() for e in raw.split(",") if e.strip())
        for entry in entries:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"{name} must list addresses or networks (or *), got {entry!r}") from None
        return entries

    def number(self, name: str, default: float, minimum: float = 0.001) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
        if not value >= minimum or value == float("inf"):
            raise ConfigError(f"{name} must be a finite number >= {minimum}, got {raw!r}")
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value


# The settings the admin page can change while the gateway runs: variable -> (Config field, how it is
# read). The environment gives their first values; changes live in the shared store (app.config.runtime).
RUNTIME_SETTINGS: dict[str, tuple[str, Callable[[_Reader, str], object]]] = {
    "STREAMING_MODE": ("streaming_mode", lambda r, n: r.choice(n, "real", STREAMING_MODES)),
    "FORCE_GOOGLE_SEARCH": ("force_search", lambda r, n: r.flag(n)),
    "FORCE_CODE_EXECUTION": ("force_code", lambda r, n: r.flag(n)),
    "FORCE_URL_CONTEXT": ("force_url_context", lambda r, n: r.flag(n)),
    "FORCE_THINKING": ("force_thinking", lambda r, n: r.flag(n)),
    "SAFETY_THRESHOLD": ("safety_threshold", lambda r, n: r.threshold(n)),
    "HEARTBEAT_INTERVAL": ("heartbeat_interval", lambda r, n: r.number(n, 15.0, minimum=0)),
    "FAKE_STREAM_HEARTBEAT": ("fake_stream_heartbeat", lambda r, n: r.number(n, 5.0, 0.05)),
    "LOG_BODIES": ("log_bodies", lambda r, n: r.flag(n)),
}


def read_runtime_setting(name: str, raw: str) -> object:
    """A runtime setting's value from its text, as the environment would give it; ConfigError if bad."""
    _, read = RUNTIME_SETTINGS[name]
    if not raw.strip():
        raise ConfigError(f"{name} needs a value")
    return read(_Reader({name: raw}), name)
