"""Anthropic routes: `/v1/messages` (whole and streamed), `count_tokens`, and the model list in Anthropic's shape."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from schemas import anthropic as schemas

from .. import jsonx
from ..errors import InvalidRequest
from ..http import generate
from ..http.body import json_body
from ..http.reservations import reserve
from ..state import state
from ..translate.directives import parse_model_name
from ..translate.media import UrlMedia
from ..upstream import affinity
from ..upstream.call import estimate_tokens
from . import from_gemini, to_gemini
from .stream import CONTENT_TYPE, PING, MessageStream

bp = Blueprint("anthropic", __name__)

JSON_TYPE = "application/json"
_messages = schemas.MessagesRequest()
_count = schemas.CountTokensRequest()
EPOCH = "1970-01-01T00:00:00Z"  # Gemini does not publish release dates; Anthropic allows the epoch


def _headers() -> dict:
    return {"request-id": g.get("request_id", "")}


def _json(obj, status: int = 200) -> Response:
    return Response(jsonx.dumps(obj), status=status, content_type=JSON_TYPE, headers=_headers())


@bp.post("/v1/messages")
def create_message():
    body = json_body(_messages)
    spec = generate.model_spec(body["model"])
    affinity.prefer_session((body.get("metadata") or {}).get("user_id"))
    options = to_gemini.options(body)  # the cheap checks first: the request may fetch URLs
    reserve(body["max_tokens"])
    gemini_request = to_gemini.generate_request(
        body, spec, fetch=UrlMedia(state().config.media_urls, spec.model)
    )
    if body.get("stream"):
        translator = MessageStream(
            model=body["model"], estimated_input_tokens=estimate_tokens(gemini_request), **options
        )
        return generate.stream(
            spec,
            gemini_request,
            translator,
            content_type=CONTENT_TYPE,
            heartbeat=PING,
            headers=_headers(),
            until=lambda: translator.done,  # a stop sequence matched: nothing more is needed
            retry_tool_failures=True,
        )

    def render(answer: generate.Answer) -> bytes:
        return jsonx.dumps(from_gemini.message(answer.object, model=body["model"], **options))

    return generate.respond(
        spec, gemini_request, render, content_type=JSON_TYPE, headers=_headers(), retry_tool_failures=True
    )


@bp.post("/v1/messages/count_tokens")
def count_tokens():
    body = json_body(_count)
    spec = generate.model_spec(body["model"])
    media = UrlMedia(state().config.media_urls, spec.model)
    answer = generate.call(spec.model, "countTokens", to_gemini.count_tokens_request(body, spec, fetch=media))
    return _json(from_gemini.count_tokens(answer))


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
