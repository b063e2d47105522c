"""Per-request timing: when a request reached the app, how long it waited for Gemini, and the overhead header."""

from __future__ import annotations

import time
from time import perf_counter

from flask import Flask, g, has_app_context, request

# WSGI environ keys: when the request reached the app, by the performance and the wall clock.
START, START_WALL = "gemgate.t0", "gemgate.started"
OVERHEAD_HEADER = "x-gemgate-overhead-ms"


def stamp_start(app: Flask) -> None:
    """Note when each request reaches the app, before Flask builds its context."""
    inner = app.wsgi_app

    def stamped(environ, start_response):
        environ[START] = perf_counter()
        environ[START_WALL] = time.time()
        return inner(environ, start_response)

    app.wsgi_app = stamped  # type: ignore[method-assign]


def started_at() -> float:
    """Unix time the request reached the app (its record's `started`)."""
    return request.environ.get(START_WALL) or time.time()


def elapsed_ms() -> float:
    """Milliseconds since the request reached the app."""
    return (perf_counter() - request.environ.get(START, perf_counter())) * 1000


def add_upstream_wait(seconds: float) -> None:
    """Count time spent waiting for Gemini against the current request (the overhead excludes it).
    Only while a view runs: a stream re-opened after its headers has no request context."""
    if has_app_context():
        g.upstream_s = g.get("upstream_s", 0.0) + seconds


def upstream_ms() -> float:
    """Milliseconds this request has waited for Gemini so far."""
    return g.get("upstream_s", 0.0) * 1000
