"""The OpenAI-compatible dialect: chat completions, Responses, models, embeddings, images, speech and files."""

from flask import Flask

from ..state import state_of
from . import errors, files, views
from .responses import views as responses_views


def init_app(app: Flask) -> None:
    app_state = state_of(app)
    app_state.renderers["openai"] = errors.render
    app_state.model_views["openai"] = (views.list_models, views.get_model)
    app_state.file_views["openai"] = files.view
    app.register_blueprint(views.bp)
    app.register_blueprint(responses_views.bp)
