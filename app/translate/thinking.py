"""Gemini `thinkingConfig` for a model family, from OpenAI reasoning_effort or an Anthropic budget_tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import jsonx
from ..errors import InvalidRequest

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")

# Gemini 3.x takes thinkingLevel; each level's rank lets us pick the nearest one a model accepts.
_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
_RANK = {level: i for i, level in enumerate(_LEVELS)}
# none -> lowest level: 3.x cannot switch thinking off, so Google maps "none" to the lowest level it has.
_EFFORT_LEVEL = {
    "none": "MINIMAL",
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
}

# Google's OpenAI-compatibility table for 2.5 models: minimal/low 1024, medium 8192, high 24576, none 0.
_EFFORT_BUDGET = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}


@dataclass(frozen=True)
class Family:
    name: str
    levels: tuple[str, ...] = ()  # thinkingLevel values the model accepts (3.x)
    budget_min: int = 0  # smallest positive budget (2.5)
    budget_max: int = 0
    can_disable: bool = False  # budget 0 allowed


# Ranges from Google's thinking guide: 2.5 Pro 128..32768 (cannot switch off), 2.5 Flash 0..24576,
# 2.5 Flash-Lite 512..24576 or 0. Levels: 3 Pro LOW/HIGH; 3.1+ Pro adds MEDIUM (no MINIMAL); Flash and
# Flash-Lite take all four.
PRO_25 = Family("gemini-2.5-pro", budget_min=128, budget_max=32768)
FLASH_25 = Family("gemini-2.5-flash", budget_min=1, budget_max=24576, can_disable=True)
FLASH_LITE_25 = Family("gemini-2.5-flash-lite", budget_min=512, budget_max=24576, can_disable=True)
PRO_3 = Family("gemini-3-pro", levels=("LOW", "HIGH"))
PRO_31 = Family("gemini-3.1-pro", levels=("LOW", "MEDIUM", "HIGH"))
FLASH_3 = Family("gemini-3-flash", levels=_LEVELS)
FLASH_LITE_3 = Family("gemini-3-flash-lite", levels=_LEVELS)
# A 3.x (or later) model we have no table row for: LOW and HIGH are the levels every 3.x model accepts.
OTHER_3 = Family("gemini-3", levels=("LOW", "HIGH"))
NO_THINKING = Family("none")

_NAME = re.compile(r"^gemini-(\d+)(?:\.(\d+))?-(flash-lite|[a-z]+)(?![a-z])")
# Models whose thinking cannot be configured (or that do not think): leave thinkingConfig out.
_NOT_CONFIGURABLE = re.compile(r"-(image|tts|live|native-audio|embedding|computer-use)\b|^gemini-embedding")
# The -latest aliases point at the newest GA model of a line; they get the 2.5 rules (a budget), which
# Gemini 3 also accepts (it takes thinkingBudget for backward compatibility).
_ALIASES = {
    "gemini-pro-latest": PRO_25,
    "gemini-flash-latest": FLASH_25,
    "gemini-flash-lite-latest": FLASH_LITE_25,
}


def model_family(model: str) -> str:
    """The thinking family of `model` (e.g. 'gemini-2.5-flash-lite'); 'none' without thinking control."""
    return _family(model).name


def _family(model: str) -> Family:
    name = model.removeprefix("models/").lower()
    if _NOT_CONFIGURABLE.search(name):
        return NO_THINKING
    if name in _ALIASES:
        return _ALIASES[name]
    m = _NAME.match(name)
    if not m:
        return NO_THINKING
    major, minor, line = int(m[1]), int(m[2] or 0), m[3]
    if major < 2 or (major == 2 and minor < 5):
        return NO_THINKING
    if major == 2:
        return {"pro": PRO_25, "flash": FLASH_25, "flash-lite": FLASH_LITE_25}.get(line, NO_THINKING)
    if line == "pro":
        return PRO_3 if (major, minor) == (3, 0) else PRO_31
    if line == "flash":
        return FLASH_3
    if line == "flash-lite":
        return FLASH_LITE_3
    return OTHER_3


def _nearest_level(level: str, allowed: tuple[str, ...]) -> str:
    """The allowed level closest to `level`; on a tie the higher one, so a request never loses depth."""
    want = _RANK[level]
    return min(allowed, key=lambda lv: (abs(_RANK[lv] - want), -_RANK[lv]))


def _budget_level(budget: int) -> str | None:
    """A token budget as a level, on the same scale as Google's effort table (1024 low, 8192 medium)."""
    if budget < 0:
        return None  # dynamic: the model's own default level
    if budget == 0:
        return "MINIMAL"
    if budget <= 1024:
        return "LOW"
    if budget <= 8192:
        return "MEDIUM"
    return "HIGH"


def _clamp_budget(budget: int, family: Family) -> int:
    if budget < 0:
        return -1
    if budget == 0:
        return 0 if family.can_disable else family.budget_min
    return max(family.budget_min, min(budget, family.budget_max))


