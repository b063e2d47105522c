"""Gemini-native routes (`/v1beta/...`, also under `/v1/`): validate, relay, relay back."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, g, request

from schemas import gemini as schemas

from .. import jsonx
from ..errors import NotFound
from ..http import generate
from ..http.body import json_body, with_member
from ..http.generate import model_path
from ..http.reservations import reserve
from ..http.streaming import StreamTranslator
from ..state import state
from ..translate.directives import ModelSpec, apply_directives, changes_request
from ..translate.finalize import forced, with_default_safety
from ..translate.safety import default_safety_settings
from ..upstream.client import Served
from ..upstream.model_catalog import model_id
from ..usage.record import record
from . import resources
from .streams import JSONArrayRelay, SSERelay

native = Blueprint("gemini", __name__)  # POST actions; registered under /v1beta and /v1
catalog = Blueprint("gemini_models", __name__)  # GET model list; /v1beta only (/v1 is shared)

JSON_TYPE = "application/json; charset=UTF-8"

_generate = schemas.GenerateContentRequest()
_count = schemas.CountTokensRequest()
_embed = schemas.EmbedContentRequest()
_batch_embed = schemas.BatchEmbedContentsRequest()
_predict = schemas.PredictRequest()
_predict_long_running = schemas.PredictLongRunningRequest()


def api_version() -> str:
    return "v1" if request.path.startswith("/v1/") else "v1beta"


@native.post("/models/<model_action>")
def model_action(model_action: str):
    model, sep, action = model_action.rpartition(":")
    handler = _ACTIONS.get(action) if sep else None
    if handler is None:
        known = ", ".join(":" + name for name in _ACTIONS)
        raise NotFound(
            f"Unknown method {action or model_action!r} on models/{model or model_action}; "
            f"the gateway serves {known}."
        )
    if action in _GENERATE_ACTIONS:  # the model name's directives apply, as in every dialect
        return handler(generate.model_spec(model))
    model = model_id(model)
    record().use_model(model)
    return handler(model)


def generate_content(spec: ModelSpec):
    return generate.respond(
        spec,
        _generate_body(spec),
        lambda answer: answer.content,
        content_type=JSON_TYPE,
        version=api_version(),
    )


def stream_generate_content(spec: ModelSpec):
    sse = request.args.get("alt") == "sse"
    if not sse:
        g.gemini_json_array = True
    translator: StreamTranslator
    if sse:
        # A bare blank line: google-genai skips it, but fails on an SSE comment.
        translator, content_type, heartbeat = SSERelay(), "text/event-stream", b"\r\n"
    else:
        # Whitespace between array elements is valid JSON for any streaming parser.
        translator, content_type, heartbeat = JSONArrayRelay(), JSON_TYPE, b"\n"
    return generate.stream(
        spec,
        _generate_body(spec),
        translator,
        content_type=content_type,
        heartbeat=heartbeat,
        version=api_version(),
    )


def count_tokens(spec: ModelSpec):
    return _relay_validated(spec.model, "countTokens", _count)


def embed_content(model: str):
    return _relay_validated(model, "embedContent", _embed)


def batch_embed_contents(model: str):
    return _relay_validated(model, "batchEmbedContents", _batch_embed)


def predict(model: str):
    return _relay_validated(model, "predict", _predict)


def predict_long_running(model: str):
    json_body(_predict_long_running)
    return resources.start_operation(model, "predictLongRunning")


@native.get("/models/<model>/operations/<operation>")
def get_model_operation(model: str, operation: str):
    return resources.model_operation(model_id(model), operation)


_GENERATE_ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")
_ACTIONS: dict[str, Callable] = {
    "generateContent": generate_content,
    "streamGenerateContent": stream_generate_content,
    "countTokens": count_tokens,
    "embedContent": embed_content,
    "batchEmbedContents": batch_embed_contents,
    "predict": predict,
    "predictLongRunning": predict_long_running,
    "batchGenerateContent": resources.batch_generate_content,
    "asyncBatchEmbedContent": resources.async_batch_embed_content,
}


@catalog.get("/models")
def list_models():
    page = state().catalog.page(api_version(), request.args.get("pageSize"), request.args.get("pageToken"))
    return Response(jsonx.dumps_pretty(page), content_type=JSON_TYPE)


@catalog.get("/models/<model>")
def get_model(model: str):
    found = state().catalog.get(api_version(), model_id(model))
    return Response(jsonx.dumps_pretty(found), content_type=JSON_TYPE)


def _path(model: str, action: str) -> str:
    return model_path(model, action, api_version())


def _relay(served: Served) -> Response:
    """Gemini's answer, as it came."""
    return Response(served.content, status=200, content_type=served.headers.get("Content-Type", JSON_TYPE))


def _relay_validated(model: str, action: str, schema) -> Response:
    json_body(schema)
    served = state().upstream.request("POST", _path(model, action), body=request.get_data())
    record().served_by(served)
    return _relay(served)


def _output_cap(data: dict) -> int | None:
    """The request's own cap on output tokens (the schema loaded it as an int, whatever its spelling),
    for every candidate it asks for; None when it sets none."""
    config = data.get("generationConfig") or {}
    cap, count = config.get("maxOutputTokens"), config.get("candidateCount") or 1
    return cap * count if cap is not None else None


def _generate_body(spec: ModelSpec) -> bytes:
    """The client's request as it sent it, with the default safety settings only where it set none; when
    the model name's directives or the operator's forced features add something, re-encoded from the
    loaded body (camelCase names, so nothing is given under two names)."""
    data = json_body(_generate)  # loaded with camelCase names, whatever spelling the client used
    reserve(_output_cap(data))
    current = generate.settings()
    features = forced(current, "gemini")
    if changes_request(spec, features):
        changed = apply_directives(spec, data, features)
        if changed != data:
            return jsonx.dumps(with_default_safety(changed, current.safety_threshold))
    raw = request.get_data()
    if "safetySettings" in data:
        return raw
    return with_member(raw, "safetySettings", default_safety_settings(current.safety_threshold))
