"""The generate step every dialect's view shares: the model a request names, the request finalized,
Gemini called (whole, streamed, or whole and then streamed), and which key served it with what usage
noted on the record."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import TypeVar

from flask import Response, g

from .. import jsonx
from ..config import Config
from ..errors import UpstreamError
from ..state import state
from ..translate.directives import ModelSpec, parse_model_name
from ..translate.finalize import finalize, forced, with_default_safety
from ..translate.finish import botched_tool_call
from ..upstream.answers import answer_object
from ..upstream.client import Served, UpstreamClient, UpstreamStream
from ..upstream.waits import HEARTBEAT, Heartbeat
from ..usage.record import RequestRecord, record
from . import timing
from .background import Pending
from .keepalive import JSON_HEARTBEAT, WholeJSON, late_error_body
from .streaming import Events, StreamTranslator, stream_response

T = TypeVar("T", Served, UpstreamStream)

# Gemini's answer to a maxOutputTokens above the model's cap (the upper bound is exclusive).
_OUTPUT_RANGE = re.compile(
    r"maxOutputTokens value of \d+ but the supported range is from 1 \(inclusive\) to (\d+)"
)
# A fake stream waits this long (at most) before its headers go, so a quick refusal (a bad request,
# an unknown model) is still answered with its own status rather than as an in-stream error.
QUICK_ANSWER = 1.0


def model_spec(name: str, *, param: str = "model") -> ModelSpec:
    """The client's model name read (aliases, directives); the record names the model, and a client key
    that may not use it gets 403 here."""
    spec = parse_model_name(name, param=param, aliases=state().config.model_aliases)
    record().use_model(spec.model)
    return spec


def model_path(model: str, action: str, version: str = "v1beta") -> str:
    return f"/{version}/models/{model}:{action}"


def settings() -> Config:
    """The settings in force for this request (the environment's, with the admin page's changes)."""
    return state().settings.current()


def finalized(spec: ModelSpec, request: dict, current: Config | None = None) -> dict:
    """The Gemini request as it goes upstream: directives, the operator's forced features for this
    request's dialect, and default safety settings."""
    current = current or settings()
    return finalize(
        request,
        spec,
        safety_threshold=current.safety_threshold,
        forced=forced(current, g.get("dialect") or "openai"),
    )


@dataclass
class Answer:
    """Gemini's whole answer to a generate call, and every call it took."""

    served: list[Served]
    content: bytes  # the answer's body as Gemini sent it
    object: dict


def generate(spec: ModelSpec, request: dict) -> dict:
    """Gemini's whole answer to a generate request (its usage noted on the record), for a view that
    needs it as data; `respond` answers a client (with NONSTREAM_KEEPALIVE's whitespace)."""
    fetch = _whole_answer(
        state().upstream, model_path(spec.model, "generateContent"), finalized(spec, request)
    )
    answer = fetch(False)
    _note(record(), answer)
    return answer.object


def respond(
    spec: ModelSpec,
    request: dict | bytes,
    render: Callable[[Answer], bytes],
    *,
    content_type: str,
    headers: dict | None = None,
    version: str = "v1beta",
    retry_tool_failures: bool = False,
) -> Response:
    """The response to a non-streamed generate request: Gemini's whole answer, as `render` writes it.

    `request` is a dialect's Gemini request (finalized here) or a native client's bytes, ready to go.
    With NONSTREAM_KEEPALIVE, an answer slower than its interval is preceded by whitespace every
    interval; an error after that first byte is the dialect's JSON error body, with the 200.
    """
    current = settings()
    payload = request if isinstance(request, bytes) else finalized(spec, request, current)
    fetch = _whole_answer(state().upstream, model_path(spec.model, "generateContent", version), payload)
    rec = record()
    interval = current.nonstream_keepalive
    if interval <= 0:
        answer = fetch(retry_tool_failures)
        _note(rec, answer)
        return Response(render(answer), content_type=content_type, headers=headers)
    pending = Pending(lambda: fetch(retry_tool_failures))
    if _waited(pending, interval):
        answer = pending.result()  # an error here is answered with its own status
        _note(rec, answer)
        return Response(render(answer), content_type=content_type, headers=headers)

    def late(_: bytes) -> bytes:
        answer = pending.result()
        translator.usage = answer.object.get("usageMetadata")
        return render(answer)

    translator = WholeJSON(late, late_error_body())
    response = stream_response(
        WholeAnswerSource(pending, rec),
        translator,
        content_type=content_type,
        heartbeat=JSON_HEARTBEAT,
        headers=headers,
        interval=interval,
    )
    rec.stream = False  # a whole answer, sent late: the client asked for no stream
    return response


