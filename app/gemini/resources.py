"""Gemini's resource routes (files, cached contents, batches, interactions, file search stores, operations,
tuned models, corpora, generated files), forwarded through the pool, each resource its creator's alone."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from .. import jsonx
from ..errors import InvalidRequest, NotFound, UpstreamUnavailable
from ..http.dialects import GEMINI
from ..http.reservations import reserve
from ..state import state
from ..upstream.model_catalog import model_id
from ..upstream.resources import (
    FAMILIES,
    MODEL_ACTIONS,
    Family,
    ResourcePath,
    Unroutable,
    operation_name,
    parse,
)
from ..usage.record import record
from . import listing, relay

SERVED = ", ".join(FAMILIES)


def blueprint(name: str, families: tuple[str, ...]) -> Blueprint:
    """The routes of `families`, for one API version's prefix (`/v1` shares `files` with OpenAI)."""
    bp = Blueprint(name, __name__)
    family = f"<any({','.join(families)}):family>"
    bp.add_url_rule(f"/{family}", "collection", _collection, methods=["GET", "POST"])
    bp.add_url_rule(f"/{family}/<path:sub>", "item", _item, methods=["GET", "POST", "PATCH", "DELETE"])
    return bp


def _collection(family: str) -> Response:
    return forward(family)


def _item(family: str, sub: str) -> Response:
    return forward(f"{family}/{sub}")


def forward(rest: str) -> Response:
    """Relay one call on a resource path (`rest`, after the version) to Gemini."""
    if g.dialect != GEMINI:
        raise NotFound(f"No route for {request.method} {request.path}.")
    try:
        path = parse(rest, request.method)
    except Unroutable as exc:
        raise NotFound(f"{exc} The gateway forwards these families of Gemini's API: {SERVED}.") from None
    version = api_version()
    g.route_label = f"/{version}/{path.label}"
    method = request.method
    if path.resource is None and method == "GET":
        if path.family.list_field is None:
            raise NotFound(f"Gemini has no list of {path.family.name}.")
        return list_owned(path.family, version)
    if path.family.name == "interactions" and path.resource is None:
        return create_interaction(version)
    if path.action in MODEL_ACTIONS and path.resource is not None:
        record().use_model(path.resource)  # a tuned model: the client key's allowed models apply
    body = relay.json_or_none()
    new_cache = method == "POST" and path.resource is None and path.family.name == "cachedContents"
    if new_cache:
        _admit_cache(body)
    served = relay.send(
        method,
        f"/{version}/{rest}",
        body=body,
        owned=(path.resource,) if path.resource else (),
        creates=method == "POST" and path.resource is None,
    )
    ledger = relay.Ledger()
    if served.headers.get("Content-Type", "").startswith("text/event-stream"):
        return relay.stream_events(served, after=_counted(ledger, path))
    if not relay.is_json(served):
        if path.action == "download" and path.resource:
            return relay.download(served, path.resource)
        return relay.stream_bytes(served)
    raw, answer = relay.answer_of(served)
    top_level = path.label == f"{path.family.name}/{{id}}"
    if (method == "POST" and path.resource is None) or (method == "PATCH" and top_level):
        ledger.keep_created(answer, served)
    elif method == "DELETE" and top_level and path.resource:
        ledger.forget(path.resource)
    elif method == "GET" and top_level and path.family.name == "batches" and path.resource:
        model, usage = relay.batch_usage(answer)
        ledger.count_once(path.resource, usage, model)
        ledger.keep_results(answer, served, path.resource)
    elif method == "GET" and top_level and path.family.name == "interactions" and path.resource:
        _count_interaction(ledger, answer)
    if isinstance(answer, dict) and isinstance(answer.get("usageMetadata"), dict):
        usage = answer["usageMetadata"]  # a tuned model's answer, or a new cache's size
        record().set_usage({"promptTokenCount": usage.get("totalTokenCount")} if new_cache else usage)
    return relay.respond(served, raw)


def _admit_cache(body: bytes | None) -> None:
    """A new cache is the client key's model to use, and what it stores is billed as input once (Gemini
    says how much in its `usageMetadata.totalTokenCount`): the client's token limits apply before."""
    model = jsonx.loads(body or b"{}").get("model")
    if model is not None:
        record().use_model(model_id(model))
    reserve(0)


def create_interaction(version: str) -> Response:
    """`POST /interactions`: the model is the client key's to use; the new interaction becomes the
    caller's (a `previous_interaction_id` goes to the key that holds it), its tokens counted once,
    streamed (`stream: true`) event by event as Gemini sends them."""
    body = relay.json_or_none()
    data = jsonx.loads(body or b"{}")
    model = data.get("model")
    if model is not None:
        if not isinstance(model, str) or not model.strip():
            raise InvalidRequest("model must be a model name.", param="model")
        record().use_model(model_id(model))
    config = data.get("generation_config")
    cap = config.get("max_output_tokens") if isinstance(config, dict) else None
    reserve(cap if isinstance(cap, int) and not isinstance(cap, bool) else None)
    served = relay.send("POST", f"/{version}/interactions", body=body)
    ledger = relay.Ledger()
    if served.headers.get("Content-Type", "").startswith("text/event-stream"):

        def after(translator) -> None:
            if translator.interaction is not None and translator.interaction.get("id"):
                ledger.keep_created(translator.interaction, served, interaction=True)
                _count_interaction(ledger, translator.interaction)

        return relay.stream_events(served, after=after)
    raw, answer = relay.answer_of(served)
    ledger.keep_created(answer, served, interaction=True)
    _count_interaction(ledger, answer)
    return relay.respond(served, raw)


