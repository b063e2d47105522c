"""The Gemini-native dialect: validate, relay to Gemini, relay back."""
from flask import Flask

from .. import model_list
from ..errors import register_renderer
from . import errors as gemini_errors
from . import views


def init_app(app: Flask) -> None:
    register_renderer(app, "gemini", gemini_errors.render)
    app.register_blueprint(views.native, url_prefix="/v1beta")
    app.register_blueprint(views.native, url_prefix="/v1", name="gemini_v1")
    app.register_blueprint(views.catalog, url_prefix="/v1beta")
    model_list.register(app, "gemini", views.list_models, views.get_model)
