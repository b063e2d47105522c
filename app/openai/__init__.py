"""The OpenAI-compatible dialect: chat completions, Responses, models, embeddings, images and speech."""

from flask import Flask

from ..state import state_of
from . import errors, views
from .responses import views as responses_views


def init_app(app: Flask) -> None:
    app_state = state_of(app)
    app_state.renderers["openai"] = errors.render
    app_state.model_views["openai"] = (views.list_models, views.get_model)
    app.register_blueprint(views.bp)
    app.register_blueprint(responses_views.bp)
