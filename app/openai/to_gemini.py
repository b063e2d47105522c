"""OpenAI chat completion requests as Gemini `generateContent` requests (plain dicts in, plain dicts out)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import NamedTuple

from schemas.fields import INT32_MAX, INT32_MIN

from .. import budget
from ..errors import InvalidRequest
from ..translate.contents import content_parts, merge_turns, text_parts
from ..translate.directives import ModelSpec
from ..translate.json_schema import json_output
from ..translate.media import Fetch, inline_data_from_url
from ..translate.signatures import CallRef, ensure_call_signatures
from ..translate.thinking import thinking_config
from . import audio, speech, tool_ids
from .attachments import base64_part, file_part, media_part, text_with_images
from .functions import MODES, arguments, declaration, response_part, restrict

_AUDIO_TYPES = {"mp3": "audio/mp3", "wav": "audio/wav", "m4a": "audio/aac", "pcm16": "audio/pcm"}
_CHAT_AUDIO_FORMATS = {
    "wav": "wav",
    "pcm16": "pcm",
    "mp3": "mp3",
    "flac": "flac",
    "opus": "opus",
    "aac": "aac",
}


NO_CALLS: Mapping[str, CallRef] = MappingProxyType({})  # a history whose ids the store knows nothing of


class Call(NamedTuple):
    name: str
    gemini_id: str | None
    position: int  # index in its assistant turn: Gemini wants the answers in call order


@budget.per_request
def chat_request(
    body: dict,
    spec: ModelSpec,
    *,
    fetch: Fetch = inline_data_from_url,
    known: Mapping[str, CallRef] | None = None,
) -> dict:
    """The Gemini request for a validated chat completion body (model directives not yet applied).
    `known` holds what the store keeps for the history's short tool call ids (call_memory)."""
    system, contents = convert_messages(body["messages"], fetch, known or NO_CALLS)
    request: dict = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    google = google_options(body)

    declarations = function_declarations(body)
    tool_config = None
    if declarations:
        declarations, tool_config = tool_choice(body, declarations)
    tools: list[dict] = [{"functionDeclarations": declarations}] if declarations else []
    if body.get("web_search_options") is not None:
        tools.append({"googleSearch": {}})
    if tools:
        request["tools"] = tools
    if tool_config:
        request["toolConfig"] = tool_config

    generation = generation_config(body, spec, google)
    if generation:
        request["generationConfig"] = generation
    if isinstance(google.get("cached_content"), str):
        request["cachedContent"] = google["cached_content"]
    if isinstance(google.get("safety_settings"), list):
        request["safetySettings"] = google["safety_settings"]
    return request


def audio_format(body: dict, model: str) -> str | None:
    """The audio format a chat answer's `message.audio` is encoded in, when the answer is speech."""
    if "audio" not in (body.get("modalities") or []) and "-tts" not in model:
        return None
    requested = (body.get("audio") or {}).get("format") or "wav"
    fmt = _CHAT_AUDIO_FORMATS.get(requested)
    if fmt not in audio.formats():
        offered = [name for name, ours in _CHAT_AUDIO_FORMATS.items() if ours in audio.formats()]
        raise InvalidRequest(
            f"Audio format {requested!r} is not offered here; choose one of {', '.join(offered)}.",
            param="audio.format",
        )
    return fmt


def google_options(body: dict) -> dict:
    """Google's extension block: `extra_body.google` as Google documents it, or a top-level `google`."""
    for holder in (body.get("extra_body"), body):
        google = holder.get("google") if isinstance(holder, dict) else None
        if isinstance(google, dict):
            return google
    return {}


# -- messages -------------------------------------------------------------------------------------


def convert_messages(
    messages: list, fetch: Fetch, known: Mapping[str, CallRef] = NO_CALLS
) -> tuple[list[dict], list[dict]]:
    """(systemInstruction parts, contents) for OpenAI messages."""
    system: list[dict] = []
    turns: list[tuple[str, list[dict]]] = []
    calls: dict[str, Call] = {}
    i = 0
    while i < len(messages):
        msg = messages[i]
        role = msg["role"]
        param = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_text_only(msg.get("content"), param))
        elif role == "user":
            turns.append(("user", user_parts(msg.get("content"), param, fetch)))
        elif role == "assistant":
            turns.append(("model", assistant_parts(msg, param, calls, known)))
        else:  # tool / function: answers to the calls of one turn travel together, in call order
            run = []
            while i < len(messages) and messages[i]["role"] in ("tool", "function"):
                run.append(function_response(messages[i], f"messages[{i}]", calls, fetch, known))
                i += 1
            run.sort(key=lambda answer: answer[0])
            parts = [answer[1] for answer in run] + [p for answer in run for p in answer[2]]
            turns.append(("user", parts))
            continue
        i += 1
    contents = merge_turns(turns)
    if not contents:
        raise InvalidRequest("messages holds no user, assistant or tool content to send.", param="messages")
    ensure_call_signatures(contents)
    return system, contents


