"""The gateway's one error hierarchy, and the handler that renders it in the caller's dialect."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from . import jsonx


class GatewayError(Exception):
    """Base of every error the gateway answers with; dialect renderers map `kind` to wire types."""

    status = 500
    kind = "api_error"
    attempts = (
        0  # the calls to Gemini it took, when it is the end of a call's retries (the record counts them)
    )

    def __init__(self, message: str, *, param: str | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after


class InvalidRequest(GatewayError):
    status, kind = 400, "invalid_request"


class AuthenticationFailed(GatewayError):
    status, kind = 401, "authentication"


class PermissionDenied(GatewayError):
    status, kind = 403, "permission"


class NotFound(GatewayError):
    status, kind = 404, "not_found"


class MethodNotAllowed(GatewayError):
    status, kind = 405, "method_not_allowed"


class RequestTimeout(GatewayError):
    """The request's body did not arrive within REQUEST_BODY_TIMEOUT."""

    status, kind = 408, "request_timeout"


class RequestTooLarge(GatewayError):
    status, kind = 413, "request_too_large"


class RateLimited(GatewayError):
    status, kind = 429, "rate_limit"


class UpstreamNotConfigured(GatewayError):
    """The gateway has no usable upstream key: an operator's problem, not a passing overload."""

    status, kind = 503, "unavailable"


class UpstreamUnavailable(GatewayError):
    """Gemini was overloaded or failing after every retry."""

    status, kind = 503, "overloaded"


class UpstreamUnreachable(GatewayError):
    """No connection to Gemini could be made, or kept: refused, a name that did not resolve, a TLS
    certificate that did not verify. The message says which; it is for the operator to fix (a CA bundle, a
    proxy, DNS), not a passing overload."""

    status, kind = 503, "unreachable"


class UpstreamIncomplete(GatewayError):
    """Gemini's answer ended without a usable end: a stream cut before its finish reason, or a tool call
    Gemini botched again when asked once more. Never reported as a normal stop."""

    status, kind = 502, "api_error"


class UpstreamTimeout(GatewayError):
    status, kind = 504, "timeout"


_KIND_BY_STATUS = {
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    408: "request_timeout",
    413: "request_too_large",
    429: "rate_limit",
    503: "overloaded",
    504: "timeout",
}


class UpstreamError(GatewayError):
    """An error answer from Gemini itself, kept whole (with keys scrubbed) for the native dialect."""

    def __init__(self, status: int, payload: dict | None, raw: bytes, *, retry_after: float | None = None):
        error = payload.get("error") if isinstance(payload, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or not message:
            message = f"Gemini answered HTTP {status}"
        super().__init__(message, retry_after=retry_after)
        self.status = status if 400 <= status <= 599 else 502
        self.kind = _KIND_BY_STATUS.get(self.status, "api_error")
        self.payload = payload
        self.raw = raw

    @property
    def upstream_status(self) -> str | None:
        """Google's status string, such as RESOURCE_EXHAUSTED, when the body had one."""
        error = self.payload.get("error") if isinstance(self.payload, dict) else None
        return error.get("status") if isinstance(error, dict) else None


# A renderer turns an error into (body, status, headers) in one dialect's wire shape.
Renderer = Callable[[GatewayError], tuple[Any, int, dict]]


def retry_after_headers(err: GatewayError) -> dict:
    if err.retry_after is None:
        return {}
    return {"Retry-After": str(max(1, int(err.retry_after + 0.999)))}


def init_app(app: Flask, renderers: Mapping[str, Renderer]) -> None:
    """Route every error (ours, werkzeug's, and unexpected ones) through the dialect's renderer
    (`renderers`, by dialect, filled in as each dialect registers)."""

    def render(err: GatewayError) -> Response:
        rec = g.get("record")
        if rec is not None:  # the request's usage record and log line say why it failed
            rec.error = rec.error or err.kind
            rec.attempts += err.attempts
        dialect = getattr(g, "dialect", None) or "openai"
        body, status, headers = renderers[dialect](err)
        if not isinstance(body, (bytes, str)):
            body = jsonx.dumps(body)
        response = Response(body, status=status, mimetype="application/json")
        response.headers.update(headers)
        return response

    @app.errorhandler(GatewayError)
    def on_gateway_error(err: GatewayError):
        return render(err)

    @app.errorhandler(HTTPException)
    def on_http_exception(err: HTTPException):
        return render(from_http_exception(err))

    @app.errorhandler(Exception)
    def on_unexpected(err: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return render(GatewayError("The gateway hit an internal error; it has been logged."))


def from_http_exception(err: HTTPException) -> GatewayError:
    code = err.code or 500
    if code == 404:
        return NotFound(f"No route for {request.method} {request.path}.")
    if code == 405:
        return MethodNotAllowed(f"Method {request.method} is not allowed on {request.path}.")
    if code == 413:
        return RequestTooLarge("The request body is larger than the gateway accepts.")
    if 400 <= code < 500:
        return InvalidRequest(err.description or "Bad request.")
    return GatewayError(err.description or "Internal error.")
