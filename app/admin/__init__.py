"""The operator's page at /admin: key health and steering, usage charts, latest requests, settings."""

from __future__ import annotations

from flask import Flask

from ..config import Config

PREFIX = "/admin"


def is_admin_path(path: str) -> bool:
    """Admin routes authenticate with the admin session, never a client key (404 when there is no admin)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def init_app(app: Flask, config: Config) -> None:
    """Register the admin page; without ADMIN_PASSWORD there is none at all."""
    if not config.admin_password:
        return
    from . import views

    views.register(app, config)