def _text_only(content, param: str) -> list[dict]:
    if content is None or isinstance(content, str):
        return text_parts(content)
    parts = []
    for j, part in enumerate(content):
        text = part if isinstance(part, str) else part.get("text")
        if not isinstance(text, str) or part_type(part) != "text":
            raise InvalidRequest(
                "System and developer messages may only hold text parts.", param=f"{param}.content[{j}]"
            )
        if text:
            parts.append({"text": text})
    return parts


def part_type(part) -> str:
    return "text" if isinstance(part, str) else part.get("type", "")


def user_parts(content, param: str, fetch: Fetch) -> list[dict]:
    return content_parts(content, f"{param}.content", lambda part, where: content_part(part, where, fetch))


def content_part(part, param: str, fetch: Fetch) -> dict | None:
    """One OpenAI content part as a Gemini part (None for an empty text)."""
    kind = part_type(part)
    if kind in ("text", "refusal"):
        text = part if isinstance(part, str) else part[kind]
        return {"text": text} if text else None
    if kind == "image_url":
        image = part["image_url"]
        url = image["url"] if isinstance(image, dict) else image
        return media_part(url.strip(), f"{param}.image_url.url", fetch)
    if kind == "input_audio":
        sound = part["input_audio"]
        data = sound["data"]
        if data.startswith("data:"):
            return {"inlineData": fetch(data, param=f"{param}.input_audio.data")}
        fmt = (sound.get("format") or "wav").lower()
        return {
            "inlineData": base64_part(
                data, _AUDIO_TYPES.get(fmt, f"audio/{fmt}"), f"{param}.input_audio.data"
            )
        }
    return file_part(part["file"], f"{param}.file", fetch)  # kind == "file", checked by the schema


def assistant_parts(
    msg: dict, param: str, calls: dict[str, Call], known: Mapping[str, CallRef] = NO_CALLS
) -> list[dict]:
    parts: list[dict] = []
    content = msg.get("content")
    if isinstance(content, str):
        parts.extend(text_with_images(content))
    elif isinstance(content, list):
        for j, item in enumerate(content):
            if part_type(item) not in ("text", "refusal"):
                raise InvalidRequest(
                    "Assistant messages may only hold text parts.", param=f"{param}.content[{j}]"
                )
            parts.extend(text_with_images(item if isinstance(item, str) else item[part_type(item)]))
    function_calls = []
    for j, call in enumerate(msg.get("tool_calls") or []):
        call_param = f"{param}.tool_calls[{j}]"
        if call.get("type") not in (None, "function"):
            raise InvalidRequest(
                f"Tool call type {call['type']!r} is not supported.", param=f"{call_param}.type"
            )
        ref = known.get(call["id"]) or tool_ids.decode(call["id"])
        name = call["function"]["name"]
        function_call = {
            "name": name,
            "args": arguments(call["function"].get("arguments"), f"{call_param}.function.arguments"),
        }
        if ref.gemini_id:
            function_call["id"] = ref.gemini_id
        part: dict = {"functionCall": function_call}
        signature = tool_ids.extra_signature(call) or ref.signature
        if signature:
            part["thoughtSignature"] = signature
        function_calls.append(part)
        calls[call["id"]] = Call(name, ref.gemini_id, j)
    legacy = msg.get("function_call")
    if legacy and not function_calls:
        function_calls.append(
            {
                "functionCall": {
                    "name": legacy["name"],
                    "args": arguments(legacy.get("arguments"), f"{param}.function_call.function.arguments"),
                }
            }
        )
    return parts + function_calls


def function_response(
    msg: dict, param: str, calls: dict[str, Call], fetch: Fetch, known: Mapping[str, CallRef] = NO_CALLS
) -> tuple[int, dict, list[dict]]:
    """(position of the call it answers, the functionResponse part, extra media parts) for a tool message."""
    if msg["role"] == "function":  # the deprecated form: answers by name
        name = msg.get("name")
        if not name:
            raise InvalidRequest("A function message needs the function's name.", param=f"{param}.name")
        call = Call(name, None, 1 << 30)
    else:
        call_id = msg.get("tool_call_id")
        if not call_id:
            raise InvalidRequest(
                "A tool message needs the tool_call_id it answers.", param=f"{param}.tool_call_id"
            )
        found = calls.get(call_id)
        if found is None and not msg.get("name"):
            raise InvalidRequest(
                f"No assistant tool call with id {call_id!r} precedes this tool message.",
                param=f"{param}.tool_call_id",
            )
        ref = known.get(call_id) or tool_ids.decode(call_id)
        call = found or Call(msg["name"], ref.gemini_id, 1 << 30)
    convert = partial(content_part, fetch=fetch)
    part, media = response_part(call.name, call.gemini_id, msg.get("content"), f"{param}.content", convert)
    return call.position, part, media


# -- tools ----------------------------------------------------------------------------------------


