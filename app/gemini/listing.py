"""Listing only the caller's resources: each key that holds some of them is listed in turn, its pages
filtered to the caller's names, and the pages re-cut, with a page token of the gateway's own."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import NamedTuple

from .. import jsonx
from ..errors import InvalidRequest
from ..upstream.key_pool import Affinity
from ..upstream.resources import name_of

MAX_PAGES = 10  # upstream pages one list request may read; the next page token resumes after them
DEFAULT_PAGE = 10


class Cursor(NamedTuple):
    """Where the next page starts: on this key, at this upstream page (None: its first), after
    `skip` of the caller's resources on it."""

    key_id: str
    token: str | None
    skip: int


# (key id, upstream page token) -> (the entries of that page, the next page's token or None)
Fetch = Callable[[str, str | None], tuple[list, str | None]]


def collect(
    owned: Mapping[str, Affinity], size: int, cursor: Cursor | None, fetch: Fetch
) -> tuple[list, Cursor | None]:
    """Up to `size` of the caller's resources (`owned`, by name), in each key's order, from where
    `cursor` says; and the cursor of the next page (None: there is none)."""
    keys = sorted({affinity.key_id for affinity in owned.values()})
    if cursor is not None:
        keys = [k for k in keys if k >= cursor.key_id]
    items: list = []
    pages = 0
    for position, key_id in enumerate(keys):
        resume = cursor is not None and key_id == cursor.key_id
        token = cursor.token if resume and cursor else None
        skip = cursor.skip if resume and cursor else 0
        following = Cursor(keys[position + 1], None, 0) if position + 1 < len(keys) else None
        while True:
            if pages == MAX_PAGES:
                return items, Cursor(key_id, token, skip)
            entries, next_token = fetch(key_id, token)
            pages += 1
            mine = [e for e in entries if _held(owned, name_of(e), key_id)]
            room = size - len(items)
            if len(mine) - skip > room:
                items += mine[skip : skip + room]
                return items, Cursor(key_id, token, skip + room)
            items += mine[skip:]
            skip = 0
            if not next_token:
                break
            token = next_token
            if len(items) == size:
                return items, Cursor(key_id, token, 0)
        if len(items) == size:
            return items, following
    return items, None


def collect_all(owned: Mapping[str, Affinity], fetch: Fetch) -> list:
    """Every one of the caller's resources the keys' lists show, within one request's pages."""
    return collect(owned, len(owned), None, fetch)[0] if owned else []


def page_size(value: str | None, largest: int) -> int:
    if value is None or value == "":
        return min(DEFAULT_PAGE, largest)
    try:
        size = int(value)
    except ValueError:
        raise InvalidRequest("pageSize must be a whole number.", param="pageSize") from None
    if size < 0:
        raise InvalidRequest("pageSize must not be negative.", param="pageSize")
    return min(size or DEFAULT_PAGE, largest)


def encode(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(jsonx.dumps(list(cursor))).decode().rstrip("=")


def decode(token: str | None) -> Cursor | None:
    """The cursor a page token holds; 400 for one the gateway did not make."""
    if not token:
        return None
    try:
        key_id, upstream, skip = jsonx.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, TypeError):
        raise InvalidRequest("pageToken is not a page token this gateway gave.", param="pageToken") from None
    if not (isinstance(key_id, str) and isinstance(skip, int) and skip >= 0) or not (
        upstream is None or isinstance(upstream, str)
    ):
        raise InvalidRequest("pageToken is not a page token this gateway gave.", param="pageToken")
    return Cursor(key_id, upstream, skip)


def _held(owned: Mapping[str, Affinity], name: str | None, key_id: str) -> bool:
    affinity = owned.get(name) if name is not None else None
    return affinity is not None and affinity.key_id == key_id
