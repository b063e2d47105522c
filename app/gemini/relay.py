"""Forwarding a native call that the gateway does not translate: the client's method, query, body and the
headers Gemini needs go through the key pool; the answer comes back as it is, streamed when it streams,
with what it created recorded as the caller's and its tokens counted once."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

from flask import Response, request

from .. import jsonx
from ..errors import GatewayError
from ..http.body import json_object, read_whole_body
from ..http.sse import SSEDecoder
from ..http.streaming import Events, stream_response
from ..state import state
from ..upstream.client import BodyStream, Params, Served, read_pieces
from ..upstream.resources import created, generated_videos, model_operation_name, results_file
from ..upstream.waits import Heartbeat
from ..usage.record import record
from .errors import error_body

log = logging.getLogger(__name__)
JSON_TYPE = "application/json; charset=UTF-8"
# Request headers Gemini reads on these routes; the client's credentials are never among them.
_REQUEST_HEADERS = ("content-type", "accept", "api-revision", "range")
# Query parameters that are credentials: the client's key, or an identity of its own for Google.
_CREDENTIALS = frozenset(("key", "access_token", "oauth_token"))
# Answer headers the client gets back (X-Goog-Upload-* are handled by the upload views).
_ANSWER_HEADERS = (
    "Content-Disposition",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
)
RESULTS = "results of "  # the note kept with a batch's results file
# How long the record of a counted result lasts: far longer than any client polls a finished job.
COUNTED_FOR = 90 * 86400.0
SSE_HEARTBEAT = b": keep-alive\n\n"  # an SSE comment: every SSE parser skips it


def forward_headers(*extra: str) -> dict[str, str]:
    """The request headers Gemini needs, from the client's (upload protocol headers in `extra`)."""
    names = _REQUEST_HEADERS + extra
    return {name: value for name, value in request.headers.items() if name.lower() in names}


def query() -> dict[str, str | tuple[str, ...]]:
    """The client's query string without its key (a repeated parameter keeps every value)."""
    out: dict[str, str | tuple[str, ...]] = {}
    for name, values in request.args.lists():
        if name not in _CREDENTIALS:
            out[name] = values[0] if len(values) == 1 else tuple(values)
    return out


def json_or_none() -> bytes | None:
    """The client's body as sent, for a call that takes JSON (none for GET and DELETE): a JSON object,
    at most MAX_REQUEST_BYTES (a 413 otherwise, before it is read whole), arrived within
    REQUEST_BODY_TIMEOUT (a 408), nested no deeper than the gateway's bound."""
    if request.method in ("GET", "DELETE"):
        return None
    raw = read_whole_body()
    if not raw.strip():
        return b"{}" if request.method == "POST" else None
    json_object(raw)
    return raw


def send(
    method: str,
    path: str,
    *,
    body: bytes | BodyStream | None = None,
    owned: tuple[str, ...] = (),
    headers: Mapping[str, str] | None = None,
    key_id: str | None = None,
    params: Params | None = None,
    creates: bool = False,
) -> Served:
    """One call through the pool. Only reads are sent again after Gemini may have acted on them; a
    call that `creates` a resource goes where the client's other resources are."""
    served = state().upstream.request(
        method,
        path,
        body=body,
        params=query() if params is None else params,
        stream=True,
        headers=forward_headers() if headers is None else headers,
        idempotent=method == "GET",
        owned=owned,
        key_id=key_id,
        creates=creates,
    )
    record().served_by(served)
    return served


def is_json(served: Served) -> bool:
    """Whether the answer is one JSON document (read whole), not media or lines of JSON (streamed)."""
    return served.headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/json"


def answer_of(served: Served) -> tuple[bytes, object]:
    """A whole JSON answer: its bytes, as sent, and what they hold (None when not JSON)."""
    raw = served.content
    try:
        return raw, jsonx.loads(raw)
    except jsonx.JSONDecodeError:
        return raw, None


