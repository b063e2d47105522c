"""Marshmallow schemas for the request bodies of each dialect (validation only)."""

from __future__ import annotations

from collections.abc import Iterator

from marshmallow import INCLUDE, Schema


class OpenSchema(Schema):
    """A schema that checks what it knows and lets unknown fields through untouched:
    the APIs grow new fields every month, and a client that sends one must still work."""

    class Meta:
        unknown = INCLUDE


def first_error(errors: dict) -> tuple[str, str]:
    """The first (field path, message) of a marshmallow error dict, e.g. ('contents[0].parts', ...)."""
    for path, message in _walk(errors, ""):
        return path, message
    return "", "Invalid request."


def _walk(node, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, int):
                sub = f"{path}[{key}]"
            elif key == "_schema":
                sub = path
            else:
                sub = f"{path}.{key}" if path else str(key)
            yield from _walk(value, sub)
    elif isinstance(node, list):
        if node and all(isinstance(m, str) for m in node):
            yield path, node[0]
        else:
            for item in node:
                yield from _walk(item, path)
    else:
        yield path, str(node)
