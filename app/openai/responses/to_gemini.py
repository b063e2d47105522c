"""Responses API requests as Gemini `generateContent` requests (plain dicts in, plain dicts out).

The conversation arrives as input items (the stored ones of `previous_response_id` first, already
expanded), each with the request field that names it in errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from schemas.fields import INT32_MAX
from schemas.openai_responses import SKIPPED_ITEMS

from ... import budget
from ...errors import InvalidRequest
from ...translate.contents import content_parts, merge_turns
from ...translate.directives import ModelSpec, apply_directives
from ...translate.json_schema import json_output
from ...translate.media import Fetch, inline_data_from_url
from ...translate.signatures import ensure_call_signatures
from ...translate.thinking import thinking_config
from .. import tool_ids
from ..attachments import file_part, media_part, text_with_images
from ..functions import MODES, arguments, declaration, response_part, restrict
from .ids import signature_of, summary_of

SEARCH_TOOLS = frozenset(
    ("web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11")
)
CODE_TOOLS = frozenset(("code_interpreter",))
# Gemini's function names: a letter or underscore, then letters, digits, _ . : - (64 at most).
_GEMINI_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
_CUSTOM_INPUT = "input"  # the one string parameter a custom tool is declared with
SUMMARY_HEADING = "A summary of the conversation before this point:"
COMPACT_INSTRUCTION = (
    "Summarise the conversation above for whoever continues it without seeing it: the user's goals "
    "and requests in their own words where they matter, what has been done (files read or changed, "
    "commands run and what they showed), decisions and their reasons, open problems, and what remains "
    "to do next. Keep every name, path, number and identifier needed to carry on. Write the summary "
    "only, as plain text."
)


class Entry(NamedTuple):
    """One input item and the request field that names it (for errors)."""

    item: dict
    param: str


@dataclass
class ToolNames:
    """What the answer's reader needs to know of the declared tools, by Gemini function name."""

    custom: set[str] = field(default_factory=set)  # answered as custom_tool_call items
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> (namespace, name)

    def split(self, gemini_name: str) -> tuple[str | None, str]:
        """(namespace, name) of a function Gemini called."""
        found = self.namespaced.get(gemini_name)
        return found if found else (None, gemini_name)


def gemini_name(name: str, namespace: str | None) -> str:
    return f"{namespace}.{name}" if namespace else name


class Call(NamedTuple):
    name: str  # the Gemini function name
    gemini_id: str | None
    position: int  # in its model turn: Gemini wants the answers in call order


# -- the request ------------------------------------------------------------------------------------


@budget.per_request
def generate_request(
    body: dict, spec: ModelSpec, entries: Sequence[Entry], *, fetch: Fetch = inline_data_from_url
) -> tuple[dict, ToolNames]:
    """The Gemini request for a validated create body and its expanded conversation (model
    directives not yet applied), and the declared tools' names for reading the answer."""
    request, names = _prompt(body, entries, fetch)
    generation = generation_config(body, spec)
    if generation:
        request["generationConfig"] = generation
    return request, names


@budget.per_request
def count_tokens_request(
    body: dict, spec: ModelSpec, entries: Sequence[Entry], *, fetch: Fetch = inline_data_from_url
) -> dict:
    """countTokens wraps a whole request, so the instructions and the tools are counted too."""
    request = apply_directives(spec, _prompt(body, entries, fetch)[0])
    request.pop("generationConfig", None)  # a name's thinking level changes no count
    return {"generateContentRequest": {"model": f"models/{spec.model}", **request}}


@budget.per_request
def compact_request(body: dict, entries: Sequence[Entry], *, fetch: Fetch = inline_data_from_url) -> dict:
    """A request that has the model summarise the conversation: the declared tools are kept (the
    history's calls refer to them) but may not be called, and the summary is asked for last."""
    request, _ = _prompt(body, entries, fetch)
    request["contents"] = merge_turns(
        [(c["role"], c["parts"]) for c in request["contents"]] + [("user", [{"text": COMPACT_INSTRUCTION}])]
    )
    request.pop("systemInstruction", None)  # the client's instructions are for the work, not the summary
    if "tools" in request:
        request["toolConfig"] = {"functionCallingConfig": {"mode": "NONE"}}
    return request


