"""CORS for the API routes: browser clients of these APIs call them cross-origin; /admin gets none."""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"  # DELETE: a stored response
EXPOSED = "x-request-id, x-gemgate-overhead-ms, retry-after, request-id"


def init_app(app: Flask, origins: tuple[str, ...]) -> None:
    """`origins`: ("*",) for any origin, a list of exact origins, or () for no CORS at all."""
    if not origins:
        return
    any_origin = "*" in origins

    def allowed_origin() -> str | None:
        origin = request.headers.get("Origin")
        if not origin or request.path.startswith("/admin"):
            return None
        if any_origin:
            return "*"
        return origin if origin in origins else None

    @app.before_request
    def preflight():
        # Browsers send preflights without credentials: answer them before authentication.
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        response = Response(status=204)
        origin = allowed_origin()
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "authorization, content-type"
            )
            response.headers["Access-Control-Max-Age"] = "86400"
        response.headers["Vary"] = "Origin"
        return response

    @app.after_request
    def add_headers(response):
        origin = allowed_origin()
        if origin and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED
            if origin != "*":
                response.headers.add("Vary", "Origin")
        return response
