"""OpenAI-compatible routes: validate, translate to Gemini, call upstream, translate back."""

from __future__ import annotations

import base64
import time

from flask import Blueprint, Response

from schemas import openai as schemas

from .. import jsonx
from ..errors import InvalidRequest, UpstreamUnavailable
from ..http import generate
from ..http.body import json_body
from ..http.reservations import reserve
from ..state import state
from ..translate.directives import parse_model_name
from ..translate.finish import block_reason
from ..translate.media import UrlMedia
from ..translate.parts import Kind, candidate_parts, inline_media, kind
from ..upstream import affinity
from ..usage.record import record
from . import audio, call_memory, embeddings, from_gemini, images, speech, to_gemini, tool_ids
from .errors import ContentFiltered, read_answer
from .stream import CONTENT_TYPE, HEARTBEAT, ChatCompletionStream

bp = Blueprint("openai", __name__)

JSON_TYPE = "application/json"
_chat = schemas.ChatCompletionRequest()
_embeddings = schemas.EmbeddingsRequest()
_images = schemas.ImagesRequest()
_speech = schemas.SpeechRequest()


@bp.post("/v1/chat/completions")
def chat_completions():
    body = json_body(_chat)
    spec = generate.model_spec(body["model"])
    affinity.prefer_session(body.get("prompt_cache_key"), body.get("user"))
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    reserve(cap * (body.get("n") or 1) if cap else None)
    parallel_tool_calls = body.get("parallel_tool_calls") is not False
    audio_format = to_gemini.audio_format(body, spec.model)
    store, client = state().store, record().client
    known = call_memory.recall(store, client, tool_ids.unresolved(body["messages"]))
    media = UrlMedia(state().config.media_urls, spec.model)
    request = to_gemini.chat_request(
        body, spec, fetch=media, known=known
    )  # may fetch image URLs: after the cheap checks
    created = int(time.time())
    if body.get("stream"):
        translator = ChatCompletionStream(
            model=body["model"],
            created=created,
            n=body.get("n") or 1,
            include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
            parallel_tool_calls=parallel_tool_calls,
            audio_format=audio_format,
            remember=lambda carried: call_memory.remember(store, client, carried),
        )
        return generate.stream(
            spec,
            request,
            translator,
            content_type=CONTENT_TYPE,
            heartbeat=HEARTBEAT,
            retry_tool_failures=True,
        )

    def render(answer: generate.Answer) -> bytes:
        carried: dict[str, tool_ids.CallRef] = {}
        completion = read_answer(
            from_gemini.chat_completion,
            answer.object,
            model=body["model"],
            created=created,
            parallel_tool_calls=parallel_tool_calls,
            audio_format=audio_format,
            carried=carried,
        )
        call_memory.remember(store, client, carried)
        return jsonx.dumps(completion)

    return generate.respond(spec, request, render, content_type=JSON_TYPE, retry_tool_failures=True)


def list_models():
    data, seen = [], set()
    for model in state().catalog.all():
        name = str(model.get("name", "")).removeprefix("models/")
        if name and name not in seen:
            seen.add(name)
            data.append(_model(name))
    return _json({"object": "list", "data": data})


def get_model(model: str):
    spec = parse_model_name(model, aliases=state().config.model_aliases)
    state().catalog.get("v1beta", spec.model)  # 404 from Gemini for an unknown model
    return _json(_model(model.removeprefix("models/")))


