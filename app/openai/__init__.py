"""The OpenAI-compatible dialect."""
from flask import Flask

from ..errors import register_renderer
from . import errors as openai_errors


def init_app(app: Flask) -> None:
    register_renderer(app, "openai", openai_errors.render)
