"""Anthropic Messages requests -> Gemini GenerateContentRequest and countTokens bodies (plain dicts)."""

from __future__ import annotations

import re

from schemas.fields import INT32_MAX

from .. import budget
from ..errors import InvalidRequest
from ..translate.contents import merge_turns, text_parts
from ..translate.directives import ModelSpec, apply_directives
from ..translate.json_schema import to_gemini_parameters, to_gemini_schema
from ..translate.media import Fetch, inline_data_from_url, parse_data_url, url_part
from ..translate.signatures import ensure_call_signatures
from ..translate.thinking import thinking_config
from .from_gemini import check_stop_sequences
from .ids import parse_thinking_signature, parse_tool_use_id

_SERVER_TOOLS: tuple[tuple[str, dict], ...] = (
    ("web_search_", {"googleSearch": {}}),
    ("web_fetch_", {"urlContext": {}}),
    ("code_execution_", {"codeExecution": {}}),
)
_TOOL_MODES = {"auto": "AUTO", "any": "ANY", "tool": "ANY", "none": "NONE"}
# Anthropic's output_config.effort -> the shared effort scale.
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
_MAJOR = re.compile(r"^gemini-(\d+)")
GEMINI_STOP_SEQUENCES = 5  # the most Gemini takes; more are applied by the gateway (StopScanner)


def stop_sequences(body: dict) -> list[str]:
    """The request's non-empty stop sequences; 400 past their bounds (check_stop_sequences)."""
    return check_stop_sequences(body.get("stop_sequences") or [])


def options(body: dict) -> dict:
    """What translating the answer needs to know about the request (keyword arguments of
    `from_gemini.message` and `stream.MessageStream`)."""
    thinking = body.get("thinking") or {}
    choice = body.get("tool_choice") or {}
    sequences = stop_sequences(body)
    return {
        "thinking": thinking.get("type") in ("enabled", "adaptive"),
        "single_tool": bool(choice.get("disable_parallel_tool_use")),
        # Up to five go to Gemini, which then stops generating (the client pays for no more), but
        # does not say which one matched; past five, the gateway scans the text and knows.
        "stop_sequences": sequences if len(sequences) > GEMINI_STOP_SEQUENCES else [],
    }


@budget.per_request
def generate_request(body: dict, spec: ModelSpec, *, fetch: Fetch = inline_data_from_url) -> dict:
    """The Gemini request for a validated Messages body and its parsed model name (the model name's
    directives are applied when the request is finalized)."""
    request = _prompt(body, spec.model, fetch)
    # An upper bound: past Gemini's int32 it means "no limit", and the generate step retries with
    # the model's own cap when Gemini refuses it.
    config: dict = {"maxOutputTokens": min(body["max_tokens"], INT32_MAX)}
    sequences = stop_sequences(body)
    if 0 < len(sequences) <= GEMINI_STOP_SEQUENCES:
        config["stopSequences"] = sequences  # see options(): more than five stay with the gateway
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    if config.get("topK", 0) > INT32_MAX:
        raise InvalidRequest(f"top_k must be at most {INT32_MAX}.", param="top_k")
    output_format = _output_format(body)
    if output_format is not None:
        config["responseMimeType"] = "application/json"
        config["responseSchema"] = to_gemini_schema(output_format, param="output_config.format.schema")
    thinking = _thinking_config(body, spec.model)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    request["generationConfig"] = config
    return request


@budget.per_request
def count_tokens_request(body: dict, spec: ModelSpec, *, fetch: Fetch = inline_data_from_url) -> dict:
    """countTokens wraps a whole request, so the system prompt and the tools are counted too."""
    request = apply_directives(spec, _prompt(body, spec.model, fetch))
    request.pop("generationConfig", None)  # a name's thinking level changes no count
    return {"generateContentRequest": {"model": f"models/{spec.model}", **request}}


# -- the prompt ------------------------------------------------------------------------


def _prompt(body: dict, model: str, fetch: Fetch) -> dict:
    system = _system_parts(body.get("system"), "system")
    messages = body["messages"]
    names = _tool_names(messages)
    gemini3 = _gemini_major(model) >= 3
    turns: list[tuple[str, list[dict]]] = []
    for i, message in enumerate(messages):
        role, content, param = message["role"], message["content"], f"messages[{i}]"
        if role == "system":  # some clients put the system prompt in the list
            system.extend(_system_parts(content, f"{param}.content"))
        elif role == "user":
            turns.append(("user", _user_parts(content, param, names, gemini3, fetch)))
        else:
            turns.append(("model", _model_parts(content, param, fetch)))
    contents = merge_turns(turns)  # Anthropic merges consecutive turns of one role too
    if not contents:
        raise InvalidRequest("messages: at least one message with content is required.", param="messages")
    ensure_call_signatures(contents)
    request: dict = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    tools, declared = _tools(body.get("tools") or [])
    if tools:
        request["tools"] = tools
    tool_config = _tool_config(body.get("tool_choice"), declared)
    if tool_config:
        request["toolConfig"] = tool_config
    return request