def respond(served: Served, raw: bytes, extra: Mapping[str, str] | None = None) -> Response:
    response = Response(
        gateway_download_uris(raw),
        status=served.response.status_code,
        content_type=served.headers.get("Content-Type", JSON_TYPE),
    )
    for name in _ANSWER_HEADERS:
        if name in served.headers:
            response.headers[name] = served.headers[name]
    if extra:
        response.headers.update(extra)
    return response


def gateway_root() -> str:
    """The gateway's own address as its clients reach it (no trailing slash): the scheme gunicorn's
    trusted proxies report, and the host they forwarded, else the Host the client used."""
    host = state().proxies.public_host(
        request.remote_addr, request.host, request.headers.get("X-Forwarded-Host")
    )
    return f"{request.scheme}://{host}{request.script_root}"


_DOWNLOAD_URI = re.compile(rb'("downloadUri"\s*:\s*")https?://[^"/]*(/download/[^"]*")')


def gateway_download_uris(raw: bytes) -> bytes:
    """A generated file's `downloadUri` on the gateway's own address (as an upload URL is): the client
    downloads it through the gateway, with its own key, at the path Gemini gave. Other URIs (a file's
    `uri`, a video sample's) stay Gemini's: requests name files by them, and SDKs parse them."""
    if b'"downloadUri"' not in raw:
        return raw
    root = jsonx.dumps(gateway_root())[1:-1]
    return _DOWNLOAD_URI.sub(lambda m: m.group(1) + root + m.group(2), raw)


class Ledger:
    """What a relayed call leaves behind: the resources it made the caller's, the tokens it counted. It
    holds what it needs from the request, since a streamed answer ends after the request has."""

    def __init__(self) -> None:
        self.pool = state().pool
        self.rec = record()
        self.fallback = state().config.resource_affinity_ttl

    def keep_created(self, answer: object, served: Served, *, interaction: bool = False) -> None:
        """Record what a create call's answer made the caller's: later calls on it go to the key that
        holds it, and no other client sees it."""
        for name, ttl in created(answer, self.pool.clock(), self.fallback, interaction=interaction):
            self.pool.record_owner(name, served.key, self.rec.client, ttl)

    def keep_results(self, answer: object, served: Served, batch: str) -> None:
        """A finished batch's results file is the caller's too, noted as the batch's (its tokens are
        counted as it is downloaded)."""
        name = results_file(answer)
        if name is not None:
            ttl = self.fallback  # Gemini keeps a batch's results file as long as any file
            self.pool.record_owner(name, served.key, self.rec.client, ttl, RESULTS + batch)

    def keep_operation(self, answer: object, served: Served, model: str) -> None:
        """A model's long-running operation (Veo's) is the caller's, polled on the key that runs it."""
        name = model_operation_name(answer, model)
        if name is not None:
            self.pool.record_owner(name, served.key, self.rec.client, self.fallback)

    def keep_videos(self, answer: object, served: Served, operation: str) -> None:
        """The files a finished video operation wrote are the caller's too (downloaded through the
        gateway, as the SDKs do: `files/{id}:download`). Gemini keeps them as long as any file."""
        for name in generated_videos(answer):
            self.pool.record_owner(name, served.key, self.rec.client, self.fallback, f"video of {operation}")

    def count_once(self, name: str, usage: dict | None, model: str | None = None) -> None:
        """Charge a finished job's tokens (a batch's, an interaction's) to this request, the first time
        any request sees them finished: polling it again counts nothing."""
        if usage and self.pool.once("t:" + name, self.rec.client, COUNTED_FOR):
            self.rec.set_usage(usage)
            if model and self.rec.model is None:
                self.rec.model = model

    def forget(self, resource: str) -> None:
        self.pool.forget_owner(resource)