def _prompt(body: dict, entries: Sequence[Entry], fetch: Fetch) -> tuple[dict, ToolNames]:
    system, contents = convert_items(entries, fetch)
    instructions = body.get("instructions")
    if instructions:
        system.insert(0, {"text": instructions})
    request: dict = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    tools, tool_config, names = tools_config(body)
    if tools:
        request["tools"] = tools
    if tool_config:
        request["toolConfig"] = tool_config
    return request, names


# -- input items --------------------------------------------------------------------------------------


class _ModelTurn:
    """One model turn's parts, with the thought signatures of its reasoning items placed when it ends:
    each on the next part that has none, or, for a signature that came last (Gemini 3 sends one after
    the text), on the last part. A signature a call's id already carries is not placed twice."""

    def __init__(self) -> None:
        self.entries: list[dict | str] = []  # parts, and signatures (str) where reasoning items stood

    def add(self, part: dict) -> None:
        self.entries.append(part)

    def signature(self, signature: str) -> None:
        self.entries.append(signature)

    def parts(self) -> list[dict]:
        carried = {e.get("thoughtSignature") for e in self.entries if isinstance(e, dict)}
        parts: list[dict] = []
        pending: list[str] = []
        for entry in self.entries:
            if isinstance(entry, str):
                if entry not in carried and entry not in pending:
                    pending.append(entry)
                continue
            if pending and "thoughtSignature" not in entry:
                entry["thoughtSignature"] = pending.pop(0)
            parts.append(entry)
        if pending and parts and "thoughtSignature" not in parts[-1]:
            parts[-1]["thoughtSignature"] = pending[0]
        self.entries = []
        return parts


def convert_items(entries: Sequence[Entry], fetch: Fetch) -> tuple[list[dict], list[dict]]:
    """(systemInstruction parts, contents) for a conversation's input items."""
    system: list[dict] = []
    turns: list[tuple[str, list[dict]]] = []
    calls: dict[str, Call] = {}
    model = _ModelTurn()
    position = 0  # of the next call in the current model turn

    def end_model_turn() -> None:
        nonlocal position
        turns.append(("model", model.parts()))
        position = 0

    i = 0
    while i < len(entries):
        item, param = entries[i]
        kind = item.get("type", "message")
        if kind in ("function_call_output", "custom_tool_call_output"):
            end_model_turn()
            run = []  # the answers to one turn's calls travel together, in call order
            while i < len(entries) and entries[i].item.get("type") in (
                "function_call_output",
                "custom_tool_call_output",
            ):
                run.append(_function_response(entries[i], calls, fetch))
                i += 1
            run.sort(key=lambda answer: answer[0])
            turns.append(("user", [answer[1] for answer in run] + [p for answer in run for p in answer[2]]))
            continue
        i += 1
        if kind in SKIPPED_ITEMS:
            continue
        if kind == "message":
            role = item["role"]
            if role in ("system", "developer"):
                system.extend(_text_only(item.get("content"), param))
            elif role == "user":
                end_model_turn()
                parts = content_parts(
                    item.get("content"),
                    f"{param}.content",
                    lambda part, where: content_part(part, where, fetch),
                )
                turns.append(("user", parts))
            else:
                for part in _assistant_parts(item.get("content"), f"{param}.content"):
                    model.add(part)
        elif kind == "reasoning":
            signature = signature_of(item.get("encrypted_content"))
            if signature:
                model.signature(signature)
        elif kind in ("function_call", "custom_tool_call"):
            part, call_id, call = _function_call(item, param, position)
            model.add(part)
            calls[call_id] = call
            position += 1
        elif kind in ("compaction", "compaction_summary"):
            summary = summary_of(item.get("encrypted_content"), param=f"{param}.encrypted_content")
            if summary:  # another service's compaction is opaque: nothing to expand
                end_model_turn()
                turns.append(("user", [{"text": f"{SUMMARY_HEADING}\n\n{summary}"}]))
        else:  # item_reference: resolved before translation, so one left here names nothing
            raise InvalidRequest(f"Input item {item.get('id')!r} was not found.", param=f"{param}.id")
    end_model_turn()
    contents = merge_turns(turns)
    if not contents:
        raise InvalidRequest("input holds no user, assistant or tool content to send.", param="input")
    ensure_call_signatures(contents)
    return system, contents


