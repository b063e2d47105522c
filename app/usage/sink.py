"""The accounting sink: each finished request's record into the shared store, its tokens charged."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .. import jsonx
from ..store import USAGE_FIELDS, Store, StoreUnavailable
from .quotas import Quotas
from .record import RequestRecord

log = logging.getLogger(__name__)
PRUNE_EVERY = 3600.0


def usage_row(record: RequestRecord) -> dict:
    """The record as a usage row: USAGE_FIELDS, `time` being when the request started, `endpoint` the
    route label (`/v1beta/models/{model}:generateContent`): a bounded name, never the raw path."""
    row = {name: getattr(record, name, None) for name in USAGE_FIELDS}
    row["time"] = record.started
    row["endpoint"] = record.route or "unmatched"
    return row


class UsageSink:
    """The accounting sink: stores each finished request's record and charges its tokens.

    It runs before the response ends (after_request, or the end of a stream's body), so a
    completed request's record is committed before its client has seen the last byte.
    """

    def __init__(
        self, store: Store, quotas: Quotas, retention_days: float, clock: Callable[[], float] = time.time
    ):
        self.store = store
        self.quotas = quotas
        self.retention = retention_days * 86400
        self.clock = clock
        self._next_prune = 0.0

    def __call__(self, record: RequestRecord) -> None:
        if record.client is None:
            # No client (a 401): nothing to charge and no one's usage. Metrics and the request log count
            # it; a durable row would let anyone without a key fill the store and hold its write lock.
            return
        now = self.clock()
        row = usage_row(record)
        tokens = record.prompt_tokens + record.completion_tokens + record.thought_tokens
        try:
            self.store.finish(
                row,
                record.client,
                self.quotas.token_limits(record.client),
                tokens,
                now,
                reserved=record.reserved,
                reserved_at=record.reserved_at,
                holder=record.request_id if record.holds_slot else None,
            )
        except StoreUnavailable:
            # Kept whole in the log rather than lost; it holds names and labels, never keys.
            log.error("usage record not stored: %s", jsonx.dumps(row).decode())
        if self.retention and now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            try:
                self.store.prune(now - self.retention)
            except StoreUnavailable:
                pass  # logged by StoreUnavailable; tried again in an hour