def interaction_usage(usage: object) -> dict | None:
    """An interaction's `usage` as Gemini's usageMetadata (the record reads one shape)."""
    if not isinstance(usage, dict):
        return None
    return {
        "promptTokenCount": usage.get("total_input_tokens"),
        "candidatesTokenCount": usage.get("total_output_tokens"),
        "thoughtsTokenCount": usage.get("total_thought_tokens"),
        "toolUsePromptTokenCount": usage.get("total_tool_use_tokens"),
    }


def batch_usage(answer: object) -> tuple[str | None, dict | None]:
    """A finished batch's model and its inlined answers' tokens, summed; (None, None) until it is done."""
    metadata = answer.get("metadata") if isinstance(answer, dict) else None
    if not isinstance(metadata, dict) or metadata.get("state") != "BATCH_STATE_SUCCEEDED":
        return None, None
    model = metadata.get("model")
    output = metadata.get("output")
    inlined = output.get("inlinedResponses") if isinstance(output, dict) else None
    entries = inlined.get("inlinedResponses") if isinstance(inlined, dict) else None
    total = _UsageSum()
    for entry in entries if isinstance(entries, list) else ():
        response = entry.get("response") if isinstance(entry, dict) else None
        if isinstance(response, dict):
            total.add(response.get("usageMetadata"))
    name = model.removeprefix("models/") if isinstance(model, str) else None
    return name, total.metadata()


class _UsageSum:
    FIELDS = ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "toolUsePromptTokenCount")

    def __init__(self) -> None:
        self.totals = dict.fromkeys(self.FIELDS, 0)
        self.seen = False

    def add(self, usage: object) -> None:
        if isinstance(usage, dict):
            self.seen = True
            for name in self.FIELDS:
                value = usage.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    self.totals[name] += value

    def metadata(self) -> dict | None:
        return dict(self.totals) if self.seen else None


def download(served: Served, resource: str) -> Response:
    """A file's bytes, relayed as they come. A batch's results file has its answers' tokens counted as
    it passes, once, when it has all gone."""
    ledger = Ledger()
    owner = ledger.pool.recall("r:" + resource)
    if owner is None or not (owner.note or "").startswith(RESULTS):
        return stream_bytes(served)
    total = _UsageSum()

    def on_line(line: bytes) -> None:
        if b'"usageMetadata"' in line:
            try:
                entry = jsonx.loads(line)
            except jsonx.JSONDecodeError:
                return
            response = entry.get("response") if isinstance(entry, dict) else None
            if isinstance(response, dict):
                total.add(response.get("usageMetadata"))

    def after(finished: bool) -> None:
        if finished:
            ledger.count_once(resource, total.metadata())

    return stream_bytes(served, on_line=on_line, after=after)


# -- streamed answers ----------------------------------------------------------------------------


class _Closing:
    """A Served answer as `stream_response` wants its upstream: the key, model and attempts, its body's
    pieces as they come, and close."""

    def __init__(self, served: Served):
        self.key, self.model, self.attempts = served.key, served.model, served.attempts
        self.response = served.response

    def events(self, heartbeat: float = 0.0) -> Events:
        return read_pieces(self.response, heartbeat)

    def close(self) -> None:
        self.response.close()


class _SSEPassThrough:
    """Gemini's own events, each sent as it came (its `event:` lines too), errors scrubbed. On the way
    it reads a generate stream's usageMetadata (`usage`, for the record) and the interaction an
    interaction stream is about (`interaction`: its id, status and usage, counted once elsewhere)."""

    def __init__(self, scrub: Callable[[bytes], bytes]):
        self.scrub = scrub
        self.usage: dict | None = None
        self.interaction: dict | None = None
        self._decoder = SSEDecoder()

    def start(self) -> bytes:
        return b""

    def feed(self, block: bytes) -> bytes:
        if b'"usageMetadata"' in block or b'"interaction"' in block:
            for data in self._decoder.feed(block + b"\n\n"):
                self._read(data)
        return self.scrub(block) if b'"error"' in block else block

    def _read(self, data: bytes) -> None:
        try:
            event = jsonx.loads(data)
        except jsonx.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        if isinstance(event.get("usageMetadata"), dict):
            self.usage = event["usageMetadata"]
        interaction = event.get("interaction")
        if isinstance(interaction, dict):
            self.interaction = {**(self.interaction or {}), **interaction}

    def finish(self) -> bytes:
        return b""

    def fail(self, err: GatewayError) -> bytes:
        body = jsonx.dumps({**error_body(err), "event_type": "error"})
        return b"event: error\ndata: " + body + b"\n\n"


