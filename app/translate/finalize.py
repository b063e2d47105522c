"""The last step before a generate request goes to Gemini, the same for every dialect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .directives import NOTHING_FORCED, Forced, ModelSpec, apply_directives
from .safety import default_safety_settings

if TYPE_CHECKING:
    from ..config import Config


def forced(settings: Config, dialect: str) -> Forced:
    """The features the operator forces on this dialect's generate calls (FORCE_*, FORCE_DIALECTS)."""
    if dialect not in settings.force_dialects:
        return NOTHING_FORCED
    return Forced(
        search=settings.force_search,
        code=settings.force_code,
        url_context=settings.force_url_context,
        thinking=settings.force_thinking,
    )


def finalize(
    request: dict, spec: ModelSpec, *, safety_threshold: str, forced: Forced = NOTHING_FORCED
) -> dict:
    """`request` with the model name's directives (tools, thinking level), the operator's forced features,
    and the default safety settings where the client set none."""
    return with_default_safety(apply_directives(spec, request, forced), safety_threshold)


def with_default_safety(request: dict, threshold: str) -> dict:
    """`request` with the default safety settings where the client set none (either spelling)."""
    if "safetySettings" in request or "safety_settings" in request:
        return request
    return {**request, "safetySettings": default_safety_settings(threshold)}