def _system_parts(system, param: str) -> list[dict]:
    if system is None or isinstance(system, str):
        return text_parts(system)
    parts = []
    for j, block in enumerate(system):
        if block.get("type") != "text":
            raise InvalidRequest("System prompts take text blocks only.", param=f"{param}[{j}].type")
        if block["text"]:
            parts.append({"text": block["text"]})
    return parts


def _tool_names(messages: list) -> dict[str, str]:
    """tool_use id -> tool name, for the functionResponse that answers it."""
    names = {}
    for message in messages:
        if message["role"] == "assistant" and isinstance(message["content"], list):
            for block in message["content"]:
                if block.get("type") == "tool_use":
                    names[block["id"]] = block["name"]
    return names


def _user_parts(content, param: str, names: dict, gemini3: bool, fetch: Fetch) -> list[dict]:
    if isinstance(content, str):
        return text_parts(content)
    responses: list[dict] = []
    others: list[dict] = []
    for j, block in enumerate(content):
        where = f"{param}.content[{j}]"
        kind = block.get("type")
        if kind == "tool_result":
            response, extra = _tool_result(block, where, names, gemini3, fetch)
            responses.append(response)
            others.extend(extra)
        elif kind == "tool_use":
            raise InvalidRequest("tool_use blocks belong in assistant messages.", param=f"{where}.type")
        elif kind in ("thinking", "redacted_thinking"):
            continue  # only meaningful in assistant turns
        else:
            others.extend(_block_parts(block, where, fetch))
    # Gemini wants a turn's function responses together, right after the calls they answer.
    return responses + others


def _tool_result(block: dict, where: str, names: dict, gemini3: bool, fetch: Fetch) -> tuple[dict, list]:
    tool_id = block["tool_use_id"]
    name = names.get(tool_id)
    if name is None:
        raise InvalidRequest(
            f"tool_result refers to tool_use id {tool_id!r}, which no assistant message holds.",
            param=f"{where}.tool_use_id",
        )
    texts: list[str] = []
    media: list[dict] = []
    content = block.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for k, item in enumerate(content):
            for part in _block_parts(item, f"{where}.content[{k}]", fetch):
                if "text" in part:
                    texts.append(part["text"])
                else:
                    media.append(part)
    text = "\n".join(texts)
    response: dict = {"name": name, "response": {"error" if block.get("is_error") else "output": text}}
    call_id, _ = parse_tool_use_id(tool_id)
    if call_id:
        response["id"] = call_id
    if media and gemini3:
        response["parts"] = media  # Gemini 3 takes images inside the function response
        media = []
    return {"functionResponse": response}, media


def _model_parts(content, param: str, fetch: Fetch) -> list[dict]:
    if isinstance(content, str):
        return text_parts(content)
    parts: list[dict] = []
    carried = {
        sig for b in content if b.get("type") == "tool_use" for sig in [parse_tool_use_id(b["id"])[1]] if sig
    }
    pending: str | None = None  # a thinking block's signature, for the part that followed it
    for j, block in enumerate(content):
        kind = block.get("type")
        where = f"{param}.content[{j}]"
        if kind == "thinking":
            signature = parse_thinking_signature(block.get("signature"))
            if signature and signature not in carried:
                pending = signature
            continue  # the thought summary itself is not sent back: Gemini keeps its thoughts in the signature
        if kind == "redacted_thinking":
            continue
        if kind == "tool_use":
            call_id, signature = parse_tool_use_id(block["id"])
            call: dict = {"name": block["name"], "args": block.get("input") or {}}
            if call_id:
                call["id"] = call_id
            part: dict = {"functionCall": call}
            if signature or pending:
                part["thoughtSignature"] = signature or pending
                if not signature:
                    pending = None
            parts.append(part)
            continue
        if kind == "tool_result":
            raise InvalidRequest("tool_result blocks belong in user messages.", param=f"{where}.type")
        for part in _block_parts(block, where, fetch):
            if pending and ("text" in part or "inlineData" in part):
                part["thoughtSignature"] = pending
                pending = None
            parts.append(part)
    return parts


