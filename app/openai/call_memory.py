"""What today's short tool call ids stand for (Gemini's call id and thought signature), kept in the shared
store per client key, so clients that drop `extra_content` still replay Gemini 3 tool calls right."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from .. import jsonx
from ..store import Store, StoreUnavailable
from ..translate.signatures import CallRef

log = logging.getLogger(__name__)

KEEP = 7 * 86400  # seconds an id's signature is kept: a week of a conversation's tool loops


def remember(store: Store, client: str | None, calls: Mapping[str, CallRef]) -> None:
    """Keep what these new ids stand for, for the client's later turns; a store that is away costs
    only the clients that drop `extra_content` (logged)."""
    if not calls:
        return
    values = {call_id: jsonx.dumps(list(ref)).decode() for call_id, ref in calls.items()}
    try:
        store.remember_calls(client or "", values, KEEP, time.time())
    except StoreUnavailable:
        log.warning("%d tool call signatures not stored: the store is unavailable", len(values))


def recall(store: Store, client: str | None, call_ids: list[str]) -> dict[str, CallRef]:
    """What the store keeps for these ids of this client (one read, none when there are no ids)."""
    if not call_ids:
        return {}
    try:
        found = store.recall_calls(client or "", call_ids, time.time())
    except StoreUnavailable:  # the calls go with Google's stand-in signature instead
        log.warning("tool call signatures not read: the store is unavailable")
        return {}
    refs = {}
    for call_id, value in found.items():
        try:
            gemini_id, signature = jsonx.loads(value)
        except (jsonx.JSONDecodeError, ValueError, TypeError):
            continue
        refs[call_id] = CallRef(
            gemini_id if isinstance(gemini_id, str) else None,
            signature if isinstance(signature, str) else None,
        )
    return refs
