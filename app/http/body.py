"""Reading a request's JSON body and validating it against a schema, with errors that name the field."""

from __future__ import annotations

from flask import current_app, request
from marshmallow import Schema, ValidationError

from schemas import first_error

from .. import jsonx
from ..errors import InvalidRequest, RequestTooLarge

_JSON_TYPES = ("application/json", "text/plain", "")


def json_body(schema: Schema | None = None) -> dict:
    """The body as the schema loads it (unknown fields kept as sent); 400 for a wrong content type,
    an empty or malformed body, or a schema violation; 413 (from werkzeug, before reading it all)
    for a body over the limit."""
    mimetype = request.mimetype
    if mimetype not in _JSON_TYPES and not mimetype.endswith("+json"):
        raise InvalidRequest(
            f"Content-Type must be application/json, got {mimetype!r}.", param="Content-Type"
        )
    raw = request.get_data()
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and len(raw) >= limit:
        # A chunked body is cut at the limit rather than refused: refuse it here.
        raise RequestTooLarge(f"The request body is larger than the gateway accepts ({limit} bytes).")
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    try:
        data = jsonx.loads(raw)
    except jsonx.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if schema is None:
        return data
    try:
        return schema.load(data)
    except ValidationError as err:
        path, message = first_error(err.normalized_messages())
        raise InvalidRequest(f"Invalid value at '{path}': {message}", param=path) from None


def with_member(raw: bytes, name: str, value: object) -> bytes:
    """A JSON object's bytes with one more member, the client's own bytes kept as they were sent
    (numbers written as strings, either spelling of a name) rather than re-encoded."""
    body = raw.rstrip()
    if not body.endswith(b"}"):
        raise InvalidRequest("The request body must be a JSON object.")
    inner = body[:-1].rstrip()
    comma = b"" if inner.endswith(b"{") else b","
    return inner + comma + jsonx.dumps(name) + b":" + jsonx.dumps(value) + b"}"