def function_declarations(body: dict) -> list[dict]:
    declarations = []
    for i, tool in enumerate(body.get("tools") or []):
        kind = tool.get("type") or "function"
        if kind != "function":
            raise InvalidRequest(
                f"Tool type {kind!r} is not supported; only function tools are.", param=f"tools[{i}].type"
            )
        if not isinstance(tool.get("function"), dict):
            raise InvalidRequest(
                "A function tool needs its function definition.", param=f"tools[{i}].function"
            )
        declarations.append(_declaration(tool["function"], f"tools[{i}].function"))
    for i, function in enumerate(body.get("functions") or []):
        declarations.append(_declaration(function, f"functions[{i}]"))
    return declarations


def _declaration(function: dict, param: str) -> dict:
    return declaration(function["name"], function.get("description"), function.get("parameters"), param=param)


def tool_choice(body: dict, declarations: list[dict]) -> tuple[list[dict], dict | None]:
    """(declarations, toolConfig) for `tool_choice`, or the deprecated `function_call`."""
    choice = body.get("tool_choice")
    if choice is None:
        choice = body.get("function_call")
        if isinstance(choice, dict):
            choice = {"type": "function", "function": choice}
    if choice is None:
        return declarations, None
    if isinstance(choice, str):
        return declarations, {"functionCallingConfig": {"mode": MODES[choice]}}
    if choice.get("type", "function") == "function":
        names = [choice["function"]["name"]]
        mode = "required"
    else:
        allowed = choice["allowed_tools"]
        names = [
            t["function"]["name"]
            for t in allowed["tools"]
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        mode = allowed["mode"]
    return restrict(declarations, names, mode)


# -- generation config ----------------------------------------------------------------------------


def generation_config(body: dict, spec: ModelSpec, google: dict) -> dict:
    config: dict = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        # An upper bound: past Gemini's int32 it means "no limit" (Gemini then names the model's own cap).
        config["maxOutputTokens"] = min(max_tokens, INT32_MAX)
    for name, key in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed")):
        if body.get(name) is not None:
            config[key] = body[name]
    if not INT32_MIN <= config.get("seed", 0) <= INT32_MAX:
        raise InvalidRequest(f"seed must be a 32-bit integer (at most {INT32_MAX} in size).", param="seed")
    if body.get("n") and body["n"] > 1:
        config["candidateCount"] = body["n"]
    # Clients send zero penalties by default; Gemini refuses any penalty on models without them.
    for name, key in (("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if body.get(name):
            config[key] = body[name]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    if body.get("logprobs"):
        config["responseLogprobs"] = True
        if body.get("top_logprobs"):
            config["logprobs"] = body["top_logprobs"]
    config.update(_response_format(body.get("response_format"), spec.model))
    config.update(_modalities(body, spec.model))
    thinking = _thinking(body, spec, google)
    if thinking:
        config["thinkingConfig"] = thinking
    image = google.get("image_config")
    if isinstance(image, dict):
        config["imageConfig"] = {_camel(k): v for k, v in image.items()}
    return config


def _response_format(fmt: dict | None, model: str) -> dict:
    if not fmt or fmt["type"] == "text":
        return {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt["type"] == "json_schema" else None
    return json_output(schema, model, param="response_format.json_schema.schema")


def _modalities(body: dict, model: str) -> dict:
    modalities = [m.lower() for m in body.get("modalities") or [] if isinstance(m, str)]
    if "audio" in modalities or "-tts" in model:
        out: dict = {"responseModalities": ["AUDIO"]}
        voice = (body.get("audio") or {}).get("voice")
        if voice is not None:
            out["speechConfig"] = speech.speech_config(voice, param="audio.voice")
        return out
    if "image" in modalities:
        return {"responseModalities": ["TEXT", "IMAGE"]}
    return {}


def _thinking(body: dict, spec: ModelSpec, google: dict) -> dict | None:
    given = google.get("thinking_config")
    given = given if isinstance(given, dict) else {}
    budget = _pick(given, "thinking_budget", "thinkingBudget")
    include = _pick(given, "include_thoughts", "includeThoughts")
    level = _pick(given, "thinking_level", "thinkingLevel")
    effort = body.get("reasoning_effort")
    param = "reasoning_effort"
    if effort is None and isinstance(level, str):
        effort, param = level.lower(), "extra_body.google.thinking_config.thinking_level"
    if spec.effort is not None:
        effort, param = spec.effort, "model"
    # Asking for reasoning means wanting to see it: chat UIs show `reasoning_content`.
    if include is None and ((effort not in (None, "none")) or (budget not in (None, 0))):
        include = True
    if budget is not None:
        param = "extra_body.google.thinking_config.thinking_budget"
    return thinking_config(spec.model, effort=effort, budget=budget, include_thoughts=include, param=param)


def _pick(mapping: dict, *names: str):
    for name in names:
        if mapping.get(name) is not None:
            return mapping[name]
    return None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)
