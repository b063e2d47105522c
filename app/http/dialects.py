"""Which client dialect a request speaks, decided once per request from its path and headers."""

from __future__ import annotations

from collections.abc import Mapping

from werkzeug.datastructures import Headers

GEMINI, OPENAI, ANTHROPIC = "gemini", "openai", "anthropic"
# Gemini's resource families under /v1 that no other dialect has.
_NATIVE_V1 = tuple(
    f"/v1/{family}"
    for family in (
        "cachedContents",
        "interactions",
        "operations",
        "fileSearchStores",
        "tunedModels",
        "corpora",
        "generatedFiles",
    )
)


def dialect_for(path: str, headers: Headers | Mapping[str, str], args: Mapping[str, str]) -> str:
    if path.startswith(("/v1beta/", "/upload/", "/download/")):
        return GEMINI
    if path.startswith("/v1/messages"):
        return ANTHROPIC
    if path.startswith(("/v1/models", "/v1/files", "/v1/batches")):
        # Shared with OpenAI (and `/v1/models` with Anthropic): native calls carry an action
        # (`:generateContent`) or a Google style key; Anthropic clients always send
        # `anthropic-version`; the rest are OpenAI's.
        if ":" in path or "x-goog-api-key" in headers or "key" in args:
            return GEMINI
        if "anthropic-version" in headers and path.startswith("/v1/models"):
            return ANTHROPIC
        return OPENAI
    if path.startswith(_NATIVE_V1):
        return GEMINI
    return OPENAI
