"""Model-name directives: thinking-level, `-search` and `-code` suffixes on a model name, and applying them."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ..budget import MAX_MODEL_NAME
from ..errors import InvalidRequest
from ..upstream.model_catalog import model_id
from .thinking import EFFORTS, thinking_config

_PAREN = re.compile(r"^(?P<base>.+?)\((?P<inner>[^()]*)\)$")
_SEARCH_KEYS = ("googleSearch", "google_search", "googleSearchRetrieval", "google_search_retrieval")
_CODE_KEYS = ("codeExecution", "code_execution")


@dataclass(frozen=True)
class ModelSpec:
    model: str  # the bare Gemini model id, directives removed
    effort: str | None  # none/minimal/low/medium/high/xhigh from a suffix
    search: bool
    code: bool


def resolve_alias(name: str, aliases: tuple[tuple[str, str], ...]) -> str:
    """The Gemini model an alias (MODEL_ALIASES, e.g. `claude-*=gemini-2.5-pro`) stands for;
    the name itself when no pattern matches. Clients built for one vendor send its model names."""
    for pattern, target in aliases:
        if fnmatch.fnmatchcase(name.removeprefix("models/"), pattern):
            return target
    return name


def parse_model_name(
    name: str, *, param: str = "model", aliases: tuple[tuple[str, str], ...] = ()
) -> ModelSpec:
    """Split `gemini-2.5-flash-search-high`, `gemini-3-pro-preview(low)` and the like into a ModelSpec.

    Only whole `-token`s at the end are directives, so real name parts (`-lite`, `-tts`, `-latest`,
    `-exp-1206`) are never eaten. 400 for two different thinking levels, a bad `(...)` suffix, or a name
    over MAX_MODEL_NAME characters.
    """
    if not isinstance(name, str):
        model_id(name, param)  # raises the usual 400
    if len(name) > MAX_MODEL_NAME:  # checked before any pattern or suffix is looked at
        raise InvalidRequest(f"The model name is longer than {MAX_MODEL_NAME} characters.", param=param)
    name = resolve_alias(name, aliases)
    base = name.removeprefix("models/")
    effort: str | None = None
    search = code = False

    def set_effort(value: str) -> None:
        nonlocal effort
        if effort is not None and effort != value:
            raise InvalidRequest(
                f"Model name {name!r} asks for two thinking levels ({effort!r} and {value!r}).", param=param
            )
        effort = value

    m = _PAREN.match(base)
    if m:
        inner = m["inner"].strip().lower()
        if inner not in EFFORTS:
            raise InvalidRequest(
                f"Invalid thinking level {m['inner']!r} in model name {name!r}: expected one of {', '.join(EFFORTS)}.",
                param=param,
            )
        set_effort(inner)
        base = m["base"]
    while True:
        head, sep, token = base.rpartition("-")
        if not sep or not head:
            break
        token = token.lower()
        if token in EFFORTS:
            set_effort(token)
        elif token == "search":
            search = True
        elif token == "code":
            code = True
        else:
            break
        base = head
    return ModelSpec(model_id(base, param), effort, search, code)


def _has_tool(tools: list, keys: tuple[str, ...]) -> bool:
    return any(isinstance(t, dict) and any(k in t for k in keys) for t in tools)


def apply_directives(
    spec: ModelSpec, request: dict, *, force_search: bool = False, force_code: bool = False
) -> dict:
    """A copy of the Gemini `request` with the spec's tools and thinking level added.

    A suffix's thinking level replaces any level or budget already in the request (the model name is the
    client's most explicit choice); `includeThoughts` is kept. The global switches skip requests that
    declare functions, because Gemini 2.x refuses built-in tools mixed with function calling and a server
    setting must not break a client's tool use; a suffix the client chose is applied as asked.
    """
    out = dict(request)
    tools = list(out.get("tools") or [])
    has_functions = any(
        isinstance(t, dict) and (t.get("functionDeclarations") or t.get("function_declarations"))
        for t in tools
    )
    want_search = spec.search or (force_search and not has_functions)
    want_code = spec.code or (force_code and not has_functions)
    if want_search and not _has_tool(tools, _SEARCH_KEYS):
        tools.append({"googleSearch": {}})
    if want_code and not _has_tool(tools, _CODE_KEYS):
        tools.append({"codeExecution": {}})
    if tools:
        out["tools"] = tools
    if spec.effort is not None:
        config = thinking_config(spec.model, effort=spec.effort, param="model")
        if config:
            generation = dict(out.get("generationConfig") or {})
            thinking = {
                k: v
                for k, v in (generation.get("thinkingConfig") or {}).items()
                if k not in ("thinkingBudget", "thinking_budget", "thinkingLevel", "thinking_level")
            }
            thinking.update(config)
            if thinking.get("thinkingBudget") == 0:
                thinking.pop("includeThoughts", None)
                thinking.pop("include_thoughts", None)
            generation["thinkingConfig"] = thinking
            out["generationConfig"] = generation
    return out
