"""Every gateway error in OpenAI's shape, with the status its SDK maps to the right exception."""

import openai
import pytest

from app import errors
from app.openai.errors import ContentFiltered, error_body, render
from tests.conftest import fixture_json

SDK_CLASSES = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    429: openai.RateLimitError,
}


@pytest.mark.parametrize(
    "err, status, type_, code",
    [
        (errors.InvalidRequest("bad", param="messages[0].role"), 400, "invalid_request_error", None),
        (errors.AuthenticationFailed("no key"), 401, "invalid_request_error", "invalid_api_key"),
        (errors.PermissionDenied("no", param="model"), 403, "permission_error", None),
        (errors.NotFound("no route"), 404, "invalid_request_error", None),
        (errors.RequestTooLarge("big"), 413, "invalid_request_error", "request_too_large"),
        (errors.RateLimited("slow down", retry_after=2.5), 429, "rate_limit_error", "rate_limit_exceeded"),
        (errors.UpstreamNotConfigured("set keys"), 503, "server_error", "upstream_not_configured"),
        (errors.UpstreamUnavailable("down"), 503, "server_error", "overloaded"),
        (errors.UpstreamTimeout("slow"), 504, "server_error", "timeout"),
        (errors.GatewayError("oops"), 500, "server_error", None),
        (
            ContentFiltered("filtered", param="prompt"),
            400,
            "invalid_request_error",
            "content_policy_violation",
        ),
    ],
)
def test_each_kind(err, status, type_, code):
    body, got_status, headers = render(err)
    assert got_status == status
    assert body == {"error": {"message": err.message, "type": type_, "param": err.param, "code": code}}
    if err.retry_after is not None:
        assert headers == {"Retry-After": "3"}


@pytest.mark.parametrize(
    "fixture, status, code",
    [
        ("error_404_model_not_found.json", 404, "model_not_found"),
        ("error_429_resource_exhausted.json", 429, "rate_limit_exceeded"),
        ("error_400_invalid_argument.json", 400, None),
        ("error_500_internal.json", 500, None),
    ],
)
def test_gemini_errors_keep_their_message(fixture, status, code):
    payload = fixture_json(f"gemini/{fixture}")
    err = errors.UpstreamError(status, payload, b"")
    body = error_body(err)["error"]
    assert body["message"] == payload["error"]["message"] and body["code"] == code


@pytest.mark.parametrize("status", sorted(SDK_CLASSES))
def test_the_sdk_raises_the_matching_class(status):
    import httpx2

    err = {
        400: errors.InvalidRequest,
        401: errors.AuthenticationFailed,
        403: errors.PermissionDenied,
        404: errors.NotFound,
        429: errors.RateLimited,
    }[status]("x")
    body, code, headers = render(err)
    request = httpx2.Request("POST", "http://gw/v1/chat/completions")
    response = httpx2.Response(code, json=body, headers=headers, request=request)
    client = openai.OpenAI(api_key="k", base_url="http://gw/v1")
    try:
        raised = client._make_status_error_from_response(response)
    finally:
        client.close()
    assert type(raised) is SDK_CLASSES[status] and raised.body == body["error"]
