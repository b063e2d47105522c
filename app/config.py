"""The gateway's settings, read once from the environment into a typed object."""
from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

SAFETY_THRESHOLDS = (
    "OFF",
    "BLOCK_NONE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_LOW_AND_ABOVE",
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
)
CLIENT_KEY_FILE = "client_api_key"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


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
    key_recheck: float = 600.0
    heartbeat_interval: float = 15.0
    safety_threshold: str = "OFF"
    https_proxy: str | None = None
    no_proxy: str | None = None
    pool_size: int = 1000
    # Requests
    max_request_bytes: int = 50 * 1024 * 1024
    models_cache_ttl: float = 60.0
    cors_origins: tuple[str, ...] = ("*",)
    # Where the API key came from when the gateway generated it
    generated_api_key: bool = field(default=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        """Build and validate the config; a bad value raises ConfigError naming the variable."""
        env = os.environ if env is None else env
        reader = _Reader(env)
        data_dir = Path(reader.text("DATA_DIR", "data"))
        api_keys = reader.key_list("API_KEYS")
        generated = False
        if not api_keys:
            api_keys = (load_or_create_client_key(data_dir),)
            generated = True
        base_url = reader.text("GEMINI_BASE_URL", cls.gemini_base_url).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"GEMINI_BASE_URL must be an http(s) URL, got {base_url!r}")
        threshold = reader.text("SAFETY_THRESHOLD", "OFF").upper()
        if threshold not in SAFETY_THRESHOLDS:
            raise ConfigError(
                f"SAFETY_THRESHOLD must be one of {', '.join(SAFETY_THRESHOLDS)}, got {threshold!r}"
            )
        proxy = env.get("HTTPS_PROXY") or env.get("https_proxy") or None
        no_proxy = env.get("NO_PROXY") or env.get("no_proxy") or None
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
            key_recheck=reader.number("KEY_RECHECK_INTERVAL", cls.key_recheck, minimum=0),
            heartbeat_interval=reader.number("HEARTBEAT_INTERVAL", cls.heartbeat_interval, minimum=0),
            safety_threshold=threshold,
            https_proxy=proxy,
            no_proxy=no_proxy,
            pool_size=reader.integer("UPSTREAM_POOL_SIZE", cls.pool_size, 1, 100000),
            max_request_bytes=reader.integer("MAX_REQUEST_BYTES", cls.max_request_bytes, 1024, 2**40),
            models_cache_ttl=reader.number("MODELS_CACHE_TTL", cls.models_cache_ttl, minimum=0),
            cors_origins=reader.origins("CORS_ORIGINS"),
            generated_api_key=generated,
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

    def origins(self, name: str) -> tuple[str, ...]:
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return ("*",)
        if raw.strip().lower() == "none":
            return ()
        origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(f"{name} must list origins such as https://chat.example.com, got {origin!r}")
        return origins

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


def load_or_create_client_key(data_dir: Path) -> str:
    """Return the gateway's generated client key, creating it once for every worker to share."""
    path = data_dir / CLIENT_KEY_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = "gg-" + secrets.token_urlsafe(32)
        # O_EXCL: when several workers start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"API_KEYS is unset and DATA_DIR {str(data_dir)!r} is not writable: {exc.strerror}")
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
    for _ in range(50):  # another worker may be between creating and writing the file
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)
    raise ConfigError(f"API_KEYS is unset and {path} is empty; delete it or set API_KEYS")
