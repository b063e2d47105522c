"""The OpenAI-compatible dialect: chat completions, models, embeddings, images and speech."""
from flask import Flask

from .. import model_list
from ..errors import register_renderer
from . import errors as openai_errors
from . import views


def init_app(app: Flask) -> None:
    register_renderer(app, "openai", openai_errors.render)
    app.register_blueprint(views.bp)
    model_list.register(app, "openai", views.list_models, views.get_model)
