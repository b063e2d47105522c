"""Gemini-native routes (`/v1beta/...`, also under `/v1/`): validate, relay, relay back."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from schemas import gemini as schemas

from .. import jsonx
from ..errors import NotFound
from ..http.body import json_body
from ..http.streaming import stream_response
from ..state import state
from ..translate.safety import default_safety_settings
from ..upstream.answers import answer_object
from ..upstream.model_catalog import model_id
from ..usage.quotas import reserve
from ..usage.record import record
from .streams import JSONArrayRelay, SSERelay

native = Blueprint("gemini", __name__)  # POST actions; registered under /v1beta and /v1
catalog = Blueprint("gemini_models", __name__)  # GET model list; /v1beta only (/v1 is shared)

JSON_TYPE = "application/json; charset=UTF-8"

_generate = schemas.GenerateContentRequest()
_count = schemas.CountTokensRequest()
_embed = schemas.EmbedContentRequest()
_batch_embed = schemas.BatchEmbedContentsRequest()
_predict = schemas.PredictRequest()


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
    model = model_id(model)
    record().use_model(model)
    return handler(model)


def generate_content(model: str):
    body = _generate_body()
    response = state().upstream.request("POST", f"/{api_version()}/models/{model}:generateContent", body=body)
    return relay(response, with_usage=True)


def stream_generate_content(model: str):
    sse = request.args.get("alt") == "sse"
    if not sse:
        g.gemini_json_array = True
    body = _generate_body()
    svc = state()
    upstream = svc.upstream.open_stream(
        f"/{api_version()}/models/{model}:streamGenerateContent", body, params={"alt": "sse"}
    )
    if sse:
        # A bare blank line: google-genai skips it, but fails on an SSE comment.
        translator, content_type, heartbeat = SSERelay(), "text/event-stream", b"\r\n"
    else:
        # Whitespace between array elements is valid JSON for any streaming parser.
        translator, content_type, heartbeat = JSONArrayRelay(), JSON_TYPE, b"\n"
    return stream_response(upstream, translator, content_type=content_type, heartbeat=heartbeat)


def count_tokens(model: str):
    return _relay_validated(model, "countTokens", _count)


def embed_content(model: str):
    return _relay_validated(model, "embedContent", _embed)


def batch_embed_contents(model: str):
    return _relay_validated(model, "batchEmbedContents", _batch_embed)


def predict(model: str):
    return _relay_validated(model, "predict", _predict)


_ACTIONS = {
    "generateContent": generate_content,
    "streamGenerateContent": stream_generate_content,
    "countTokens": count_tokens,
    "embedContent": embed_content,
    "batchEmbedContents": batch_embed_contents,
    "predict": predict,
}


@catalog.get("/models")
def list_models():
    page = state().catalog.page(api_version(), request.args.get("pageSize"), request.args.get("pageToken"))
    return Response(jsonx.dumps_pretty(page), content_type=JSON_TYPE)


@catalog.get("/models/<model>")
def get_model(model: str):
    found = state().catalog.get(api_version(), model_id(model))
    return Response(jsonx.dumps_pretty(found), content_type=JSON_TYPE)


def relay(response, with_usage: bool = False) -> Response:
    """Gemini's answer, as it came."""
    rec = record()
    rec.served_by(response)
    body = response.content
    if with_usage:
        rec.set_usage(answer_object(body).get("usageMetadata"))
    return Response(body, status=200, content_type=response.headers.get("Content-Type", JSON_TYPE))


def _relay_validated(model: str, action: str, schema) -> Response:
    json_body(schema)
    response = state().upstream.request(
        "POST", f"/{api_version()}/models/{model}:{action}", body=request.get_data()
    )
    return relay(response)


def _output_cap(data: dict) -> int | None:
    """The request's own cap on output tokens, for every candidate it asks for; None when it sets none."""
    config = data.get("generationConfig", data.get("generation_config"))
    if not isinstance(config, dict):
        return None
    cap = config.get("maxOutputTokens", config.get("max_output_tokens"))
    count = config.get("candidateCount", config.get("candidate_count"))
    if not isinstance(cap, int) or isinstance(cap, bool):
        return None
    return cap * count if isinstance(count, int) and not isinstance(count, bool) and count > 1 else cap


def _generate_body() -> bytes:
    """The validated request as bytes, with default safety settings only where it has none."""
    data = json_body(_generate)
    reserve(_output_cap(data))
    if "safetySettings" in data or "safety_settings" in data:
        return request.get_data()
    data["safetySettings"] = default_safety_settings(state().config.safety_threshold)
    return jsonx.dumps(data)
