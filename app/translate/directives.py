"""Model-name directives: thinking-level, `-fake`/`-real`, `-search` and `-code` suffixes on a model name,
and applying them (with the operator's forced features) to a Gemini request."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ..budget import MAX_MODEL_NAME
from ..errors import InvalidRequest
from ..upstream.model_catalog import model_id
from .thinking import EFFORTS, model_family, thinking_config

_PAREN = re.compile(r"^(?P<base>.+?)\((?P<inner>[^()]*)\)$")
_SEARCH_KEYS = ("googleSearch", "google_search", "googleSearchRetrieval", "google_search_retrieval")
_CODE_KEYS = ("codeExecution", "code_execution")
_URL_CONTEXT_KEYS = ("urlContext", "url_context")
STREAM_MODES = ("fake", "real")


@dataclass(frozen=True)
class ModelSpec:
    model: str  # the bare Gemini model id, directives removed
    effort: str | None  # none/minimal/low/medium/high/xhigh from a suffix
    search: bool
    code: bool
    stream_mode: str | None = None  # "fake" or "real" from a suffix; None: the STREAMING_MODE setting


@dataclass(frozen=True)
class Forced:
    """The operator's forced features (FORCE_*), for the dialects they apply to."""

    search: bool = False
    code: bool = False
    url_context: bool = False
    thinking: bool = False


NOTHING_FORCED = Forced()


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
    """Split `gemini-3-flash-preview(minimal)-fake-search-code`, `gemini-2.5-flash-search-high` and the
    like into a ModelSpec. Aliases are resolved first, so an alias's target may carry directives.

    Only whole `-token`s at the end (and one `(level)`) are directives, so real name parts (`-lite`,
    `-tts`, `-latest`, `-exp-1206`) are never eaten; they combine in any order, the seed's order
    (level, streaming mode, tools) included. 400 for two different levels or streaming modes, a bad
    `(...)` suffix, or a name over MAX_MODEL_NAME characters.
    """
    if not isinstance(name, str):
        model_id(name, param)  # raises the usual 400
    if len(name) > MAX_MODEL_NAME:  # checked before any pattern or suffix is looked at
        raise InvalidRequest(f"The model name is longer than {MAX_MODEL_NAME} characters.", param=param)
    name = resolve_alias(name, aliases)
    base = name.removeprefix("models/")
    found: dict[str, str] = {}
    search = code = False

    def choose(what: str, value: str) -> None:
        if found.get(what, value) != value:
            raise InvalidRequest(
                f"Model name {name!r} asks for two {what}s ({found[what]!r} and {value!r}).", param=param
            )
        found[what] = value

    while True:
        m = _PAREN.match(base)
        if m:
            inner = m["inner"].strip().lower()
            if inner not in EFFORTS:
                raise InvalidRequest(
                    f"Invalid thinking level {m['inner']!r} in model name {name!r}: expected one of "
                    f"{', '.join(EFFORTS)}.",
                    param=param,
                )
            choose("thinking level", inner)
            base = m["base"]
            continue
        head, sep, token = base.rpartition("-")
        if not sep or not head:
            break
        token = token.lower()
        if token in EFFORTS:
            choose("thinking level", token)
        elif token in STREAM_MODES:
            choose("streaming mode", token)
        elif token == "search":
            search = True
        elif token == "code":
            code = True
        else:
            break
        base = head
    return ModelSpec(
        model_id(base, param), found.get("thinking level"), search, code, found.get("streaming mode")
    )


def _has_tool(tools: list, keys: tuple[str, ...]) -> bool:
    return any(isinstance(t, dict) and any(k in t for k in keys) for t in tools)


def changes_request(spec: ModelSpec, forced: Forced) -> bool:
    """Whether `apply_directives` may change a request (otherwise a client's bytes can go as they are)."""
    return spec.search or spec.code or spec.effort is not None or forced != NOTHING_FORCED


def apply_directives(spec: ModelSpec, request: dict, forced: Forced = NOTHING_FORCED) -> dict:
    """A copy of the Gemini `request` with the spec's tools and thinking level, and the forced features.

    A suffix's thinking level replaces any level or budget already in the request (the model name is the
    client's most explicit choice); `includeThoughts` is kept. Forced tools skip requests that declare
    functions, because Gemini 2.x refuses built-in tools mixed with function calling and a server
    setting must not break a client's tool use; a suffix the client chose is applied as asked. Forced
    thinking asks for thought summaries only where the client said nothing about them.
    """
    out = dict(request)
    tools = list(out.get("tools") or [])
    has_functions = any(
        isinstance(t, dict) and (t.get("functionDeclarations") or t.get("function_declarations"))
        for t in tools
    )
    for wanted, forced_too, keys, tool in (
        (spec.search, forced.search, _SEARCH_KEYS, {"googleSearch": {}}),
        (spec.code, forced.code, _CODE_KEYS, {"codeExecution": {}}),
        (False, forced.url_context, _URL_CONTEXT_KEYS, {"urlContext": {}}),
    ):
        if (wanted or (forced_too and not has_functions)) and not _has_tool(tools, keys):
            tools.append(tool)
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
    if forced.thinking:
        out = _with_thoughts(spec.model, out)
    return out


def _with_thoughts(model: str, request: dict) -> dict:
    """`includeThoughts` added where the client set none, on a model whose thinking is on."""
    generation = request.get("generationConfig")
    generation = dict(generation) if isinstance(generation, dict) else {}
    thinking = generation.get("thinkingConfig")
    thinking = dict(thinking) if isinstance(thinking, dict) else {}
    said = any(k in thinking for k in ("includeThoughts", "include_thoughts"))
    off = thinking.get("thinkingBudget", thinking.get("thinking_budget")) in (0, "0")
    if said or off or model_family(model) == "none":
        return request
    thinking["includeThoughts"] = True
    generation["thinkingConfig"] = thinking
    return {**request, "generationConfig": generation}
