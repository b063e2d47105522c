"""Admitting each request against its client key's limits, counted in the shared store."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..config import ClientKey
from ..errors import RateLimited
from ..store import Store
from .limits import Limit, limits_of
from .record import RequestRecord


class Quotas:
    """Admits each request against its client key's limits, counted in the shared store."""

    def __init__(self, keys: Sequence[ClientKey], store: Store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        self._keys = {key.name: key for key in keys}
        self._limits = {key.name: limits_of(key) for key in keys}
        self._token_limits = {
            name: tuple(limit for limit in ls if limit.metric == "tokens")
            for name, ls in self._limits.items()
        }

    def admit(self, record: RequestRecord) -> None:
        """Bind the client's allowed models to its record and count the request; 429 when over a limit."""
        key = self._keys.get(record.client) if record.client else None
        if key is None:
            return  # an API_KEYS key: no limits
        record.allowed_models = key.models
        limits = self._limits[key.name]
        if not limits:
            return
        over = self.store.admit(key.name, limits, self.clock())
        if over is not None:
            limit, wait = over
            raise RateLimited(
                f"This API key is over its limit of {limit.describe()}; retry in {int(wait + 0.999)}s.",
                retry_after=wait,
            )

    def token_limits(self, client: str | None) -> tuple[Limit, ...]:
        return self._token_limits.get(client, ()) if client else ()
