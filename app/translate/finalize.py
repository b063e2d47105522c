"""The last step before a generate request goes to Gemini, the same for every dialect."""

from __future__ import annotations

from .directives import ModelSpec, apply_directives
from .safety import default_safety_settings


def finalize(
    request: dict,
    spec: ModelSpec,
    *,
    safety_threshold: str,
    force_search: bool = False,
    force_code: bool = False,
) -> dict:
    """`request` with the model name's directives (tools, thinking level), the operator's forced tools,
    and the default safety settings where the client set none."""
    out = apply_directives(spec, request, force_search=force_search, force_code=force_code)
    return with_default_safety(out, safety_threshold)


def with_default_safety(request: dict, threshold: str) -> dict:
    """`request` with the default safety settings where the client set none (either spelling)."""
    if "safetySettings" in request or "safety_settings" in request:
        return request
    return {**request, "safetySettings": default_safety_settings(threshold)}
