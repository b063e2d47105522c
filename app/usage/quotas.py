"""Admitting each request against its client key's limits, counted in the shared store: requests when it
arrives, its estimated tokens (and any extra upstream calls) once its body is known, settled when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..config import ClientKey
from ..errors import RateLimited
from ..store import Store
from .limits import BYTES_PER_TOKEN, Limit, limits_of
from .record import RequestRecord


class Quotas:
    """Admits each request against its client key's limits, counted in the shared store."""

    def __init__(
        self,
        keys: Sequence[ClientKey],
        store: Store,
        clock: Callable[[], float] = time.time,
        *,
        reserved_output_tokens: int = 8192,
    ):
        self.store = store
        self.clock = clock
        self.reserved_output_tokens = reserved_output_tokens
        self._keys = {key.name: key for key in keys}
        self._limits = {key.name: limits_of(key) for key in keys}
        self._token_limits = {
            name: tuple(limit for limit in ls if limit.metric == "tokens")
            for name, ls in self._limits.items()
        }
        self._request_limits = {
            name: tuple(limit for limit in ls if limit.metric == "requests")
            for name, ls in self._limits.items()
        }
        self._concurrent = {
            name: any(limit.metric == "concurrent" for limit in ls) for name, ls in self._limits.items()
        }

    def admit(self, record: RequestRecord) -> None:
        """Bind the client's allowed models to its record, count the request and take its slot under a
        concurrency limit; 429 when over a limit (its token limits included: they must have room)."""
        key = self._keys.get(record.client or "")
        if key is None:
            return  # an API_KEYS key: no limits
        record.allowed_models = key.models
        limits = self._limits[key.name]
        if not limits:
            return
        holder = record.request_id if self._concurrent[key.name] else None
        _refuse_over(self.store.admit(key.name, limits, self.clock(), holder=holder))
        record.holds_slot = holder is not None

    def reserve(
        self, record: RequestRecord, *, output_tokens: int | None, input_bytes: int, calls: int = 1
    ) -> None:
        """Hold the request's estimated tokens against its client's token limits until it ends, and count
        its upstream calls past the first against the request limits; 429 when a limit has no room.

        The estimate is the request's own output cap (or RESERVED_OUTPUT_TOKENS) for each call, plus its
        body's size in tokens. Checked and held in one step of the shared store, so concurrent requests
        cannot all pass a check made before any of them is charged."""
        name = record.client or ""
        if name not in self._keys or record.reserved_at:
            return
        token_limits = self._token_limits[name]
        extra_calls = max(calls - 1, 0)
        checked = token_limits + (self._request_limits[name] if extra_calls else ())
        if not checked:
            return
        output = self.reserved_output_tokens if output_tokens is None else max(output_tokens, 0)
        estimate = input_bytes // BYTES_PER_TOKEN + calls * output if token_limits else 0
        now = self.clock()
        _refuse_over(
            self.store.admit(name, checked, now, amounts={"tokens": estimate, "requests": extra_calls})
        )
        record.reserved, record.reserved_at = estimate, now

    def token_limits(self, client: str | None) -> tuple[Limit, ...]:
        return self._token_limits.get(client, ()) if client else ()


def _refuse_over(over: tuple[Limit, float] | None) -> None:
    if over is not None:
        limit, wait = over
        raise RateLimited(
            f"This API key is over its limit of {limit.describe()}; retry in {int(wait + 0.999)}s.",
            retry_after=wait,
        )
