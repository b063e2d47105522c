"""Secrets the gateway generates once and keeps in DATA_DIR, so every worker and restart agree."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from .errors import ConfigError

CLIENT_KEY_FILE = "client_api_key"
SESSION_SECRET_FILE = "admin_session_secret"
ADMIN_PASSWORD_FILE = "admin_password"


def load_or_create_client_key(data_dir: Path) -> str:
    """Return the gateway's generated client key, creating it once for every worker to share."""
    return _load_or_create(data_dir, CLIENT_KEY_FILE, "gg-" + secrets.token_urlsafe(32), "API_KEYS")


def load_or_create_admin_password(data_dir: Path) -> str:
    """Return the generated admin password, creating it once: a fresh start has a reachable admin page."""
    return _load_or_create(data_dir, ADMIN_PASSWORD_FILE, secrets.token_urlsafe(18), "ADMIN_PASSWORD")


def session_secret(configured: str, data_dir: Path) -> bytes:
    """SESSION_SECRET, or a random one kept in DATA_DIR: every worker on the host signs alike."""
    if configured:
        if len(configured) < 16:
            raise ConfigError("SESSION_SECRET must be at least 16 characters (e.g. openssl rand -hex 32)")
        return configured.encode()
    return _load_or_create(data_dir, SESSION_SECRET_FILE, secrets.token_hex(32), "SESSION_SECRET").encode()


def _load_or_create(data_dir: Path, name: str, key: str, setting: str) -> str:
    """The secret in DATA_DIR/name, written as `key` by whichever worker gets there first."""
    path = data_dir / name
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: when several workers start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if not data_dir.is_dir():
            raise ConfigError(
                f"{setting} is unset and DATA_DIR {str(data_dir)!r} is not a directory"
            ) from None
    except OSError as exc:
        raise ConfigError(
            f"{setting} is unset and DATA_DIR {str(data_dir)!r} is not writable: {exc.strerror}"
        ) from None
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
    for _ in range(50):  # another worker may be between creating and writing the file
        try:
            key = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{setting} is unset and {path} cannot be read: {exc.strerror}") from None
        if key:
            return key
        time.sleep(0.01)
    raise ConfigError(f"{setting} is unset and {path} is empty; delete it or set {setting}")