def thinking_config(
    model: str,
    *,
    effort: str | None = None,
    budget: int | None = None,
    include_thoughts: bool | None = None,
    param: str = "reasoning_effort",
) -> dict | None:
    """Gemini `thinkingConfig` for `model`, or None when there is nothing to set.

    `effort` is an OpenAI reasoning_effort (none/minimal/low/medium/high/xhigh); `budget` a token budget
    (Anthropic budget_tokens, Gemini thinking_budget; 0 off, -1 dynamic) and wins over `effort` when both
    are given. 2.5 models get a thinkingBudget clamped to the model's range, 3.x models the nearest
    thinkingLevel they accept; never both.
    """
    if effort is not None:
        effort = effort.lower() if isinstance(effort, str) else effort
        if effort not in EFFORTS:
            raise InvalidRequest(
                f"Invalid reasoning effort {effort!r}: expected one of {', '.join(EFFORTS)}.", param=param
            )
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise InvalidRequest(f"Invalid thinking budget {budget!r}: expected an integer.", param=param)
    family = _family(model)
    if family is NO_THINKING:
        return None
    config: dict = {}
    off = False
    if family.levels:
        level = None
        if budget is not None:
            level = _budget_level(budget)
        elif effort is not None:
            level = _EFFORT_LEVEL[effort]
        if level is not None:
            config["thinkingLevel"] = _nearest_level(level, family.levels)
    else:
        value = None
        if budget is not None:
            value = budget
        elif effort == "xhigh":
            value = family.budget_max
        elif effort is not None:
            value = _EFFORT_BUDGET[effort]
        if value is not None:
            config["thinkingBudget"] = _clamp_budget(value, family)
            off = config["thinkingBudget"] == 0
    # No thoughts come back when thinking is off; asking for them only invites a 400.
    if include_thoughts is not None and not (off and include_thoughts):
        config["includeThoughts"] = bool(include_thoughts)
    return config or None


def for_fallback(request: bytes, model: str) -> bytes:
    """A generate request written for one model, with its thinkingConfig as `model` takes it: the request
    goes to a fallback of another family. A 2.5 model gets a budget for a level (Google's effort table,
    clamped to its range), a 3.x model the nearest level it accepts for a budget, a model without thinking
    control no thinkingConfig; everything else is sent as it was. Either spelling of the names is read."""
    if b"hinking" not in request:  # thinkingConfig, thinking_config
        return request
    try:
        body = jsonx.loads(request)
    except jsonx.JSONDecodeError:
        return request
    outer = _member(body, "generationConfig")
    inner = _member(outer[1], "thinkingConfig") if outer is not None else None
    if outer is None or inner is None:
        return request
    (outer_name, generation), (name, config) = outer, inner
    adapted = _adapted(config, _family(model))
    if adapted == config:
        return request
    settings = {k: v for k, v in generation.items() if k != name}
    if adapted:
        settings[name] = adapted
    return jsonx.dumps({**body, outer_name: settings})


def _member(obj: object, camel: str) -> tuple[str, dict] | None:
    """(the name used, the object) of a member written in camelCase or snake_case."""
    if not isinstance(obj, dict):
        return None
    snake = re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), camel)
    for name in (camel, snake):
        if isinstance(obj.get(name), dict):
            return name, obj[name]
    return None


def _adapted(config: dict, family: Family) -> dict:
    if family is NO_THINKING:
        return {}
    snake = "thinking_level" in config or "thinking_budget" in config
    level_name, budget_name = (
        ("thinking_level", "thinking_budget") if snake else ("thinkingLevel", "thinkingBudget")
    )
    level = config.get(level_name)
    budget = config.get(budget_name)
    level = level.upper() if isinstance(level, str) and level.upper() in _RANK else None
    if isinstance(budget, str):  # proto JSON: numbers may come as strings
        try:
            budget = int(budget)
        except ValueError:
            budget = None
    budget = budget if isinstance(budget, int) and not isinstance(budget, bool) else None
    if level is None and budget is None:
        return config  # nothing to adapt (or nothing the gateway can read): Gemini judges it
    out = {k: v for k, v in config.items() if k not in (level_name, budget_name)}
    if family.levels:
        wanted = level or _budget_level(budget)  # type: ignore[arg-type]
        if wanted is not None:  # a dynamic budget (-1): the model's own default level
            out[level_name] = (
                config[level_name] if level in family.levels else _nearest_level(wanted, family.levels)
            )
    else:
        value = _clamp_budget(budget if budget is not None else _LEVEL_BUDGET[level], family)  # type: ignore[index]
        out[budget_name] = config[budget_name] if value == budget else value
        if value == 0:  # no thoughts come back when thinking is off; asking for them invites a 400
            out.pop("includeThoughts", None)
            out.pop("include_thoughts", None)
    return out


# A level as a 2.5 budget, on Google's effort table (MINIMAL: as little as the model allows).
_LEVEL_BUDGET = {"MINIMAL": 0, "LOW": 1024, "MEDIUM": 8192, "HIGH": 24576}
