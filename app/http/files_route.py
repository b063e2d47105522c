"""`/v1/files`, shared by Gemini's Files API and OpenAI's: one route that hands off to the caller's dialect."""

from __future__ import annotations

from flask import Blueprint, Flask, g

from ..state import state

bp = Blueprint("file_routes", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.route("/v1/files", methods=["GET", "POST"])
def files():
    return _view()(None)


@bp.route("/v1/files/<path:sub>", methods=["GET", "DELETE"])
def file(sub: str):
    return _view()(sub)


def _view():
    """The caller's dialect's view, given the path after `/v1/files/` (None for the collection)."""
    views = state().file_views
    return views.get(g.dialect) or views["gemini"]
