"""Whole JSON answers that are slow to come: whitespace every few seconds first (NONSTREAM_KEEPALIVE), so
proxies with a first-byte or idle limit (Heroku's 30 s, nginx's timeouts) keep the connection open."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, g

from .. import jsonx
from ..errors import GatewayError
from ..state import state

JSON_HEARTBEAT = b"\n"  # whitespace before a JSON value is part of the JSON text: every parser skips it


class WholeJSON:
    """A stream translator (app.http.streaming) whose one event is the whole answer: `render(data)` writes
    it. Whitespace goes out at once and at every heartbeat; a failure after that is the dialect's JSON
    error body (the status, 200, is already sent)."""

    usage: dict | None = None  # set by `render`, for the record

    def __init__(self, render: Callable[[bytes], bytes], render_error: Callable[[GatewayError], bytes]):
        self.render = render
        self.render_error = render_error

    def start(self) -> bytes:
        return JSON_HEARTBEAT

    def feed(self, data: bytes) -> bytes:
        return self.render(data)

    def finish(self) -> bytes:
        return b""

    def fail(self, err: GatewayError) -> bytes:
        return self.render_error(err)


def late_error_body() -> Callable[[GatewayError], bytes]:
    """The request's dialect's error body, for use once its view has returned: the renderer runs in an
    app context holding this request's `g` (its id, its dialect's details)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    renderer = state().renderers[g.get("dialect") or "openai"]
    values = dict(vars(g))

    def render(err: GatewayError) -> bytes:
        with app.app_context():
            vars(g).update(values)
            body = renderer(err)[0]
        return body if isinstance(body, bytes) else jsonx.dumps(body)

    return render
