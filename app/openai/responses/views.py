"""Responses API routes: create (whole or streamed), count input tokens, compact, and the stored
responses (read, delete, list input items)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, request

from schemas import openai_responses as schemas

from ... import jsonx
from ...errors import InvalidRequest, NotFound, UpstreamUnavailable
from ...http import generate
from ...http.auth import presented_key
from ...http.body import json_body
from ...http.reservations import reserve
from ...state import state
from ...translate import parts as gemini_parts
from ...translate.finish import block_reason
from ...translate.media import UrlMedia
from ...translate.usage import count
from ...upstream import affinity
from ..errors import ContentFiltered, read_answer
from ..stream import HEARTBEAT
from . import from_gemini, to_gemini
from .from_gemini import OutputBuilder, shown, wants_encrypted, whole_response
from .ids import ItemIds, encrypted_summary
from .stored import Record, StoredResponses, conversation, owner_of
from .stream import CONTENT_TYPE, EventSink, ResponseStream

JSON_TYPE = "application/json"

bp = Blueprint("openai_responses", __name__)

_create = schemas.ResponseCreateRequest()
_count = schemas.InputTokensRequest()
_compact = schemas.CompactRequest()
_PAGE_MAX = 100


def _stored() -> StoredResponses:
    """The calling client key's stored responses."""
    config = state().config
    return StoredResponses(
        state().store,
        owner_of(presented_key(request.headers, request.args) or ""),
        days=config.responses_store_days,
        owner_bytes=config.responses_store_bytes,
        max_conversation=config.max_request_bytes,
    )


def _refuse_unsupported(body: dict) -> None:
    for name, why in (
        ("background", "background responses are not offered here; stream instead"),
        ("conversation", "conversations are not kept here; use previous_response_id or send the items"),
        ("prompt", "stored prompt templates are not offered here; send instructions and input"),
    ):
        if body.get(name):
            raise InvalidRequest(f"{name}: {why}.", param=name)


@bp.post("/v1/responses")
def create_response():
    body = json_body(_create)
    _refuse_unsupported(body)
    spec = generate.model_spec(body["model"])
    affinity.prefer_session(body.get("prompt_cache_key"), body.get("user"))  # one per Codex session
    reserve(body.get("max_output_tokens"))
    stored = _stored()
    ids = ItemIds()
    keep = body.get("store") is not False and stored.enabled
    include = wants_encrypted(body.get("include"), keep)
    entries, own_input = conversation(body, ids, stored)
    media = UrlMedia(state().config.media_urls, spec.model)
    gemini_request, names = to_gemini.generate_request(
        body, spec, entries, fetch=media
    )  # may fetch media URLs
    response = from_gemini.shell(body, ids, store=keep)

    def save(final: dict) -> dict:
        if final["status"] == "failed" or stored.save(Record(final, own_input, include)):
            return final
        return {**final, "store": False}

    on_finish = save if keep else None
    if body.get("stream"):
        sink = EventSink(include)
        builder = OutputBuilder(ids, names, sink=sink, parallel_tool_calls=response["parallel_tool_calls"])
        translator = ResponseStream(response, builder, sink, on_finish=on_finish)
        return generate.stream(
            spec,
            gemini_request,
            translator,
            content_type=CONTENT_TYPE,
            heartbeat=HEARTBEAT,
            retry_tool_failures=True,
        )

    def render(answer: generate.Answer) -> bytes:  # may run after whitespace (NONSTREAM_KEEPALIVE)
        final = read_answer(whole_response, answer.object, response, ids, names)
        if on_finish is not None:
            final = on_finish(final)
        return jsonx.dumps(shown(final, include))

    return generate.respond(spec, gemini_request, render, content_type=JSON_TYPE, retry_tool_failures=True)


