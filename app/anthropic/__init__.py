"""The Anthropic-compatible dialect: the Messages API (with tools, thinking and streaming) over Gemini."""
from flask import Flask

from .. import model_list
from ..errors import register_renderer
from . import errors as anthropic_errors
from . import views


def init_app(app: Flask) -> None:
    register_renderer(app, "anthropic", anthropic_errors.render)
    app.register_blueprint(views.bp)
    model_list.register(app, "anthropic", views.list_models, views.get_model)
