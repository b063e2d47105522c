"""Reading a request's JSON body and validating it against a schema, with errors that name the field."""

from __future__ import annotations

from flask import current_app, request
from marshmallow import Schema

from schemas import first_error

from .. import jsonx
from ..budget import MAX_JSON_DEPTH
from ..errors import InvalidRequest, RequestTooLarge

_JSON_TYPES = ("application/json", "text/plain", "")


def json_body(schema: Schema | None = None) -> dict:
    """The body as a dict; 400 for a wrong content type, an empty, malformed or too deeply nested
    body, or a schema violation; 413 (from werkzeug, before reading it all) for a body over the limit."""
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
    if jsonx.deeper_than(data, MAX_JSON_DEPTH, raw):
        raise InvalidRequest(f"The request body nests JSON more than {MAX_JSON_DEPTH} levels deep.")
    if schema is not None:
        errors = schema.validate(data)
        if errors:
            path, message = first_error(errors)
            raise InvalidRequest(f"Invalid value at '{path}': {message}", param=path)
    return data
