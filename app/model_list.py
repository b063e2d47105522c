"""`GET /v1/models`, shared by three dialects: one route that hands off to the caller's dialect."""
from __future__ import annotations

from typing import Callable

from flask import Blueprint, Flask, current_app, g

bp = Blueprint("model_list", __name__)


def register(app: Flask, dialect: str, list_view: Callable, get_view: Callable) -> None:
    app.extensions.setdefault("gemgate.model_views", {})[dialect] = (list_view, get_view)


def _views() -> tuple[Callable, Callable]:
    views = current_app.extensions.get("gemgate.model_views", {})
    return views.get(g.dialect) or views["gemini"]


@bp.get("/v1/models")
def list_models():
    return _views()[0]()


@bp.get("/v1/models/<path:model>")
def get_model(model: str):
    return _views()[1](model)
