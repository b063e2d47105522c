"""The accounting sink: each finished request's record into the shared store, its tokens charged."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from functools import partial

from .. import jsonx
from ..store import USAGE_FIELDS, Store, StoreUnavailable
from .quotas import Quotas
from .record import RequestRecord

log = logging.getLogger(__name__)
PRUNE_EVERY = 3600.0
# Records kept in memory while the store is down, settled once it is back: past this many (an outage
# under heavy load) the oldest go to the log alone.
UNSETTLED_LIMIT = 10_000
SETTLE_AT_ONCE = 50  # kept records stored after one request's own: the backlog never delays one request long


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
    completed request's record is committed before its client has seen the last byte. A record the
    store refuses (it is down) is logged whole and kept, and stored with its charge, its reservation
    and its concurrency slot settled when a later record finds the store back: an outage neither loses
    usage nor leaves a client's limits holding what its finished requests reserved.
    """

    def __init__(
        self, store: Store, quotas: Quotas, retention_days: float, clock: Callable[[], float] = time.time
    ):
        self.store = store
        self.quotas = quotas
        self.retention = retention_days * 86400
        self.clock = clock
        self._next_prune = 0.0
        self._unsettled: deque[Callable[[], None]] = deque()
        self._retrying = False

    def __call__(self, record: RequestRecord) -> None:
        if record.client is None:
            # No client (a 401): nothing to charge and no one's usage. Metrics and the request log count
            # it; a durable row would let anyone without a key fill the store and hold its write lock.
            return
        now = self.clock()
        row = usage_row(record)
        tokens = record.prompt_tokens + record.completion_tokens + record.thought_tokens
        settle = partial(
            self.store.finish,
            row,
            record.client,
            self.quotas.token_limits(record.client),
            tokens,
            now,
            reserved=record.reserved,
            reserved_at=record.reserved_at,
            holder=record.request_id if record.holds_slot else None,
        )
        try:
            settle()
        except StoreUnavailable:
            # Logged whole (names and labels, never keys), and kept to be stored once the store is back.
            log.error("usage record not stored yet: %s", jsonx.dumps(row).decode())
            if len(self._unsettled) >= UNSETTLED_LIMIT:
                self._unsettled.popleft()
            self._unsettled.append(settle)
        else:
            if self._unsettled:
                self._settle_kept()
        if self.retention and now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            try:
                self.store.prune(now - self.retention)
            except StoreUnavailable:
                pass  # logged by StoreUnavailable; tried again in an hour

    def _settle_kept(self) -> None:
        """Store some of the records kept while the store was down, oldest first, until it refuses again."""
        if self._retrying:
            return  # another greenlet is at it
        self._retrying = True
        stored = 0
        try:
            while self._unsettled and stored < SETTLE_AT_ONCE:
                self._unsettled[0]()
                self._unsettled.popleft()
                stored += 1
        except StoreUnavailable:
            pass  # still down: tried again after a later record is stored
        except Exception:  # a record the store cannot take at all must not block the others behind it
            log.exception("a kept usage record could not be stored; dropped (it was logged when kept)")
            self._unsettled.popleft()
        finally:
            self._retrying = False
            if stored:
                log.warning("stored %d usage records kept while the state store was unavailable", stored)
