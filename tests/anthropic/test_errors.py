"""Every gateway error in Anthropic's shape, with the status that makes the SDK raise the right class."""

import pytest
from flask import g

from app.anthropic.errors import render
from app.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    UpstreamError,
    UpstreamNotConfigured,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.conftest import fixture_json


@pytest.mark.parametrize(
    "err, status, kind",
    [
        (InvalidRequest("bad"), 400, "invalid_request_error"),
        (AuthenticationFailed("who?"), 401, "authentication_error"),
        (PermissionDenied("not this model"), 403, "permission_error"),
        (NotFound("none"), 404, "not_found_error"),
        (MethodNotAllowed("no"), 405, "invalid_request_error"),
        (RequestTooLarge("big"), 413, "request_too_large"),
        (RateLimited("slow down", retry_after=2.5), 429, "rate_limit_error"),
        (GatewayError("oops"), 500, "api_error"),
        (UpstreamNotConfigured("no keys"), 503, "api_error"),
        (UpstreamUnavailable("busy"), 529, "overloaded_error"),
        (UpstreamTimeout("late"), 504, "timeout_error"),
        (UpstreamError(503, fixture_json("gemini/error_503_unavailable.json"), b""), 529, "overloaded_error"),
        (UpstreamError(500, fixture_json("gemini/error_500_internal.json"), b""), 500, "api_error"),
        (
            UpstreamError(404, fixture_json("gemini/error_404_model_not_found.json"), b""),
            404,
            "not_found_error",
        ),
    ],
)
def test_status_and_type(app, err, status, kind):
    with app.test_request_context("/v1/messages"):
        g.request_id = "req_123"
        body, got, headers = render(err)
    assert got == status
    assert body == {
        "type": "error",
        "error": {"type": kind, "message": body["error"]["message"]},
        "request_id": "req_123",
    }
    assert headers["request-id"] == "req_123"
    if isinstance(err, UpstreamError):
        assert body["error"]["message"] == err.payload["error"]["message"]  # Gemini's words


def test_retry_after_and_the_field_at_fault(app):
    with app.test_request_context("/v1/messages"):
        _, _, headers = render(RateLimited("slow down", retry_after=2.5))
        body, _, _ = render(InvalidRequest("must be positive", param="max_tokens"))
        named, _, _ = render(InvalidRequest("Invalid value at 'max_tokens': x", param="max_tokens"))
    assert headers["Retry-After"] == "3"
    assert body["error"]["message"] == "max_tokens: must be positive"  # Anthropic's style: the field first
    assert named["error"]["message"] == "Invalid value at 'max_tokens': x"
