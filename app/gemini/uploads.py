"""Uploads and downloads: Gemini's resumable, multipart and raw upload protocols relayed through the
gateway with the body streamed, never held whole; the upload URL Gemini returns rewritten to point at the
gateway under a random session id bound to the key and the client that started it."""

from __future__ import annotations

import hashlib
import re
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Blueprint, Request, Response, g, request

from ..errors import AuthenticationFailed, InvalidRequest, NotFound, RequestTooLarge, UpstreamUnavailable
from ..http.auth import presented_key
from ..http.body import stop_reading
from ..http.upload_body import StreamedBody
from ..state import state
from ..upstream.resources import Unroutable, parse
from ..usage.record import record
from . import relay

uploads = Blueprint("gemini_uploads", __name__)

# The protocol headers Gemini's upload endpoints read, and the ones their answers carry.
_UPLOAD_HEADERS = (
    "x-goog-upload-protocol",
    "x-goog-upload-command",
    "x-goog-upload-offset",
    "x-goog-upload-header-content-length",
    "x-goog-upload-header-content-type",
    "x-goog-upload-file-name",
)
_URL_HEADERS = ("X-Goog-Upload-URL", "X-Goog-Upload-Control-URL")
_ANSWER_HEADERS = (
    "X-Goog-Upload-Status",
    "X-Goog-Upload-Size-Received",
    "X-Goog-Upload-Chunk-Granularity",
)
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
SESSION_LIFETIME = 7 * 86400.0  # Gemini's resumable sessions last about a week
_VERSION = "<any(v1beta,v1):version>"


def is_session_request(req: Request) -> bool:
    """A request to an upload URL the gateway handed out: authorised by its session id (google-genai
    sends no key there), not by a client key."""
    return req.path.startswith("/upload/") and "upload_id" in req.args and req.method == "POST"


@uploads.post(f"/upload/{_VERSION}/files")
def upload_file(version: str) -> Response:
    return _upload(version, "files", label="files")


@uploads.post(f"/upload/{_VERSION}/<path:rest>")
def upload_to(version: str, rest: str) -> Response:
    """Uploads into a resource (`fileSearchStores/{id}:uploadToFileSearchStore`): its owner's alone."""
    try:
        path = parse(rest, "POST")
    except Unroutable:
        path = None
    if path is None or path.action != "uploadToFileSearchStore":
        raise NotFound(f"No upload route {request.path}.")
    return _upload(version, rest, owned=(path.resource,) if path.resource else (), label=path.label)


@uploads.get(f"/download/{_VERSION}/files/<path:sub>")
def download(version: str, sub: str) -> Response:
    try:
        path = parse(f"files/{sub}", "GET")
    except Unroutable:
        path = None
    if path is None or path.action != "download" or path.resource is None:
        raise NotFound(f"No download route {request.path}.")
    g.route_label = f"/download/{version}/{path.label}"
    served = relay.send("GET", f"/download/{version}/files/{sub}", owned=(path.resource,))
    return relay.download(served, path.resource)


def _upload(version: str, rest: str, *, label: str, owned: tuple[str, ...] = ()) -> Response:
    g.route_label = f"/upload/{version}/{label}"
    if is_session_request(request):
        return _continue(version)
    protocol = (request.headers.get("X-Goog-Upload-Protocol") or request.args.get("uploadType") or "").lower()
    if protocol == "resumable":
        return _start(version, rest, owned)
    if protocol in ("multipart", "raw", "media"):
        return _whole(version, rest, owned)
    raise InvalidRequest(
        "Say the upload protocol: X-Goog-Upload-Protocol (or uploadType) resumable, multipart or raw.",
        param="X-Goog-Upload-Protocol",
    )


def _start(version: str, rest: str, owned: tuple[str, ...]) -> Response:
    """A resumable upload's first request (metadata only): the session Gemini opens is bound to the key
    that opened it and to this client, under an id of the gateway's own."""
    declared = request.headers.get("X-Goog-Upload-Header-Content-Length")
    limit = state().config.max_upload_bytes
    if declared is not None:
        if not declared.strip().isdigit():
            raise InvalidRequest(
                "X-Goog-Upload-Header-Content-Length must be a size in bytes.",
                param="X-Goog-Upload-Header-Content-Length",
            )
        if int(declared) > limit:
            raise RequestTooLarge(f"The file is larger than the gateway accepts ({limit} bytes).")
    headers = relay.forward_headers(*_UPLOAD_HEADERS)
    served = relay.send(
        "POST",
        f"/upload/{version}/{rest}",
        body=relay.json_or_none(),
        owned=owned,
        headers=headers,
        creates=True,
    )
    raw = served.content
    extra = _answer_headers(served.headers)
    upstream_url = served.headers.get("X-Goog-Upload-URL")
    if upstream_url:
        session = secrets.token_urlsafe(32)
        target = relative_upload_url(upstream_url)
        state().pool.remember(_session_name(session), served.key, record().client, SESSION_LIFETIME, target)
        for name in _URL_HEADERS:
            if name in served.headers:
                extra[name] = _gateway_url(target, session)
    return relay.respond(served, raw, extra)