def _block_parts(block: dict, where: str, fetch: Fetch) -> list[dict]:
    """text, image, document and search_result blocks as Gemini parts."""
    kind = block.get("type")
    if kind == "text":
        return [{"text": block["text"]}] if block["text"] else []
    if kind == "image":
        return [_source_part(block["source"], f"{where}.source", fetch, "image/png")]
    if kind == "document":
        parts: list[dict] = []
        heading = "\n".join(str(block[k]) for k in ("title", "context") if block.get(k))
        if heading:
            parts.append({"text": heading})
        source = block["source"]
        if source["type"] == "text":
            parts.append({"text": source.get("data") or ""})
        elif source["type"] == "content":
            inner = source.get("content")
            if isinstance(inner, str):
                parts.append({"text": inner})
            elif isinstance(inner, list):
                for k, item in enumerate(inner):
                    if isinstance(item, dict) and item.get("type") in ("text", "image"):
                        parts.extend(_block_parts(item, f"{where}.source.content[{k}]", fetch))
        else:
            parts.append(_source_part(source, f"{where}.source", fetch, "application/pdf"))
        return [p for p in parts if p.get("text") != ""]
    if kind == "search_result":
        texts = [str(block.get(k)) for k in ("title", "source") if block.get(k)]
        texts += [c.get("text", "") for c in block.get("content") or [] if c.get("type") == "text"]
        text = "\n".join(t for t in texts if t)
        return [{"text": text}] if text else []
    return []  # server-tool artifacts replayed by the client: nothing Gemini can use


def _source_part(source: dict, where: str, fetch: Fetch, default_type: str) -> dict:
    """An image or document source as a part: base64 inline; a URL by reference when `fetch` passes it
    to Gemini (documents are PDFs), else fetched inline."""
    kind = source["type"]
    if kind == "base64":
        data = source.get("data")
        if not data:
            raise InvalidRequest("A base64 source needs its data.", param=f"{where}.data")
        media_type = source.get("media_type") or default_type
        return {"inlineData": parse_data_url(f"data:{media_type};base64,{data}", param=f"{where}.data")}
    if kind == "url":
        if not source.get("url"):
            raise InvalidRequest("A url source needs its url.", param=f"{where}.url")
        declared = None if default_type.startswith("image/") else default_type
        return url_part(fetch, source["url"], param=f"{where}.url", mime_type=declared)
    if kind == "file":
        raise InvalidRequest(
            "Files API sources (file_id) are not supported; send base64 or url.", param=f"{where}.type"
        )
    raise InvalidRequest(f"Source type {kind!r} is not supported here.", param=f"{where}.type")


# -- tools, thinking, output --------------------------------------------------------------


def _tools(tools: list) -> tuple[list[dict], bool]:
    """Gemini tools, and whether any function is declared."""
    declarations: list[dict] = []
    builtins: list[dict] = []
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        if kind in (None, "custom") or (kind and "input_schema" in tool and not _server_tool(kind)):
            declaration: dict = {"name": tool["name"]}
            if tool.get("description"):
                declaration["description"] = tool["description"]
            parameters = to_gemini_parameters(tool.get("input_schema"), param=f"tools[{i}].input_schema")
            if parameters is not None:
                declaration["parameters"] = parameters
            declarations.append(declaration)
            continue
        builtin = _server_tool(kind)
        if builtin is None:
            raise InvalidRequest(
                f"Tool type {kind!r} is not supported: declare it with an input_schema, or use "
                "web_search, web_fetch or code_execution.",
                param=f"tools[{i}].type",
            )
        if builtin not in builtins:
            builtins.append(builtin)
    out = [{"functionDeclarations": declarations}] if declarations else []
    return out + builtins, bool(declarations)


def _server_tool(kind: str) -> dict | None:
    for prefix, tool in _SERVER_TOOLS:
        if kind.startswith(prefix):
            return dict(tool)
    return None


def _tool_config(choice: dict | None, declared: bool) -> dict | None:
    if not choice or not declared:
        return None
    kind = choice["type"]
    config: dict = {"mode": _TOOL_MODES[kind]}
    if kind == "tool":
        if not choice.get("name"):
            raise InvalidRequest(
                "tool_choice of type 'tool' needs the tool's name.", param="tool_choice.name"
            )
        config["allowedFunctionNames"] = [choice["name"]]
    return {"functionCallingConfig": config}


def _thinking_config(body: dict, model: str) -> dict | None:
    thinking = body.get("thinking") or {}
    kind = thinking.get("type")
    effort = (body.get("output_config") or {}).get("effort")
    effort = _EFFORTS.get(effort) if isinstance(effort, str) else None
    show = thinking.get("display") != "omitted"
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            raise InvalidRequest(
                "thinking.budget_tokens is required when thinking is enabled.", param="thinking.budget_tokens"
            )
        return thinking_config(model, budget=budget, include_thoughts=show, param="thinking.budget_tokens")
    if kind == "adaptive":
        return thinking_config(model, effort=effort, include_thoughts=show, param="output_config.effort")
    if kind == "disabled":
        return thinking_config(model, effort="none", param="thinking")
    if effort is not None:
        return thinking_config(model, effort=effort, param="output_config.effort")
    return None


def _output_format(body: dict) -> dict | None:
    """The JSON schema of structured output: `output_config.format`, or the older top-level `output_format`."""
    for holder in ((body.get("output_config") or {}).get("format"), body.get("output_format")):
        if isinstance(holder, dict) and holder.get("type") == "json_schema":
            return holder.get("schema") or {}
    return None


def _gemini_major(model: str) -> int:
    m = _MAJOR.match(model)
    return int(m[1]) if m else 0
