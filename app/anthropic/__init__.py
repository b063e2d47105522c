"""The Anthropic-compatible dialect."""
from flask import Flask

from ..errors import register_renderer
from . import errors as anthropic_errors


def init_app(app: Flask) -> None:
    register_renderer(app, "anthropic", anthropic_errors.render)
