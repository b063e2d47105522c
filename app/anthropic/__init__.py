"""The Anthropic-compatible dialect: the Messages API (with tools, thinking and streaming) over Gemini."""

from flask import Flask

from ..state import state_of
from . import errors, views


def init_app(app: Flask) -> None:
    app_state = state_of(app)
    app_state.renderers["anthropic"] = errors.render
    app_state.model_views["anthropic"] = (views.list_models, views.get_model)
    app.register_blueprint(views.bp)
