"""The gateway's settings: read once from the environment (and CLIENT_KEYS_FILE) into a typed Config.

Loaded by gunicorn.conf.py by path, before gevent patches the workers: nothing here may import
Flask, requests or anything outside this package.
"""

from .client_keys import ClientKey, load_client_keys
from .errors import ConfigError
from .generated import ADMIN_PASSWORD_FILE, CLIENT_KEY_FILE, SESSION_SECRET_FILE, load_or_create_client_key
from .settings import DIALECTS, SAFETY_THRESHOLDS, STREAMING_MODES, Config

__all__ = [
    "ADMIN_PASSWORD_FILE",
    "CLIENT_KEY_FILE",
    "DIALECTS",
    "SAFETY_THRESHOLDS",
    "STREAMING_MODES",
    "SESSION_SECRET_FILE",
    "ClientKey",
    "Config",
    "ConfigError",
    "load_client_keys",
    "load_or_create_client_key",
]
