"""The per-app services every view uses, built once by the factory."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .auth import ClientKeys
from .config import Config
from .upstream.catalog import ModelCatalog
from .upstream.client import UpstreamClient
from .upstream.key_pool import KeyPool


@dataclass
class Services:
    config: Config
    client_keys: ClientKeys
    pool: KeyPool
    upstream: UpstreamClient
    catalog: ModelCatalog


def services() -> Services:
    return current_app.extensions["gemgate"]
