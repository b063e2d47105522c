"""Gemini `contents` built from a dialect's messages: one turn per role change, as Gemini expects."""

from __future__ import annotations

from collections.abc import Iterable


def merge_turns(turns: Iterable[tuple[str, list[dict]]]) -> list[dict]:
    """Contents from (role, parts) turns: empty turns are dropped and consecutive turns of one role
    become one, as Anthropic and OpenAI clients send them (two user messages in a row, say)."""
    contents: list[dict] = []
    for role, parts in turns:
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": list(parts)})
    return contents


def text_parts(text: str | None) -> list[dict]:
    """A message's plain-text content as parts: one text part, or none for an empty or missing text."""
    return [{"text": text}] if text else []