def _texts(content: str | list | None) -> list[tuple[str, str]]:
    """(part type, text) of a message's content: a string is one text part."""
    if content is None:
        return []
    if isinstance(content, str):
        return [("input_text", content)]
    return [(p["type"], p.get("refusal") if p["type"] == "refusal" else p.get("text")) for p in content]


def _text_only(content: str | list | None, param: str) -> list[dict]:
    parts = []
    for j, (kind, text) in enumerate(_texts(content)):
        if kind not in ("input_text", "output_text"):
            raise InvalidRequest(
                "System and developer messages may only hold text parts.", param=f"{param}.content[{j}].type"
            )
        if text:
            parts.append({"text": text})
    return parts


def _assistant_parts(content: str | list | None, param: str) -> list[dict]:
    parts = []
    for j, (kind, text) in enumerate(_texts(content)):
        if kind not in ("input_text", "output_text", "refusal"):
            raise InvalidRequest("Assistant messages may only hold text parts.", param=f"{param}[{j}].type")
        parts.extend(text_with_images(text or ""))
    return parts


def content_part(part, param: str, fetch: Fetch) -> dict | None:
    """One input content part as a Gemini part (None for an empty text)."""
    kind = part["type"]
    if kind in ("input_text", "output_text", "refusal"):
        text = part["refusal"] if kind == "refusal" else part["text"]
        return {"text": text} if text else None
    if kind == "input_image":  # `detail` has no Gemini equivalent per part: the model picks
        url = part.get("image_url")
        if isinstance(url, str):
            return media_part(url.strip(), f"{param}.image_url", fetch)
        return file_part({"file_id": part["file_id"]}, param, fetch)
    return file_part(part, param, fetch, url_field="file_url")  # input_file, checked by the schema


def _function_call(item: dict, param: str, position: int) -> tuple[dict, str, Call]:
    name = gemini_name(item["name"], item.get("namespace"))
    if item["type"] == "custom_tool_call":
        args = {_CUSTOM_INPUT: item["input"]}
    else:
        args = arguments(item.get("arguments"), f"{param}.arguments")
    ref = tool_ids.decode(item["call_id"])
    call: dict = {"name": name, "args": args}
    if ref.gemini_id:
        call["id"] = ref.gemini_id
    part: dict = {"functionCall": call}
    if ref.signature:
        part["thoughtSignature"] = ref.signature
    return part, item["call_id"], Call(name, ref.gemini_id, position)


def _function_response(entry: Entry, calls: dict[str, Call], fetch: Fetch) -> tuple[int, dict, list[dict]]:
    """(position of the call it answers, the functionResponse part, media parts) for an output item."""
    item, param = entry
    call = calls.get(item["call_id"])
    if call is None:
        raise InvalidRequest(
            f"No function_call or custom_tool_call with call_id {item['call_id']!r} precedes this output.",
            param=f"{param}.call_id",
        )
    convert = partial(content_part, fetch=fetch)
    part, media = response_part(call.name, call.gemini_id, item.get("output"), f"{param}.output", convert)
    return call.position, part, media


# -- tools ------------------------------------------------------------------------------------------------


def tools_config(body: dict) -> tuple[list[dict], dict | None, ToolNames]:
    """(Gemini tools, toolConfig, the declared names) for `tools` and `tool_choice`.

    Hosted search and code execution go with functions only where Gemini takes the mix, and Gemini
    2.x refuses it: a request that declares functions (Codex always sends `web_search` beside its
    own tools) keeps the functions, as the directives do with the operator's forced tools.
    """
    names = ToolNames()
    declarations: list[dict] = []
    hosted: list[dict] = []
    for i, tool in enumerate(body.get("tools") or []):
        kind, param = tool["type"], f"tools[{i}]"
        if kind in ("function", "custom"):
            declarations.append(_declare(tool, None, param, names))
        elif kind == "namespace":
            for j, inner in enumerate(tool["tools"]):
                declarations.append(_declare(inner, tool["name"], f"{param}.tools[{j}]", names))
        elif kind in SEARCH_TOOLS:
            hosted.append({"googleSearch": {}})
        elif kind in CODE_TOOLS:
            hosted.append({"codeExecution": {}})
        elif kind == "tool_search":
            continue  # a client-run search over deferred tools: every tool is declared already
        else:
            raise InvalidRequest(
                f"Tool type {kind!r} is not supported here: use function, custom or namespace tools, "
                "web_search (Google Search) or code_interpreter (code execution).",
                param=f"{param}.type",
            )
    seen: set[str] = set()
    for d in declarations:
        if d["name"] in seen:
            raise InvalidRequest(f"Two tools are named {d['name']!r}.", param="tools")
        seen.add(d["name"])
    tool_config = None
    if declarations:
        declarations, tool_config = _tool_choice(body.get("tool_choice"), declarations)
    if declarations:
        return [{"functionDeclarations": declarations}], tool_config, names
    unique = [t for k, t in enumerate(hosted) if t not in hosted[:k]]
    return unique, None, names


