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
