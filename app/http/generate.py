"""The generate step every dialect's view shares: the model a request names, the request finalized,
Gemini called (whole or streamed), and which key served it with what usage noted on the record."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TypeVar

from flask import Response

from .. import jsonx
from ..errors import UpstreamError
from ..state import state
from ..translate.directives import ModelSpec, parse_model_name
from ..translate.finalize import finalize, with_default_safety
from ..upstream.answers import answer_object
from ..upstream.client import Served, UpstreamStream
from ..usage.record import record
from .streaming import StreamTranslator, stream_response

T = TypeVar("T", Served, UpstreamStream)

# Gemini's answer to a maxOutputTokens above the model's cap (the upper bound is exclusive).
_OUTPUT_RANGE = re.compile(
    r"maxOutputTokens value of \d+ but the supported range is from 1 \(inclusive\) to (\d+)"
)


def model_spec(name: str, *, param: str = "model") -> ModelSpec:
    """The client's model name read (aliases, directives); the record names the model, and a client key
    that may not use it gets 403 here."""
    spec = parse_model_name(name, param=param, aliases=state().config.model_aliases)
    record().use_model(spec.model)
    return spec


def model_path(model: str, action: str, version: str = "v1beta") -> str:
    return f"/{version}/models/{model}:{action}"


def generate(spec: ModelSpec, request: dict) -> dict:
    """Gemini's whole answer to a generate request (its usage noted on the record)."""
    upstream = state().upstream
    path = model_path(spec.model, "generateContent")
    served = _send(lambda payload: upstream.request("POST", path, body=payload), _finalized(spec, request))
    rec = record()
    rec.served_by(served)
    answer = answer_object(served.content)
    rec.set_usage(answer.get("usageMetadata"))
    return answer


def stream(
    spec: ModelSpec,
    request: dict,
    translator: StreamTranslator,
    *,
    content_type: str,
    heartbeat: bytes,
    headers: dict | None = None,
    until: Callable[[], bool] | None = None,
) -> Response:
    """Gemini's streamed answer, each event through `translator` at once; `until()` true ends the read
    early (the client has all it asked for)."""
    upstream = state().upstream
    path = model_path(spec.model, "streamGenerateContent")
    opened = _send(
        lambda payload: upstream.open_stream(path, payload, params={"alt": "sse"}), _finalized(spec, request)
    )
    events = _until(opened.events(), until) if until is not None else None
    return stream_response(
        opened, translator, content_type=content_type, heartbeat=heartbeat, events=events, headers=headers
    )


def call(model: str, action: str, request: dict, *, safety: bool = False) -> dict:
    """Gemini's answer to any other model call (countTokens, embeddings, predict, or a generateContent
    that takes no directives, such as speech): a JSON object. `safety` adds the default settings."""
    if safety:
        request = with_default_safety(request, state().config.safety_threshold)
    served = state().upstream.request("POST", model_path(model, action), body=jsonx.dumps(request))
    rec = record()
    rec.served_by(served)
    answer = answer_object(served.content)
    if "usageMetadata" in answer:
        rec.set_usage(answer["usageMetadata"])
    return answer


def _finalized(spec: ModelSpec, request: dict) -> dict:
    config = state().config
    return finalize(
        request,
        spec,
        safety_threshold=config.safety_threshold,
        force_search=config.force_search,
        force_code=config.force_code,
    )


def _send(send: Callable[[bytes], T], request: dict) -> T:
    """`send(payload)`; once more with Gemini's own cap when it refuses maxOutputTokens as too high.

    Clients written for other models ask for 32k or 64k output tokens, more than some Gemini models
    take; every dialect's limit is an upper bound, so the model's cap serves the same request.
    """
    try:
        return send(jsonx.dumps(request))
    except UpstreamError as err:
        match = _OUTPUT_RANGE.search(err.message) if err.status == 400 else None
        if match is None:
            raise
        config = {**request["generationConfig"], "maxOutputTokens": int(match[1]) - 1}
        return send(jsonx.dumps({**request, "generationConfig": config}))


def _until(events: Iterator[bytes], done: Callable[[], bool]) -> Iterator[bytes]:
    for event in events:
        yield event
        if done():
            return
