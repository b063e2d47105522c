"""OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
from __future__ import annotations

from ..errors import GatewayError, retry_after_headers

# kind -> (type, code)
_TYPES = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "permission": ("permission_error", None),
    "not_found": ("invalid_request_error", "not_found"),
    "method_not_allowed": ("invalid_request_error", None),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "unavailable": ("server_error", "upstream_not_configured"),
    "overloaded": ("server_error", None),
    "timeout": ("server_error", "timeout"),
    "api_error": ("server_error", None),
}


def error_body(err: GatewayError) -> dict:
    type_, code = _TYPES.get(err.kind, ("server_error", None))
    return {"error": {"message": err.message, "type": type_, "param": err.param, "code": code}}


def render(err: GatewayError):
    return error_body(err), err.status, retry_after_headers(err)
