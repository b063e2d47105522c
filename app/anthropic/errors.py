"""Anthropic's error shape: {"type": "error", "error": {"type", "message"}, "request_id"}."""

from __future__ import annotations

from flask import g

from ..errors import GatewayError, retry_after_headers

_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "method_not_allowed": "invalid_request_error",
    "request_too_large": "request_too_large",
    "request_timeout": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "unavailable": "api_error",
    "overloaded": "overloaded_error",
    "unreachable": "api_error",
    "timeout": "timeout_error",
    "api_error": "api_error",
}


def error_body(err: GatewayError, request_id: str | None = None) -> dict:
    message = err.message
    if err.param and err.param not in message:
        message = f"{err.param}: {message}"  # Anthropic names the field first: "max_tokens: Field required"
    body = {"type": "error", "error": {"type": _TYPES.get(err.kind, "api_error"), "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def status_for(err: GatewayError) -> int:
    # Anthropic answers 529 when overloaded; its SDK retries and raises OverloadedError on it.
    return 529 if err.kind == "overloaded" else err.status


def render(err: GatewayError):
    request_id = g.get("request_id")
    headers = retry_after_headers(err)
    if request_id:
        headers["request-id"] = request_id  # where Anthropic's SDK reads it (`err.request_id`)
    return error_body(err, request_id), status_for(err), headers
