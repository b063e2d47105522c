"""Reading a request's JSON body, within its deadline, and validating it with errors that name the field."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import HTTPException

from schemas import first_error

from .. import jsonx
from ..budget import MAX_JSON_DEPTH
from ..errors import InvalidRequest, RequestTimeout, RequestTooLarge
from ..state import state
from . import timing

_JSON_TYPES = ("application/json", "text/plain", "")
_DISCARD_CHUNK = 64 * 1024


def json_body(schema: Schema | None = None) -> dict:
    """The body as the schema loads it (unknown fields kept as sent); 400 for a wrong content type, an
    empty, malformed or too deeply nested body, or a schema violation; 413 (from werkzeug, before
    reading it all) for a body over the limit; 408 for a body that has not arrived within
    REQUEST_BODY_TIMEOUT."""
    mimetype = request.mimetype
    if mimetype not in _JSON_TYPES and not mimetype.endswith("+json"):
        raise InvalidRequest(
            f"Content-Type must be application/json, got {mimetype!r}.", param="Content-Type"
        )
    raw = read_whole_body()
    if not raw.strip():
        raise InvalidRequest("The request body is empty; a JSON object is required.")
    data = json_object(raw)
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


def read_whole_body() -> bytes:
    """The whole body, within the deadline (408) and the size limit: 413 for a chunked body past it,
    which werkzeug cuts at the limit rather than refuses."""
    raw = read_body()
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and len(raw) >= limit:
        raise RequestTooLarge(f"The request body is larger than the gateway accepts ({limit} bytes).")
    return raw


def json_object(raw: bytes) -> dict:
    """`raw` as a JSON object: 400 when it is not JSON, not an object, or nested past MAX_JSON_DEPTH."""
    try:
        data = jsonx.loads(raw)
    except jsonx.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if jsonx.deeper_than(data, MAX_JSON_DEPTH, raw):
        raise InvalidRequest(f"The request body nests JSON more than {MAX_JSON_DEPTH} levels deep.")
    return data


def read_body() -> bytes:
    """The whole body (kept for later reads); 408 when it has not arrived within the deadline."""
    with _deadline():
        return request.get_data(cache=True)


def discard_body() -> None:
    """Read and drop what is left of a body the request was answered without (a 401, a 404), within
    the same deadline: the server reads it before taking the connection's next request, and a client
    trickling it must not hold the connection. Past the deadline, or the size limit, the connection
    closes after the answer."""
    try:
        stream = request.stream
    except HTTPException:  # declared larger than the limit: never read it
        stop_reading()
        return
    left = current_app.config["MAX_CONTENT_LENGTH"]
    try:
        with _deadline():
            while left > 0 and (piece := stream.read(_DISCARD_CHUNK)):
                left -= len(piece)
    except RequestTimeout:
        return  # past the deadline: reading has stopped, the connection closes
    except (HTTPException, OSError, ValueError):  # over the limit on the way, or a broken body
        left = 0
    if left <= 0:
        stop_reading()


@contextmanager
def _deadline() -> Iterator[None]:
    """Bound the reads inside to what is left of REQUEST_BODY_TIMEOUT since the request arrived.

    Under gevent the whole read is bounded (a limit on the gap between bytes alone never cuts a
    client sending one byte every few seconds); past it the rest of the body is never read, so the
    connection closes after the 408. Elsewhere (threads, the test client) reads are not bounded.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        yield
        return
    import gevent

    timeout = state().config.request_body_timeout
    left = timeout - (time.time() - timing.started_at())
    # An Exception, not gevent's own Timeout (a BaseException): the server then knows the body's
    # reader failed and will not reuse the connection.
    expired = _BodyTimeout()
    timer = gevent.Timeout(max(left, 0.001), expired)
    timer.start()
    try:
        yield
    except _BodyTimeout as exc:
        if exc is not expired:
            raise
        stop_reading()
        raise RequestTimeout(f"The request body did not arrive within {timeout:g} seconds.") from None
    finally:
        timer.close()


class _BodyTimeout(Exception):
    pass


def stop_reading() -> None:
    """Read nothing more from this request's connection (the rest of a body nobody will read): the
    server closes it after the answer, which then goes out at once."""
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
