"""JSON encoding and decoding for the hot path (orjson), in one place."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def dumps(obj: Any) -> bytes:
    """Compact JSON as bytes, UTF-8, non-ASCII kept raw."""
    return orjson.dumps(obj)


def dumps_pretty(obj: Any) -> bytes:
    """Google's unary style: two-space indent and a trailing newline."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def deeper_than(value: Any, limit: int, raw: object = None) -> bool:
    """Whether `value` (parsed from `raw`, when given) nests containers more than `limit` levels deep.

    Iterative, so any depth is safe to ask about; a `raw` text with at most `limit` brackets in all
    cannot be that deep, which spares the walk for almost every request.
    """
    if isinstance(raw, bytes) and raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    if isinstance(raw, str) and raw.count("[") + raw.count("{") <= limit:
        return False
    if not isinstance(value, (dict, list)):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False