@bp.post("/v1/responses/input_tokens")
def count_input_tokens():
    body = json_body(_count)
    spec = generate.model_spec(body["model"])
    entries, _ = conversation(body, ItemIds(), _stored())
    media = UrlMedia(state().config.media_urls, spec.model)
    counted = to_gemini.count_tokens_request(body, spec, entries, fetch=media)
    answer = generate.call(spec.model, "countTokens", counted)
    return _json({"object": "response.input_tokens", "input_tokens": count(answer.get("totalTokens"))})


@bp.post("/v1/responses/compact")
def compact():
    """The conversation summarised by the model into one opaque `compaction` item, after the user's
    messages (which are kept as they were): a later request sends them back in `input`."""
    body = json_body(_compact)
    spec = generate.model_spec(body["model"])
    affinity.prefer_session(body.get("prompt_cache_key"), body.get("user"))
    reserve()
    ids = ItemIds()
    entries, _ = conversation(body, ids, _stored())
    media = UrlMedia(state().config.media_urls, spec.model)
    answer = generate.generate(spec, to_gemini.compact_request(body, entries, fetch=media))
    summary = read_answer(_summary_text, answer)
    users = [e.item for e in entries if e.item.get("type") == "message" and e.item.get("role") == "user"]
    compaction = {"id": ids("cmp"), "type": "compaction", "encrypted_content": encrypted_summary(summary)}
    return _json(
        {
            "id": ids.response,
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": [*users, compaction],
            "usage": from_gemini.usage(answer.get("usageMetadata")),
        }
    )


def _summary_text(answer: dict) -> str:
    candidates = answer.get("candidates") or []
    parts = gemini_parts.candidate_parts(candidates[0]) if candidates else []
    text = "".join(gemini_parts.text_of(p) for p in parts if gemini_parts.kind(p) is gemini_parts.Kind.TEXT)
    if text.strip():
        return text.strip()
    reason = block_reason(answer) or (candidates[0].get("finishReason") if candidates else None)
    if reason and reason not in ("STOP", "MAX_TOKENS"):
        raise ContentFiltered(f"Gemini wrote no summary (finish reason {reason}).", param="input")
    raise UpstreamUnavailable("Gemini wrote no summary of the conversation.")


# -- stored responses -----------------------------------------------------------------------------


def _record(response_id: str) -> Record:
    record = _stored().get(response_id)
    if record is None:
        raise NotFound(f"Response with id {response_id!r} not found.", param="response_id")
    return record


def _include() -> list[str]:
    return request.args.getlist("include") + request.args.getlist("include[]")


@bp.get("/v1/responses/<response_id>")
def get_response(response_id: str):
    if request.args.get("stream", "").lower() == "true":
        raise InvalidRequest(
            "stream=true is not offered here: read the stored response whole.", param="stream"
        )
    record = _record(response_id)
    include = record.include_encrypted or wants_encrypted(_include(), True)
    return _json(shown(record.response, include))


@bp.delete("/v1/responses/<response_id>")
def delete_response(response_id: str):
    if not _stored().delete(response_id):
        raise NotFound(f"Response with id {response_id!r} not found.", param="response_id")
    return _json({"id": response_id, "object": "response.deleted", "deleted": True})


@bp.get("/v1/responses/<response_id>/input_items")
def list_input_items(response_id: str):
    """The response's own input items (not those of earlier responses), newest first by default."""
    args = request.args
    try:
        limit = int(args.get("limit", "20"))
    except ValueError:
        raise InvalidRequest("limit must be a whole number from 1 to 100.", param="limit") from None
    if not 1 <= limit <= _PAGE_MAX:
        raise InvalidRequest("limit must be a whole number from 1 to 100.", param="limit")
    order = args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
    items = _record(response_id).input
    if order == "desc":
        items = items[::-1]
    after = args.get("after")
    if after:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise InvalidRequest(f"No input item of this response has the id {after!r}.", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return _json(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )


def _json(obj: dict) -> Response:
    return Response(jsonx.dumps(obj), mimetype=JSON_TYPE)
