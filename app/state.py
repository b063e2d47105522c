"""The per-app state: every service the gateway's parts share, built once by the factory, in one typed home."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from .admin.session import Sessions
    from .config import Config
    from .config.runtime import LiveSettings
    from .errors import Renderer
    from .http.auth import ClientKeys
    from .http.peers import TrustedProxies
    from .ops.metrics import Metrics
    from .ops.request_log import RequestLog
    from .store import Store
    from .upstream.client import UpstreamClient
    from .upstream.key_pool import KeyPool
    from .upstream.model_catalog import ModelCatalog
    from .usage.quotas import Quotas
    from .usage.record import Sink

_EXTENSION = "gemgate"


@dataclass
class AppState:
    config: Config
    store: Store
    client_keys: ClientKeys
    quotas: Quotas
    pool: KeyPool
    upstream: UpstreamClient
    catalog: ModelCatalog
    metrics: Metrics
    request_log: RequestLog
    finish: Sink  # where each request's record goes when it ends (usage, metrics, request log)
    settings: LiveSettings  # the settings the admin page can change while the gateway runs
    proxies: TrustedProxies  # whose X-Forwarded-For names the real client (FORWARDED_ALLOW_IPS)
    renderers: dict[str, Renderer] = field(default_factory=dict)  # error shape per dialect
    model_views: dict[str, tuple[Callable, Callable]] = field(
        default_factory=dict
    )  # GET /v1/models per dialect
    file_views: dict[str, Callable] = field(default_factory=dict)  # /v1/files[/...] per dialect
    admin: Sessions | None = None  # admin logins, when there is an admin page

    def install(self, app: Flask) -> None:
        app.extensions[_EXTENSION] = self


def state() -> AppState:
    """The current app's state."""
    return current_app.extensions[_EXTENSION]


def state_of(app: Flask) -> AppState:
    return app.extensions[_EXTENSION]