def _continue(version: str) -> Response:
    """A request to a handed-out upload URL (bytes, finalize, query, cancel): its session says which
    key and which client; an id the gateway did not hand out is refused without calling Gemini."""
    session_id = request.args.get("upload_id", "")
    pool = state().pool
    session = pool.recall(_session_name(session_id)) if _SESSION_ID.match(session_id) else None
    if session is None or session.note is None:
        raise NotFound("No upload session with this id (it may have ended or expired).")
    rec = record()
    presented = presented_key(request.headers, request.args)
    if presented:  # a key is not needed here; one that is sent must be the session's client's
        try:
            same = state().client_keys.identify(presented) == session.client
        except AuthenticationFailed:
            same = False
        if not same:
            raise NotFound("No upload session with this id (it may have ended or expired).")
    rec.client = session.client
    path, _, query = session.note.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    command = request.headers.get("X-Goog-Upload-Command", "").lower()
    sends_bytes = "upload" in command or request.content_length
    body = _streamed() if sends_bytes else None
    headers = relay.forward_headers(*_UPLOAD_HEADERS)
    served = relay.send("POST", path, body=body, headers=headers, key_id=session.key_id, params=params)
    raw = served.content
    extra = _answer_headers(served.headers)
    for name in _URL_HEADERS:
        if name in served.headers:
            extra[name] = _gateway_url(path + "?" + query, session_id)
    status = served.headers.get("X-Goog-Upload-Status", "")
    if status in ("final", "cancelled"):
        pool.forget(_session_name(session_id))
    if status == "final":
        _, answer = relay.answer_of(served)
        relay.Ledger().keep_created(answer, served)
    return relay.respond(served, raw, extra)


def _whole(version: str, rest: str, owned: tuple[str, ...]) -> Response:
    """A multipart or raw upload: the file in one request, streamed through to one key, never sent
    twice (its bytes are gone once sent)."""
    headers = relay.forward_headers(*_UPLOAD_HEADERS)
    served = relay.send(
        "POST", f"/upload/{version}/{rest}", body=_streamed(), owned=owned, headers=headers, creates=True
    )
    raw, answer = relay.answer_of(served)
    relay.Ledger().keep_created(answer, served)
    return relay.respond(served, raw, _answer_headers(served.headers))


def _streamed() -> StreamedBody:
    """The client's body, read as Gemini takes it: at most MAX_UPLOAD_BYTES, at most STREAM_IDLE_TIMEOUT
    of silence between two reads, all of it within REQUEST_BODY_TIMEOUT plus its length at 16 KiB/s; a
    Content-Length is required (it bounds the read up front)."""
    config = state().config
    request.max_content_length = config.max_upload_bytes  # checked against Content-Length: 413
    length = request.content_length
    if length is None:
        raise InvalidRequest("An upload needs a Content-Length.", param="Content-Length")
    if length > config.max_upload_bytes:
        raise RequestTooLarge(
            f"The upload is larger than the gateway accepts ({config.max_upload_bytes} bytes)."
        )
    g.body_streamed = True  # never read whole, not even for LOG_BODIES
    return StreamedBody(
        request.stream, length, config.stream_idle_timeout, config.request_body_timeout, stop_reading
    )


def _answer_headers(headers) -> dict[str, str]:
    return {name: headers[name] for name in _ANSWER_HEADERS if name in headers}


def relative_upload_url(url: str) -> str:
    """Gemini's upload URL as a path and query on GEMINI_BASE_URL: the bytes go nowhere else."""
    parts = urlsplit(url)
    if not parts.path.startswith("/upload/") or "upload_id" not in dict(parse_qsl(parts.query)):
        raise UpstreamUnavailable("Gemini answered an upload's start without a usable upload URL.")
    return parts.path + "?" + parts.query


def _gateway_url(target: str, session: str) -> str:
    """The upload URL the client gets: the gateway's own address, Gemini's path, and the session id."""
    path, _, query = target.partition("?")
    params = [("upload_id", session)] + [
        (k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "upload_id"
    ]
    return f"{relay.gateway_root()}{path}?{urlencode(params)}"


def _session_name(session: str) -> str:
    """The store name of an upload session: the id hashed, so the store never holds a usable one."""
    return "up:" + hashlib.sha256(session.encode("utf-8", "surrogatepass")).hexdigest()[:40]
