"""Gemini `contents` built from a dialect's messages: one turn per role change, as Gemini expects."""

from __future__ import annotations

from collections.abc import Callable, Iterable


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


def content_parts(
    content: str | list | None, param: str, convert: Callable[[object, str], dict | None]
) -> list[dict]:
    """A message's content as parts: a string is one text part; each part of a list is made a Gemini
    part by `convert(part, param)` (None: nothing to send, an empty text say)."""
    if content is None or isinstance(content, str):
        return text_parts(content)
    parts = []
    for j, part in enumerate(content):
        converted = convert(part, f"{param}[{j}]")
        if converted is not None:
            parts.append(converted)
    return parts