def stream(
    spec: ModelSpec,
    request: dict | bytes,
    translator: StreamTranslator,
    *,
    content_type: str,
    heartbeat: bytes,
    headers: dict | None = None,
    until: Callable[[], bool] | None = None,
    version: str = "v1beta",
    retry_tool_failures: bool = False,
) -> Response:
    """Gemini's streamed answer, each event through `translator` at once; `until()` true ends the read
    early (the client has all it asked for).

    In fake streaming mode (STREAMING_MODE=fake or a `-fake` suffix, `-real` wins) Gemini is asked for
    its whole answer instead (retried like any whole call), heartbeats go out every
    FAKE_STREAM_HEARTBEAT seconds meanwhile, and the answer then goes through `translator` as one event.
    """
    current = settings()
    payload = request if isinstance(request, bytes) else finalized(spec, request, current)
    upstream = state().upstream
    if (spec.stream_mode or current.streaming_mode) == "fake":
        return _fake_stream(
            _whole_answer(upstream, model_path(spec.model, "generateContent", version), payload),
            translator,
            retry_tool_failures,
            content_type=content_type,
            heartbeat=heartbeat,
            headers=headers,
            until=until,
            interval=current.fake_stream_heartbeat,
        )
    path = model_path(spec.model, "streamGenerateContent", version)
    opened = _send(lambda body: upstream.open_stream(path, body, params={"alt": "sse"}), payload)
    source: UpstreamStream | _ToolCallRetry = opened
    if retry_tool_failures:
        source = _ToolCallRetry(opened, upstream, record())
    return stream_response(
        source,
        translator,
        content_type=content_type,
        heartbeat=heartbeat,
        events=_until(source.events, until) if until is not None else None,
        headers=headers,
        interval=current.heartbeat_interval,
    )


def call(model: str, action: str, request: dict, *, safety: bool = False) -> dict:
    """Gemini's answer to any other model call (countTokens, embeddings, predict, or a generateContent
    that takes no directives, such as speech): a JSON object. `safety` adds the default settings."""
    if safety:
        request = with_default_safety(request, settings().safety_threshold)
    served = state().upstream.request("POST", model_path(model, action), body=jsonx.dumps(request))
    rec = record()
    rec.served_by(served)
    answer = answer_object(served.content)
    if "usageMetadata" in answer:
        rec.set_usage(answer["usageMetadata"])
    return answer


# -- whole answers ------------------------------------------------------------------------------


def _whole_answer(upstream: UpstreamClient, path: str, payload: dict | bytes) -> Callable[[bool], Answer]:
    """A call for Gemini's whole answer that needs no request context (it may run beside the response).
    With `retry_tool_failures`, an answer whose tool call Gemini botched is asked for once more."""

    def fetch(retry_tool_failures: bool) -> Answer:
        calls: list[Served] = []
        while True:
            served = _send(lambda body: upstream.request("POST", path, body=body), payload)
            calls.append(served)
            answer = answer_object(served.content)
            if not retry_tool_failures or len(calls) > 1 or botched_tool_call(answer) is None:
                return Answer(calls, served.content, answer)

    return fetch


def _note(rec: RequestRecord, answer: Answer) -> None:
    for served in answer.served:
        rec.served_by(served)
    rec.set_usage(answer.object.get("usageMetadata"))


def _waited(pending: Pending, timeout: float) -> bool:
    """Wait for `pending` in the view. A call that ended counted its own wait for Gemini (the upstream
    client does); one still running has the view's wait counted now, before the headers go."""
    started = perf_counter()
    done = pending.wait(timeout)
    if not done:
        timing.add_upstream_wait(perf_counter() - started)
    return done


