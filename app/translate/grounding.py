"""Google Search grounding: the web pages that spans of an answer's text cite, read once for every dialect."""

from __future__ import annotations

from typing import NamedTuple


class Citation(NamedTuple):
    start: int  # the cited span of the candidate's text, as Gemini's segment gives it
    end: int
    url: str
    title: str


def citations(candidate: dict) -> list[Citation]:
    """The candidate's grounding supports as citations, each (span, page) once, in Gemini's order."""
    grounding = candidate.get("groundingMetadata")
    if not isinstance(grounding, dict):
        return []
    chunks = grounding.get("groundingChunks") or []
    out: list[Citation] = []
    seen = set()
    for support in grounding.get("groundingSupports") or []:
        segment = support.get("segment") or {}
        for i in support.get("groundingChunkIndices") or []:
            web = chunks[i].get("web") if isinstance(i, int) and 0 <= i < len(chunks) else None
            if not isinstance(web, dict) or not web.get("uri"):
                continue
            key = (segment.get("startIndex", 0), segment.get("endIndex", 0), web["uri"])
            if key in seen:
                continue
            seen.add(key)
            out.append(Citation(key[0], key[1], web["uri"], web.get("title", "")))
    return out
