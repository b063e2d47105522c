"""OpenAI's Files API (`/v1/files`) on Gemini's files: an upload streamed to one key, each file its uploader's
alone, its id usable in chat completions (`{"type": "file", "file": {"file_id": ...}}`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl

from flask import Response, g, jsonify, request

from .. import jsonx
from ..errors import InvalidRequest, NotFound, UpstreamError, UpstreamUnavailable
from ..gemini import listing, relay
from ..gemini.resources import page_fetcher
from ..gemini.uploads import relative_upload_url
from ..http.upload_body import StreamedBody, within_pace
from ..state import state
from ..upstream.resources import FAMILIES, lifetime, parse_time
from ..upstream.retry import resource_refused
from ..usage.record import record
from .file_objects import PURPOSES, file_id, file_object, gemini_name, upload_type

MAX_LIMIT = 10_000


def view(sub: str | None) -> Response:
    """`/v1/files` (`sub` None), `/v1/files/{id}` and `/v1/files/{id}/content`, in OpenAI's dialect."""
    if sub is None:
        g.route_label = "/v1/files"
        return create() if request.method == "POST" else list_files()
    ident, _, rest = sub.partition("/")
    if rest == "content" and request.method == "GET":
        g.route_label = "/v1/files/{file_id}/content"
        return content(ident)
    if rest:
        raise NotFound(f"No route for {request.method} {request.path}.")
    g.route_label = "/v1/files/{file_id}"
    return delete(ident) if request.method == "DELETE" else retrieve(ident)


def create() -> Response:
    """`POST /v1/files` (multipart `file` and `purpose`): Gemini's resumable upload on one key, the file's
    bytes sent as they are read from the gateway's spool (never held whole in memory)."""
    config = state().config
    request.max_content_length = config.max_upload_bytes
    if request.mimetype != "multipart/form-data":
        raise InvalidRequest(
            "Upload the file as multipart/form-data, with 'file' and 'purpose'.", param="file"
        )
    if request.content_length is None:
        raise InvalidRequest("An upload needs a Content-Length.", param="Content-Length")
    g.body_streamed = True  # parsed into a spool on disk; never read whole, not even for LOG_BODIES
    with within_pace(request.content_length, config.request_body_timeout):
        form, files = request.form, request.files
    purpose = form.get("purpose")
    if purpose not in PURPOSES:
        raise InvalidRequest(
            f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}.", param="purpose"
        )
    upload = files.get("file")
    if upload is None:
        raise InvalidRequest("Send the file in the 'file' field.", param="file")
    filename = upload.filename or "upload"
    mime = upload_type(upload.mimetype, filename)
    spool = upload.stream
    spool.seek(0, 2)
    size = spool.tell()
    spool.seek(0)
    if size == 0:
        raise InvalidRequest("The file is empty.", param="file")
    start = relay.send(
        "POST",
        "/upload/v1beta/files",
        body=jsonx.dumps({"file": {"displayName": filename}}),
        headers={
            "Content-Type": "application/json",
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": mime,
        },
        params={},
        creates=True,
    )
    _ = start.content
    target = relative_upload_url(start.headers.get("X-Goog-Upload-URL", ""))
    path, _, query = target.partition("?")
    done = relay.send(
        "POST",
        path,
        body=StreamedBody(spool, size, config.stream_idle_timeout),  # from disk: never slow
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
        key_id=start.key.id,
        params=dict(parse_qsl(query, keep_blank_values=True)),
    )
    _, answer = relay.answer_of(done)
    gemini_file = answer.get("file") if isinstance(answer, dict) else None
    if not isinstance(gemini_file, dict) or not isinstance(gemini_file.get("name"), str):
        raise UpstreamUnavailable("Gemini finished the upload without naming the file.")
    pool = state().pool
    ttl = lifetime(FAMILIES["files"], gemini_file, pool.clock(), state().config.resource_affinity_ttl)
    pool.record_owner(gemini_file["name"], done.key, record().client, ttl, purpose)
    return jsonify(file_object(gemini_file, purpose))


def list_files() -> Response:
    """`GET /v1/files`: the caller's own files, newest first (`order=asc` for oldest first), `purpose`
    filtered, paged with `limit` and `after` as OpenAI pages."""
    limit = _limit(request.args.get("limit"))
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc.", param="order")
    wanted = request.args.get("purpose")
    owned = state().pool.owned(record().client, "files")
    found = listing.collect_all(owned, page_fetcher(FAMILIES["files"], "v1beta"))
    found.sort(key=lambda f: (parse_time(f.get("createTime")) or 0.0, f["name"]), reverse=order == "desc")
    objects = [file_object(f, owned[f["name"]].note) for f in found]
    if wanted:
        objects = [o for o in objects if o["purpose"] == wanted]
    after = request.args.get("after")
    if after:
        ids = [o["id"] for o in objects]
        objects = objects[ids.index(after) + 1 :] if after in ids else []
    page = objects[:limit]
    return jsonify(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(objects) > limit,
        }
    )


def retrieve(ident: str) -> Response:
    name = gemini_name(ident)
    return jsonify(file_object(_metadata(name), _purpose(name)))


def content(ident: str) -> Response:
    """`GET /v1/files/{id}/content`: the bytes of a file Gemini can give back (one it generated, such as
    a batch's results), streamed. Gemini keeps no readable copy of an uploaded file: that is a 400."""
    name = gemini_name(ident)
    if not _metadata(name).get("downloadUri"):
        raise InvalidRequest(
            f"{ident} was uploaded: Gemini keeps no copy of uploaded files that can be downloaded "
            "(only files it generated, such as batch results).",
            param="file_id",
        )
    with _gone_is_not_found(name):
        served = relay.send(
            "GET", f"/v1beta/{name}:download", owned=(name,), params={"alt": "media"}, headers={}
        )
    return relay.download(served, name)


def delete(ident: str) -> Response:
    name = gemini_name(ident)
    with _gone_is_not_found(name):
        served = relay.send("DELETE", f"/v1beta/{name}", owned=(name,), params={}, headers={})
    _ = served.content
    state().pool.forget_owner(name)
    return jsonify({"id": file_id(name), "object": "file", "deleted": True})


def _metadata(name: str) -> dict:
    with _gone_is_not_found(name):
        served = relay.send("GET", f"/v1beta/{name}", owned=(name,), params={}, headers={})
    _, answer = relay.answer_of(served)
    if not isinstance(answer, dict):
        raise UpstreamUnavailable("Gemini answered with a file that is not a JSON object.")
    return answer


def _purpose(name: str) -> str | None:
    owner = state().pool.recall("r:" + name)
    return owner.note if owner is not None else None


@contextmanager
def _gone_is_not_found(name: str) -> Iterator[None]:
    """Gemini says 403 for a file that expired or was deleted; an OpenAI client expects 404."""
    try:
        yield
    except UpstreamError as err:
        if err.status == 403 and resource_refused(err.payload) or err.status == 404:
            raise NotFound(f"No such file: {file_id(name)!r}.") from None
        raise


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return MAX_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise InvalidRequest("limit must be a whole number.", param="limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}.", param="limit")
    return limit
