"""`GET /v1/models`, shared by three dialects: one route that hands off to the caller's dialect."""

from __future__ import annotations

from flask import Blueprint, Flask, g

from ..state import state

bp = Blueprint("model_list", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/v1/models")
def list_models():
    return _views()[0]()


@bp.get("/v1/models/<path:model>")
def get_model(model: str):
    return _views()[1](model)


def _views():
    """The caller's dialect's (list, get) views; each dialect registers its own in the app state."""
    views = state().model_views
    return views.get(g.dialect) or views["gemini"]