def _count_interaction(ledger: relay.Ledger, interaction: object) -> None:
    if not isinstance(interaction, dict) or interaction.get("status") != "completed":
        return
    ident, model = interaction.get("id"), interaction.get("model")
    if isinstance(ident, str):
        usage = relay.interaction_usage(interaction.get("usage"))
        ledger.count_once(f"interactions/{ident}", usage, model if isinstance(model, str) else None)


def _counted(ledger: relay.Ledger, path: ResourcePath):
    """After a relayed stream: an interaction's tokens (a replay of its events), counted once."""

    def after(translator) -> None:
        if path.family.name == "interactions" and translator.interaction is not None:
            _count_interaction(ledger, translator.interaction)

    return after


def list_owned(family: Family, version: str) -> Response:
    """A page of the caller's own resources of one family, from the keys that hold them."""
    owned = state().pool.owned(record().client, family.name)
    size = listing.page_size(request.args.get("pageSize"), family.page_size)
    cursor = listing.decode(request.args.get("pageToken"))
    field = family.list_field
    assert field is not None
    items, following = listing.collect(owned, size, cursor, page_fetcher(family, version))
    answer: dict = {field: items} if items else {}
    if following is not None:
        answer["nextPageToken"] = listing.encode(following)
    return Response(relay.gateway_download_uris(jsonx.dumps_pretty(answer)), content_type=relay.JSON_TYPE)


def page_fetcher(family: Family, version: str) -> listing.Fetch:
    """How `listing.collect` reads one page of a family's list on one key (Gemini's largest pages)."""
    field = family.list_field

    def fetch(key_id: str, token: str | None) -> tuple[list, str | None]:
        params = {"pageSize": str(family.page_size), **({"pageToken": token} if token else {})}
        served = relay.send("GET", f"/{version}/{family.name}", key_id=key_id, params=params, headers={})
        _, answer = relay.answer_of(served)
        if not isinstance(answer, dict):
            raise UpstreamUnavailable("Gemini sent a list that is not a JSON object.")
        entries, following = answer.get(field or ""), answer.get("nextPageToken")
        return (
            entries if isinstance(entries, list) else [],
            following if isinstance(following, str) and following else None,
        )

    return fetch


# -- long-running model operations (Veo) ---------------------------------------------------------


def start_operation(model: str, action: str) -> Response:
    """`models/{model}:predictLongRunning`: the operation it starts (a video being made) is the
    caller's alone, on the key that runs it; the body was checked by the view."""
    version = api_version()
    served = relay.send("POST", f"/{version}/models/{model}:{action}", body=request.get_data(), creates=True)
    raw, answer = relay.answer_of(served)
    relay.Ledger().keep_operation(answer, served, model)
    return relay.respond(served, raw)


def model_operation(model: str, operation: str) -> Response:
    """`models/{model}/operations/{id}`: polled on the key that runs it, by its creator only; once done,
    the videos it made become the caller's files."""
    name = operation_name(model, operation)
    if name is None:
        raise NotFound(f"No operation {operation!r} on models/{model}.")
    record().use_model(model)
    served = relay.send("GET", f"/{api_version()}/{name}", owned=(name,))
    raw, answer = relay.answer_of(served)
    relay.Ledger().keep_videos(answer, served, name)
    return relay.respond(served, raw)


# -- batches: created on a model ------------------------------------------------------------------


def batch_generate_content(model: str) -> Response:
    """`models/{model}:batchGenerateContent`: every inlined request's model must be the client key's
    to use too; the batch becomes the caller's. Its tokens are counted when its results are read."""
    return _create_batch(model, "batchGenerateContent")


def async_batch_embed_content(model: str) -> Response:
    return _create_batch(model, "asyncBatchEmbedContent")


def _create_batch(model: str, action: str) -> Response:
    g.route_label = f"/{api_version()}/models/{{model}}:{action}"
    body = relay.json_or_none()
    models, count = _inlined(jsonx.loads(body or b"{}"))
    for name in models:
        record().use_model(model_id(name))
    reserve(calls=max(count, 1))  # each request is a generate call: the client's limits apply to all
    served = relay.send("POST", f"/{api_version()}/models/{model}:{action}", body=body, creates=True)
    raw, answer = relay.answer_of(served)
    relay.Ledger().keep_created(answer, served)
    return relay.respond(served, raw)


def _inlined(body: dict) -> tuple[list[str], int]:
    """The models a batch's inlined requests name, and how many requests it inlines."""
    batch = body.get("batch")
    config = batch.get("inputConfig") if isinstance(batch, dict) else None
    requests = config.get("requests") if isinstance(config, dict) else None
    entries = requests.get("requests") if isinstance(requests, dict) else None
    found = []
    for entry in entries if isinstance(entries, list) else ():
        inner = entry.get("request") if isinstance(entry, dict) else None
        model = inner.get("model") if isinstance(inner, dict) else None
        if model is not None:
            if not isinstance(model, str):
                raise InvalidRequest(
                    "A batch request's model must be a model name.", param="batch.inputConfig"
                )
            found.append(model)
    return found, len(entries) if isinstance(entries, list) else 0


def api_version() -> str:
    path = request.path.removeprefix("/upload").removeprefix("/download")
    return "v1" if path.startswith("/v1/") else "v1beta"
