"""OpenAI's error shape: {"error": {"message", "type", "param", "code"}}, with the statuses its SDK maps."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ..errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    UpstreamError,
    UpstreamUnavailable,
    retry_after_headers,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# What reading a Gemini answer raises when a field has an unexpected type (a string for an object...).
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)

# kind -> (type, code); the SDK picks its exception class from the status alone.
_TYPES = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "permission": ("permission_error", None),
    "not_found": ("invalid_request_error", None),
    "method_not_allowed": ("invalid_request_error", None),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "request_timeout": ("invalid_request_error", "request_timeout"),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "unavailable": ("server_error", "upstream_not_configured"),
    "overloaded": ("server_error", "overloaded"),
    "unreachable": ("server_error", "upstream_unreachable"),
    "timeout": ("server_error", "timeout"),
    "api_error": ("server_error", None),
    "content_filter": ("invalid_request_error", "content_policy_violation"),
    "previous_response_not_found": ("invalid_request_error", "previous_response_not_found"),
}


class ContentFiltered(InvalidRequest):
    """Gemini refused to produce what was asked (every image filtered, say): OpenAI answers 400."""

    kind = "content_filter"


class PreviousResponseNotFound(NotFound):
    """`previous_response_id` names no response this client key may read (OpenAI's own code)."""

    kind = "previous_response_not_found"


def malformed_answer() -> UpstreamUnavailable:
    """Gemini's fault, said as such: never the 500 of a gateway bug."""
    return UpstreamUnavailable("Gemini sent an answer of an unexpected shape.")


def read_answer(translate: Callable[..., T], answer: dict, *args, **kwargs) -> T:
    """`translate(answer, ...)`; an answer of an unexpected shape is a clear upstream error, not a 500."""
    try:
        return translate(answer, *args, **kwargs)
    except SHAPE_ERRORS:
        log.warning("Gemini answer of an unexpected shape", exc_info=True)
        raise malformed_answer() from None


def error_body(err: GatewayError) -> dict:
    type_, code = _TYPES.get(err.kind, ("server_error", None))
    if isinstance(err, UpstreamError) and err.status == 404:
        code = "model_not_found"  # Gemini's 404s name an unknown model (or method)
    return {"error": {"message": err.message, "type": type_, "param": err.param, "code": code}}


def render(err: GatewayError):
    return error_body(err), err.status, retry_after_headers(err)
