"""The state every worker and instance shares: upstream key health, client rate counters, usage records,
and the Responses API's stored responses."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence

from ..config import Config
from ..errors import GatewayError
from ..upstream.key_pool import Affinity, KeyState, StateChange
from ..usage.limits import Limit

log = logging.getLogger(__name__)

# A usage record's columns, in export order, with the type each is stored and exported as.
USAGE_COLUMNS: tuple[tuple[str, type], ...] = (
    ("time", float),  # when the request started, Unix seconds
    ("request_id", str),
    ("client", str),  # the client key's name, never the key
    ("dialect", str),
    ("endpoint", str),
    ("model", str),
    ("stream", bool),
    ("status", int),
    ("prompt_tokens", int),
    ("completion_tokens", int),
    ("thought_tokens", int),
    ("first_byte_ms", float),
    ("total_ms", float),
    ("attempts", int),
    ("key_label", str),  # the upstream key's label, never the key
    ("error", str),
    ("served_model", str),  # the model that answered: `model`, or one of its fallbacks
)
USAGE_FIELDS = tuple(name for name, _ in USAGE_COLUMNS)


# The most resources of one family `Store.owned` returns for one client.
OWNED_LIMIT = 10_000


class StoreUnavailable(GatewayError):
    """The shared store cannot be reached or written; the details go to the log, not the client."""

    status, kind = 503, "api_error"  # the gateway's own fault: neither Gemini's nor a missing setting

    def __init__(self, detail: str):
        log.error("state store unavailable: %s", detail)
        super().__init__("The gateway's state store is unavailable; try again shortly.")
        self.detail = detail


class Store(ABC):
    """One interface, two backends: SQLite on one host, Redis across hosts.

    Every method is atomic across processes and raises StoreUnavailable when the backend fails.
    """

    backend = "?"

    # -- upstream key health (app.upstream.key_pool.KeyStateStore) ---------------------------
    # A key's health is under its id; a (key, model) pair's under "id/model" (key_pool.pair_id).
    @abstractmethod
    def key_states(self) -> Mapping[str, KeyState]:
        """Every state that is not fresh, keys and (key, model) pairs, by id, in one read."""

    @abstractmethod
    def key_states_with(
        self, names: Sequence[str], now: float
    ) -> tuple[Mapping[str, KeyState], Mapping[str, Affinity]]:
        """`key_states()` and the affinities of `names` that are still live at `now`, in one read."""

    @abstractmethod
    def update_key_state(self, key_id: str, change: StateChange) -> KeyState:
        """Apply `change` to one state atomically; a fresh result is deleted."""

    # -- affinity: which key holds a resource, which key a session used last ----------------------
    @abstractmethod
    def remember(self, name: str, affinity: Affinity, now: float) -> None:
        """Keep `name` -> affinity until `affinity.until`, `now` being the caller's clock (then it is gone)."""

    @abstractmethod
    def remember_once(self, name: str, affinity: Affinity, now: float) -> bool:
        """`remember`, unless an affinity is live under `name`: True when this call stored it. Atomic, so
        of several workers claiming the same name exactly one wins (something done once, such as
        counting a batch's tokens)."""

    @abstractmethod
    def forget(self, name: str) -> None:
        """Drop `name` (a resource deleted, or one Gemini says is gone)."""

    @abstractmethod
    def owned(self, client: str, prefix: str, now: float) -> Mapping[str, Affinity]:
        """The live affinities recorded for `client` whose names start with `prefix` (the resources of
        one family it created), by name, at most OWNED_LIMIT of them."""

    # -- client limits ----------------------------------------------------------------------
    @abstractmethod
    def admit(
        self,
        client: str,
        limits: Sequence[Limit],
        now: float,
        *,
        amounts: Mapping[str, int] | None = None,
        holder: str | None = None,
    ) -> tuple[Limit, float] | None:
        """If every limit in `limits` has room (its window's total under its amount; a concurrency
        limit, a free slot), add to each its metric's amount from `amounts` (default: one request),
        give `holder` a slot under each concurrency limit until `finish` or the limit's lease ends,
        and return None. Otherwise change nothing and return the limit to wait for longest and the
        seconds to wait. A limit is only checked for room: one request may take it past its amount,
        and the next ones wait until the window has made up for it."""

    # -- admin logins -------------------------------------------------------------------------
    @abstractmethod
    def login_attempt(
        self, address: str, now: float, backoff: Callable[[int], float], forget: float
    ) -> float | None:
        """Count a login attempt from `address` as a failure unless the address must still wait: return
        the seconds left to wait (counting nothing), or None. An address with n failures waits
        `backoff(n)` seconds after its latest; they are forgotten `forget` seconds after it. A success
        is then cleared with `login_succeeded`, so only failures stay counted."""

    @abstractmethod
    def login_succeeded(self, address: str) -> None:
        """Forget the address's failures."""

    @abstractmethod
    def revoke_session(self, session_id: str, until: float) -> None:
        """End an admin session everywhere: `session_revoked` says so until `until` (when it expires anyway)."""

    @abstractmethod
    def session_revoked(self, session_id: str, now: float) -> bool:
        """Whether the session was ended by `revoke_session`."""

    # -- usage --------------------------------------------------------------------------------
    @abstractmethod
    def finish(
        self,
        row: Mapping,
        client: str | None,
        token_limits: Sequence[Limit],
        tokens: int,
        now: float,
        *,
        reserved: int = 0,
        reserved_at: float = 0.0,
        holder: str | None = None,
    ) -> None:
        """Store one request's usage row and settle its client's limits, durably, in one transaction:
        charge `tokens` to the token limits, give back the `reserved` estimate added to them at
        `reserved_at`, and free `holder`'s concurrency slot. `row` has the USAGE_FIELDS."""

    @abstractmethod
    def usage(self, since: float, until: float, client: str | None = None) -> Iterator[dict]:
        """The usage rows whose time is in [since, until), oldest first, typed as USAGE_COLUMNS."""

    @abstractmethod
    def prune(self, before: float) -> int:
        """Delete usage rows older than `before` (and spent rate counters and slots, expired affinities,
        (key, model) states whose rests ended a day ago, and expired stored responses); returns the
        usage rows deleted."""

    # -- stored responses (app.openai.responses.stored) -------------------------------------
    @abstractmethod
    def put_response(
        self, owner: str, response_id: str, data: bytes, *, now: float, expires: float, owner_bytes: int
    ) -> None:
        """Keep one response's bytes for `owner` until `expires`. When the owner's responses then take
        more than `owner_bytes`, its oldest others are deleted until they fit."""

    @abstractmethod
    def get_response(self, owner: str, response_id: str, now: float) -> bytes | None:
        """A response `owner` stored that has not expired; None for any other (another owner's too)."""

    @abstractmethod
    def delete_response(self, owner: str, response_id: str) -> bool:
        """Delete one of `owner`'s responses; False when it had none of that id."""

    # -- runtime settings (app.config.runtime) -------------------------------------------------
    @abstractmethod
    def settings(self) -> dict[str, str]:
        """The runtime settings changed on the admin page: variable -> its text, in one read."""

    @abstractmethod
    def update_settings(self, changes: Mapping[str, str | None]) -> None:
        """Set each variable's text, or forget it when None, in one transaction."""

    # -- tool calls (app.openai.tool_ids) ----------------------------------------------------
    @abstractmethod
    def remember_calls(self, client: str, calls: Mapping[str, str], ttl: float, now: float) -> None:
        """Keep what each tool call id carries (call id -> text) for `client`, for `ttl` seconds."""

    @abstractmethod
    def recall_calls(self, client: str, call_ids: Sequence[str], now: float) -> dict[str, str]:
        """What `remember_calls` kept for these ids of `client` and has not expired, in one read."""

    # -- usage import -----------------------------------------------------------------------------
    @abstractmethod
    def import_usage(self, rows: Sequence[Mapping]) -> int:
        """Add usage rows (USAGE_FIELDS) whose request id is not stored yet; returns how many were added.
        Imported rows charge no limits: they are history."""

    def close(self) -> None:  # noqa: B027 (a store with nothing to release need not override it)
        """Release connections; the store must not be used afterwards."""


def open_store(config: Config) -> Store:
    """The store the config names: Redis when REDIS_URL is set, else SQLite in DATA_DIR."""
    if config.redis_url:
        from .redis import RedisStore

        store = RedisStore(
            config.redis_url,
            prefix=config.redis_prefix,
            retention_days=config.usage_retention_days,
            tls_verify=not config.redis_tls_no_verify,
        )
        try:
            store.ping()
        except StoreUnavailable:
            pass  # logged; requests answer 503 until Redis is back, and the gateway need not restart
        return store
    from .sqlite import SQLiteStore

    return SQLiteStore(config.data_dir / DB_NAME)


DB_NAME = "gemgate.db"


def typed_row(values: Mapping[str, object]) -> dict:
    """A usage row with each column as its declared type (None stays None)."""
    row = {}
    for name, kind in USAGE_COLUMNS:
        value = values.get(name)
        if value is not None and not isinstance(value, kind):
            if isinstance(value, bytes):
                value = value.decode()
            value = bool(int(str(value))) if kind is bool else kind(value)
        row[name] = value
    return row
