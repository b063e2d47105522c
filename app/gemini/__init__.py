"""The Gemini-native dialect: validate, relay to Gemini, relay back."""

from flask import Flask

from ..state import state_of
from . import errors, views


def init_app(app: Flask) -> None:
    app_state = state_of(app)
    app_state.renderers["gemini"] = errors.render
    app_state.model_views["gemini"] = (views.list_models, views.get_model)
    app.register_blueprint(views.native, url_prefix="/v1beta")
    app.register_blueprint(views.native, url_prefix="/v1", name="gemini_v1")
    app.register_blueprint(views.catalog, url_prefix="/v1beta")