class _NotServedYet:
    label = None
    model = None


class WholeAnswerSource:
    """A stream source for an answer Gemini sends whole: one event, once the call beside the response
    has ended (HEARTBEAT every `heartbeat` seconds until then). The record learns which keys served it
    then; `close` stops the call if it still runs."""

    key = _NotServedYet()  # read by stream_response before anything has been served
    attempts = 0
    model = None

    def __init__(self, pending: Pending[Answer], rec: RequestRecord):
        self.pending = pending
        self.rec = rec

    def events(self, heartbeat: float = 0.0) -> Events:
        if heartbeat > 0:
            while not self.pending.wait(heartbeat):
                yield HEARTBEAT
        answer = self.pending.result()
        for served in answer.served:
            self.rec.served_by(served)
        yield answer.content

    def close(self) -> None:
        self.pending.cancel()


def _fake_stream(
    fetch: Callable[[bool], Answer],
    translator: StreamTranslator,
    retry_tool_failures: bool,
    *,
    content_type: str,
    heartbeat: bytes,
    headers: dict | None,
    until: Callable[[], bool] | None,
    interval: float,
) -> Response:
    pending = Pending(lambda: fetch(retry_tool_failures))
    if _waited(pending, min(interval, QUICK_ANSWER)):
        pending.result()  # a quick error is answered with its own status, before any header
    source = WholeAnswerSource(pending, record())
    return stream_response(
        source,
        translator,
        content_type=content_type,
        heartbeat=heartbeat,
        events=_until(source.events, until) if until is not None else None,
        headers=headers,
        interval=interval,
    )


# -- real streams -------------------------------------------------------------------------------


class _ToolCallRetry:
    """An upstream stream, opened once more when Gemini botches a tool call in its first event: the
    client has seen nothing of the answer yet, and a second try usually succeeds."""

    def __init__(self, opened: UpstreamStream, upstream: UpstreamClient, rec: RequestRecord):
        self.current = opened
        self.upstream = upstream
        self.rec = rec

    @property
    def key(self):
        return self.current.key

    @property
    def attempts(self) -> int:
        return self.current.attempts

    @property
    def model(self) -> str | None:
        return self.current.model

    def events(self, heartbeat: float = 0.0) -> Events:
        events = self.current.events(heartbeat)
        for event in events:
            if isinstance(event, Heartbeat):
                yield event
                continue
            if b'"finishReason"' in event and _botched(event):
                first = self.current
                first.close()
                self.current = self.upstream.open_stream(first.path, first.body, first.params)
                self.rec.served_by(self.current)
                yield from self.current.events(heartbeat)
                return
            yield event
            break  # only the first event can be asked again: later ones follow what was sent
        yield from events

    def close(self) -> None:
        self.current.close()


def _botched(event: bytes) -> bool:
    try:
        return botched_tool_call(jsonx.loads(event)) is not None
    except (jsonx.JSONDecodeError, AttributeError, TypeError):
        return False  # the translator reports a malformed event


def _send(send: Callable[[bytes], T], request: dict | bytes) -> T:
    """`send(payload)`; once more with Gemini's own cap when it refuses maxOutputTokens as too high.

    Clients written for other models ask for 32k or 64k output tokens, more than some Gemini models
    take; every dialect's limit is an upper bound, so the model's cap serves the same request. A native
    client's bytes go as they are.
    """
    if isinstance(request, bytes):
        return send(request)
    try:
        return send(jsonx.dumps(request))
    except UpstreamError as err:
        match = _OUTPUT_RANGE.search(err.message) if err.status == 400 else None
        if match is None:
            raise
        config = {**request["generationConfig"], "maxOutputTokens": int(match[1]) - 1}
        served = send(jsonx.dumps({**request, "generationConfig": config}))
        served.attempts += err.attempts  # the refused call was sent too: the record counts it
        return served


def _until(events: Callable[[float], Events], done: Callable[[], bool]) -> Callable[[float], Events]:
    """`events`, ended early once `done()` (after an event; a heartbeat changes nothing)."""

    def until(heartbeat: float) -> Events:
        for event in events(heartbeat):
            yield event
            if not isinstance(event, Heartbeat) and done():
                return

    return until