def _model(name: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": "google"}


@bp.post("/v1/embeddings")
def create_embeddings():
    body = json_body(_embeddings)
    model = embeddings.model_name(body["model"])
    record().use_model(model)
    texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
    batches = embeddings.batches(texts, model, body.get("dimensions"))
    reserve(0, calls=len(batches))  # each batch is a call to Gemini
    values: list[list[float]] = []
    tokens = 0
    for batch in batches:
        answer = generate.call(model, "batchEmbedContents", batch)
        values.extend(read_answer(embeddings.vectors, answer, len(batch["requests"])))
        tokens += from_gemini.usage(answer.get("usageMetadata"))["prompt_tokens"]
    record().set_usage({"promptTokenCount": tokens})
    return _json(embeddings.embeddings_response(values, body["model"], body.get("encoding_format"), tokens))


@bp.post("/v1/images/generations")
def generate_images():
    body = json_body(_images)
    model = images.model_name(body.get("model"))
    record().use_model(model)
    n = body.get("n") or 1
    created = int(time.time())
    found: list[tuple[str, str]] = []  # (MIME type, base64 data)
    usage: dict[str, int] | None = None
    if images.kind(model) == "imagen":
        ratio = images.aspect_ratio(body.get("size"), images.IMAGEN_RATIOS)
        answer = generate.call(model, "predict", images.predict_request(body["prompt"], n, ratio))
        found = read_answer(images.from_predict, answer)
    else:
        # Gemini image models draw one image per call.
        ratio = images.aspect_ratio(body.get("size"), images.GEMINI_RATIOS)
        reserve(calls=n)
        request = images.generate_request(body["prompt"], ratio)
        usage = {}
        for _ in range(n):
            answer = generate.call(model, "generateContent", request, safety=True)
            found.extend(read_answer(images.from_generate, answer))
            meta = answer.get("usageMetadata")
            for key, value in meta.items() if isinstance(meta, dict) else ():
                if isinstance(value, int):
                    usage[key] = usage.get(key, 0) + value
        record().set_usage(usage)
    return _json(images.images_response(found, created, body.get("response_format"), usage))


@bp.post("/v1/audio/speech")
def create_speech():
    body = json_body(_speech)
    model = speech.tts_model(body["model"])
    record().use_model(model)
    reserve()
    offered = audio.formats()
    fmt = body.get("response_format") or ("mp3" if "mp3" in offered else "wav")
    if fmt not in offered:
        raise InvalidRequest(
            f"response_format {fmt!r} is not offered here; choose one of {', '.join(offered)}.",
            param="response_format",
        )
    answer = generate.call(model, "generateContent", speech.speech_request(body), safety=True)
    pcm, rate = read_answer(_speech_pcm, answer)
    data = audio.encode(pcm, rate, fmt)
    if body.get("stream_format") == "sse":
        usage = from_gemini.usage(answer.get("usageMetadata"))
        events = (
            {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")},
            {
                "type": "speech.audio.done",
                "usage": {
                    "input_tokens": usage["prompt_tokens"],
                    "output_tokens": usage["completion_tokens"],
                    "total_tokens": usage["total_tokens"],
                },
            },
        )
        return Response(
            b"".join(b"data: " + jsonx.dumps(e) + b"\n\n" for e in events), content_type=CONTENT_TYPE
        )
    return Response(data, content_type=audio.CONTENT_TYPES[fmt])


def _speech_pcm(answer: dict) -> tuple[bytes, int]:
    pcm = bytearray()
    rate = audio.DEFAULT_RATE
    reason = block_reason(answer)
    for candidate in answer.get("candidates") or []:
        reason = candidate.get("finishReason") or reason
        for part in candidate_parts(candidate):
            if kind(part) is not Kind.INLINE_DATA:
                continue
            mime, data = inline_media(part)
            found = audio.pcm_rate(mime)
            if found is None:
                raise UpstreamUnavailable(f"Gemini sent audio as {mime!r}, not PCM.")
            rate = found
            pcm += base64.b64decode(data)
    if not pcm:
        if reason and reason != "STOP":
            raise ContentFiltered(f"Gemini returned no audio (finish reason {reason}).", param="input")
        raise UpstreamUnavailable("Gemini returned no audio.")
    return bytes(pcm), rate


def _json(obj: dict) -> Response:
    return Response(jsonx.dumps(obj), mimetype=JSON_TYPE)