def _declare(tool: dict, namespace: str | None, param: str, names: ToolNames) -> dict:
    name = gemini_name(tool["name"], namespace)
    if not _GEMINI_NAME.match(name):
        raise InvalidRequest(
            f"Tool name {name!r} cannot be a Gemini function name: use letters, digits, _ . : - "
            "(64 at most, starting with a letter or _).",
            param=f"{param}.name",
        )
    if namespace:
        names.namespaced[name] = (namespace, tool["name"])
    if tool["type"] == "function":
        return declaration(name, tool.get("description"), tool.get("parameters"), param=param)
    names.custom.add(name)
    return _custom_declaration(name, tool)


def _custom_declaration(name: str, tool: dict) -> dict:
    """A custom (free-text) tool as a function of one string: Gemini cannot hold the model to a
    grammar, so the grammar is shown to it in the description instead."""
    description = tool.get("description") or ""
    fmt = tool.get("format") or {}
    if fmt.get("type") == "grammar":
        syntax = "regular expression" if fmt.get("syntax") == "regex" else "Lark grammar"
        description += f"\n\nThe input must match this {syntax}:\n```\n{fmt['definition']}\n```"
    out: dict = {
        "name": name,
        "parameters": {
            "type": "OBJECT",
            "properties": {
                _CUSTOM_INPUT: {"type": "STRING", "description": "The tool's whole input, as raw text."}
            },
            "required": [_CUSTOM_INPUT],
        },
    }
    if description.strip():
        out["description"] = description.strip()
    return out


def _tool_choice(choice: object, declarations: list[dict]) -> tuple[list[dict], dict | None]:
    if choice is None:
        return declarations, None
    if isinstance(choice, str):
        return declarations, {"functionCallingConfig": {"mode": MODES[choice]}}
    assert isinstance(choice, dict)  # checked by the schema
    kind = choice["type"]
    if kind in ("function", "custom"):
        return restrict(declarations, [gemini_name(choice["name"], choice.get("namespace"))], "required")
    if kind == "allowed_tools":
        names = [
            gemini_name(t["name"], t.get("namespace"))
            for t in choice["tools"]
            if t.get("type") in ("function", "custom") and isinstance(t.get("name"), str)
        ]
        return restrict(declarations, names, choice["mode"])
    return declarations, None  # a hosted tool: Gemini cannot be made to search, so the model chooses


# -- generation config --------------------------------------------------------------------------------


LOGPROBS = "message.output_text.logprobs"  # the `include` entry that asks for them


def generation_config(body: dict, spec: ModelSpec) -> dict:
    config: dict = {}
    if body.get("max_output_tokens"):
        # An upper bound: past Gemini's int32 it means "no limit" (Gemini then names the model's own cap).
        config["maxOutputTokens"] = min(body["max_output_tokens"], INT32_MAX)
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") in ("json_schema", "json_object"):
        schema = fmt.get("schema") if fmt["type"] == "json_schema" else None
        config.update(json_output(schema, spec.model, param="text.format.schema"))
    if LOGPROBS in (body.get("include") or ()):
        config["responseLogprobs"] = True
        if body.get("top_logprobs"):
            config["logprobs"] = body["top_logprobs"]
    thinking = _thinking(body.get("reasoning") or {}, spec)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _thinking(reasoning: dict, spec: ModelSpec) -> dict | None:
    effort, param = reasoning.get("effort"), "reasoning.effort"
    if effort == "max":
        effort = "xhigh"
    if spec.effort is not None:
        effort, param = spec.effort, "model"
    summary = reasoning.get("summary") or reasoning.get("generate_summary")
    include = None if summary is None else summary != "none"
    return thinking_config(spec.model, effort=effort, include_thoughts=include, param=param)
