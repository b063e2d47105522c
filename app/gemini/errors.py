"""Gemini's error shape: {"error": {"code", "message", "status", "details"}}."""

from __future__ import annotations

from flask import g

from .. import jsonx
from ..errors import GatewayError, UpstreamError, retry_after_headers

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(err: GatewayError) -> dict:
    """The error as Gemini would send it; Gemini's own answers are kept as they came."""
    if isinstance(err, UpstreamError) and isinstance(err.payload, dict) and "error" in err.payload:
        return err.payload
    error: dict = {
        "code": err.status,
        "message": err.message,
        "status": STATUS_NAMES.get(err.status, "UNKNOWN"),
    }
    details = []
    if err.param:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": err.param, "description": err.message}],
            }
        )
    if err.retry_after is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{max(1, round(err.retry_after))}s",
            }
        )
    if details:
        error["details"] = details
    return {"error": error}


def render(err: GatewayError):
    if isinstance(err, UpstreamError) and err.payload is not None and err.raw:
        body = err.raw  # Gemini's bytes as sent, with any key already scrubbed
    else:
        body = jsonx.dumps_pretty(error_body(err))
    if g.get("gemini_json_array"):  # non-SSE streaming wraps errors in an array, like Google
        body = b"[" + body.rstrip(b"\n") + b"\n]"
    headers = retry_after_headers(err)
    return body, err.status, headers
