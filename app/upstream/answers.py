"""Reading Gemini's answers and stream events: a JSON object, or an error that is Gemini's fault."""

from __future__ import annotations

from .. import jsonx
from ..errors import UpstreamError, UpstreamUnavailable


def answer_object(data: bytes) -> dict:
    """A whole (non-streamed) answer; anything but a JSON object is mapped, never a 500."""
    return _object(data, "Gemini sent an answer that is not a JSON object.")


def stream_event(data: bytes) -> dict:
    """One streamed event. Gemini's own error object inside the stream ends it as that error."""
    event = _object(data, "Gemini sent a stream event that is not a JSON object.")
    error = event.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        raise UpstreamError(code if isinstance(code, int) else 500, event, data)
    return event


def _object(data: bytes, complaint: str) -> dict:
    try:
        obj = jsonx.loads(data)
    except jsonx.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        raise UpstreamUnavailable(complaint)
    return obj
