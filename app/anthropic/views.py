"""Anthropic routes: `/v1/messages` (whole and streamed), `count_tokens`, and the model list in Anthropic's shape."""

from __future__ import annotations

import re

from flask import Blueprint, Response, g, request

from schemas import anthropic as schemas

from .. import jsonx
from ..errors import InvalidRequest, UpstreamError
from ..http.body import json_body
from ..http.streaming import stream_response
from ..state import state
from ..translate.directives import parse_model_name
from ..translate.safety import default_safety_settings
from ..upstream.answers import answer_object
from ..usage.quotas import reserve
from ..usage.record import record
from . import from_gemini, to_gemini
from .stream import CONTENT_TYPE, PING, MessageStream

bp = Blueprint("anthropic", __name__)

JSON_TYPE = "application/json"
_messages = schemas.MessagesRequest()
_count = schemas.CountTokensRequest()
# Gemini's answer to a maxOutputTokens above the model's cap (the upper bound is exclusive).
_OUTPUT_RANGE = re.compile(
    r"maxOutputTokens value of \d+ but the supported range is from 1 \(inclusive\) to (\d+)"
)
EPOCH = "1970-01-01T00:00:00Z"  # Gemini does not publish release dates; Anthropic allows the epoch


def _headers() -> dict:
    return {"request-id": g.get("request_id", "")}


def _json(obj, status: int = 200) -> Response:
    return Response(jsonx.dumps(obj), status=status, content_type=JSON_TYPE, headers=_headers())


def _answer(response) -> dict:
    return answer_object(response.content)


@bp.post("/v1/messages")
def create_message():
    body = json_body(_messages)
    svc = state()
    spec = parse_model_name(body["model"], aliases=svc.config.model_aliases)
    record().use_model(spec.model)
    options = to_gemini.options(body)  # the cheap checks first: the request may fetch URLs
    reserve(body["max_tokens"])
    gemini_request = to_gemini.generate_request(
        body,
        spec,
        safety_settings=default_safety_settings(svc.config.safety_threshold),
        force_search=svc.config.force_search,
        force_code=svc.config.force_code,
    )
    if body.get("stream"):
        return _stream(spec.model, gemini_request, MessageStream(model=body["model"], **options))
    response = _send(
        lambda payload: svc.upstream.request(
            "POST", f"/v1beta/models/{spec.model}:generateContent", body=payload
        ),
        gemini_request,
    )
    record().served_by(response)
    answer = _answer(response)
    record().set_usage(answer.get("usageMetadata"))
    return _json(from_gemini.message(answer, model=body["model"], **options))


def _stream(model: str, gemini_request: dict, translator: MessageStream) -> Response:
    svc = state()
    upstream = _send(
        lambda payload: svc.upstream.open_stream(
            f"/v1beta/models/{model}:streamGenerateContent", payload, params={"alt": "sse"}
        ),
        gemini_request,
    )
    return stream_response(
        upstream,
        translator,
        content_type=CONTENT_TYPE,
        heartbeat=PING,
        events=_until_done(upstream.events(), translator),
        headers=_headers(),
    )


def _send(call, gemini_request: dict):
    """`call(payload)`; once more with Gemini's own cap when it refuses `max_tokens` as too high.

    Clients written for Claude ask for 32k or 64k output tokens, more than some Gemini models take;
    Anthropic's max_tokens is an upper bound, so the model's cap serves the same request.
    """
    try:
        return call(jsonx.dumps(gemini_request))
    except UpstreamError as err:
        match = _OUTPUT_RANGE.search(err.message) if err.status == 400 else None
        if match is None:
            raise
        config = {**gemini_request["generationConfig"], "maxOutputTokens": int(match[1]) - 1}
        return call(jsonx.dumps({**gemini_request, "generationConfig": config}))


def _until_done(events, translator: MessageStream):
    """Upstream events until the translator needs no more (a stop sequence matched)."""
    for event in events:
        yield event
        if translator.done:
            return


@bp.post("/v1/messages/count_tokens")
def count_tokens():
    body = json_body(_count)
    spec = parse_model_name(body["model"], aliases=state().config.model_aliases)
    record().use_model(spec.model)
    gemini_request = to_gemini.count_tokens_request(body, spec)
    response = state().upstream.request(
        "POST", f"/v1beta/models/{spec.model}:countTokens", body=jsonx.dumps(gemini_request)
    )
    record().served_by(response)
    return _json(from_gemini.count_tokens(_answer(response)))


# -- models -----------------------------------------------------------------------------


def model_info(model: dict, model_name: str | None = None) -> dict:
    """A Gemini Model resource in Anthropic's ModelInfo shape."""
    name = model_name or str(model.get("name", "")).removeprefix("models/")
    info = {
        "type": "model",
        "id": name,
        "display_name": model.get("displayName") or name,
        "created_at": EPOCH,
        "lifecycle": "active",
    }
    if isinstance(model.get("inputTokenLimit"), int):
        info["max_input_tokens"] = model["inputTokenLimit"]
    if isinstance(model.get("outputTokenLimit"), int):
        info["max_tokens"] = model["outputTokenLimit"]
    return info


def _limit() -> int:
    raw = request.args.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: must be an integer from 1 to 1000.", param="limit")
    return limit


def list_models():
    limit = _limit()
    by_id: dict[str, dict] = {}  # keyed, so a repeated entry cannot make a cursor loop
    for m in state().catalog.all():
        if "generateContent" in (m.get("supportedGenerationMethods") or ["generateContent"]):
            info = model_info(m)
            by_id.setdefault(info["id"], info)
    models, ids = list(by_id.values()), list(by_id)
    after, before = request.args.get("after_id"), request.args.get("before_id")
    if before:
        end = ids.index(before) if before in ids else len(ids)
        page = models[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        start = ids.index(after) + 1 if after in ids else 0
        page = models[start : start + limit]
        has_more = start + limit < len(models)
    return _json(
        {
            "data": page,
            "has_more": has_more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    )


def get_model(model: str):
    spec = parse_model_name(model, aliases=state().config.model_aliases)
    found = state().catalog.get("v1beta", spec.model)
    return _json(model_info(found, model.removeprefix("models/")))