class _BytesPassThrough:
    """A download: its bytes as they come, nothing added. A failure midway can only end it short."""

    usage = None

    def __init__(self, on_line: Callable[[bytes], None] | None = None):
        self.on_line = on_line
        self._rest = b""

    def start(self) -> bytes:
        return b""

    def feed(self, piece: bytes) -> bytes:
        if self.on_line is not None:
            lines = (self._rest + piece).split(b"\n")
            self._rest = lines.pop()
            for line in lines:
                self.on_line(line)
        return piece

    def finish(self) -> bytes:
        if self.on_line is not None and self._rest:
            self.on_line(self._rest)
        return b""

    def fail(self, err: GatewayError) -> bytes:
        return b""


def stream_events(served: Served, *, after: Callable[[_SSEPassThrough], None] | None = None) -> Response:
    """An SSE answer relayed event by event as it arrives, heartbeats between events while Gemini is
    silent; `after(translator)` runs once the last event has gone (the usage, what it created)."""
    translator = _SSEPassThrough(state().upstream.scrub)

    def events(heartbeat: float) -> Events:
        blocks = _sse_blocks(read_pieces(served.response, heartbeat))
        return blocks if after is None else _then(blocks, lambda finished: after(translator))

    return stream_response(
        _Closing(served),
        translator,
        content_type=served.headers.get("Content-Type", "text/event-stream"),
        heartbeat=SSE_HEARTBEAT,
        events=events,
    )


def stream_bytes(
    served: Served,
    *,
    on_line: Callable[[bytes], None] | None = None,
    after: Callable[[bool], None] | None = None,
) -> Response:
    """A download relayed piece by piece, never held whole; `on_line` sees each line on the way (a batch's
    results), `after(finished)` runs once it has gone (all of it, or not)."""
    translator = _BytesPassThrough(on_line)

    def events(heartbeat: float) -> Events:
        pieces = read_pieces(served.response, heartbeat)
        return pieces if after is None else _then(pieces, after)

    response = stream_response(
        _Closing(served),
        translator,
        content_type=served.headers.get("Content-Type", "application/octet-stream"),
        heartbeat=b"",
        events=events,
    )
    for name in ("Content-Length", *_ANSWER_HEADERS):
        if name in served.headers:
            response.headers[name] = served.headers[name]
    return response


def _then(items: Events, done: Callable[[bool], None]) -> Events:
    """`items`, then `done(finished)` however they end (`finished` False when they broke off, or the
    client left). It runs once the view has returned: it uses no request context."""
    finished = False
    try:
        yield from items
        finished = True
    finally:
        try:
            done(finished)
        except Exception:  # bookkeeping after the answer never cuts it short
            log.exception("recording what a relayed stream left behind failed")


def _sse_blocks(pieces: Events) -> Events:
    """Whole events (each up to and with its blank line), from bytes split anywhere: heartbeats may go
    between two of them, never inside one."""
    buffer = b""
    for piece in pieces:
        if isinstance(piece, Heartbeat):
            yield piece  # what the client has is whole events: the heartbeat goes after the last one
            continue
        buffer += piece
        end = max(
            (at + len(sep) for sep in (b"\r\n\r\n", b"\n\n", b"\r\r") if (at := buffer.rfind(sep)) >= 0),
            default=-1,
        )
        if end > 0:
            yield buffer[:end]
            buffer = buffer[end:]
    if buffer:
        yield buffer
