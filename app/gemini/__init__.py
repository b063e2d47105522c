"""The Gemini-native dialect: validate, relay to Gemini, relay back."""

from flask import Flask

from ..state import state_of
from ..upstream.resources import FAMILIES
from . import errors, resources, uploads, views


def init_app(app: Flask) -> None:
    app_state = state_of(app)
    app_state.renderers["gemini"] = errors.render
    app_state.model_views["gemini"] = (views.list_models, views.get_model)
    app_state.file_views["gemini"] = _files
    app.register_blueprint(views.native, url_prefix="/v1beta")
    app.register_blueprint(views.native, url_prefix="/v1", name="gemini_v1")
    app.register_blueprint(views.catalog, url_prefix="/v1beta")
    app.register_blueprint(resources.blueprint("gemini_resources", tuple(FAMILIES)), url_prefix="/v1beta")
    # /v1/files is shared with OpenAI's files (app/http/files_route.py hands it to the caller's dialect).
    v1 = tuple(family for family in FAMILIES if family != "files")
    app.register_blueprint(resources.blueprint("gemini_resources_v1", v1), url_prefix="/v1")
    app.register_blueprint(uploads.uploads)


def _files(sub: str | None):
    return resources.forward("files" if sub is None else f"files/{sub}")
