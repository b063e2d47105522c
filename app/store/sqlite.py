"""The shared store in one SQLite file (WAL mode), for every worker on one host."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ..upstream.key_pool import Affinity, KeyState, StateChange
from ..usage.limits import Limit
from . import OWNED_LIMIT, USAGE_COLUMNS, USAGE_FIELDS, Store, StoreUnavailable, typed_row

_SQL_TYPES = {float: "REAL", str: "TEXT", bool: "INTEGER", int: "INTEGER"}
# How long an operation waits for another process's transaction before the store counts as
# unavailable. SQLite's own busy handler would sleep inside C and stall every request of a gevent
# worker, so it is off: the wait is a retry loop whose time.sleep lets the other requests run.
BUSY_TIMEOUT = 5.0
_FIRST_RETRY = 0.0002
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_PRUNE_BATCH = 5000
_REQUEST = {"requests": 1}
SLOT_RETRY = 1.0  # seconds a client over its concurrency limit is told to wait
_PAGE = 1000
_INHERITED: list[sqlite3.Connection] = []
T = TypeVar("T")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS key_state (
    key_id TEXT PRIMARY KEY,
    cooldown_until REAL NOT NULL,
    disabled_until REAL NOT NULL,
    failures INTEGER NOT NULL,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS affinity (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    client TEXT,
    until REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS affinity_client ON affinity (client, name);
CREATE TABLE IF NOT EXISTS quota (
    client TEXT NOT NULL,
    limit_name TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (client, limit_name, bucket)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS quota_expires ON quota (expires);
CREATE TABLE IF NOT EXISTS slot (
    client TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (client, holder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS admin_login (
    address TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    latest REAL NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revoked_session (
    session_id TEXT PRIMARY KEY,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    {", ".join(f"{name} {_SQL_TYPES[kind]}" for name, kind in USAGE_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS usage_time ON usage (time);
CREATE TABLE IF NOT EXISTS setting (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tool_call (
    client TEXT NOT NULL,
    call_id TEXT NOT NULL,
    value TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (client, call_id)
);
CREATE INDEX IF NOT EXISTS tool_call_expires ON tool_call (expires);
CREATE TABLE IF NOT EXISTS stored_response (
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    stored REAL NOT NULL,
    expires REAL NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE INDEX IF NOT EXISTS stored_response_age ON stored_response (owner, stored);
CREATE INDEX IF NOT EXISTS stored_response_expires ON stored_response (expires);
"""
# key_state rows hold a key's health (key_id is the key's id) or a (key, model) pair's ("id/model");
# columns added since the first version are added to an older file when it is opened.
_KEY_STATE_ADDED = (("probe_until", "REAL NOT NULL DEFAULT 0"), ("soft_until", "REAL NOT NULL DEFAULT 0"))
_KEY_STATE_FIELDS = "cooldown_until, disabled_until, failures, last_error, probe_until, soft_until"
_AFFINITY_ADDED = (("note", "TEXT"),)
# A (key, model) pair whose rests all ended this long ago is forgotten by prune().
STALE_PAIR = 86400.0
_INSERT_USAGE = f"INSERT INTO usage ({', '.join(USAGE_FIELDS)}) VALUES ({', '.join('?' * len(USAGE_FIELDS))})"
# An imported row goes in only when no row has its request id yet (the index makes the check cheap).
_IMPORT_USAGE = (
    f"INSERT INTO usage ({', '.join(USAGE_FIELDS)}) SELECT {', '.join('?' * len(USAGE_FIELDS))} "
    "WHERE NOT EXISTS (SELECT 1 FROM usage WHERE request_id = ?)"
)
_EXPIRED_CALLS = 100  # expired tool calls deleted along with each write, so the table stays small
_LOOKUP = 500  # ids per IN (...) query, well under SQLite's variable limit
_ADD = (
    "INSERT INTO quota (client, limit_name, bucket, amount, expires) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (client, limit_name, bucket) DO UPDATE SET amount = amount + excluded.amount"
)


class SQLiteStore(Store):
    backend = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        self._run(lambda db: None)  # open and set up now: a bad DATA_DIR stops the start

    # -- connection -----------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        # One connection per process: a connection inherited across fork is neither used nor
        # closed (closing it could checkpoint and drop the WAL under the parent): it is kept.
        if self._db is None or self._pid != os.getpid():
            if self._db is not None:
                _INHERITED.append(self._db)
                self._db = None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            try:
                # WAL: readers never wait for the writer, and a process killed mid-write leaves
                # the file readable (the torn transaction is dropped on the next open). NORMAL:
                # commits survive a crashed process; only an OS crash can lose the latest ones.
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                with _transaction(db):  # every worker runs this at start: IF NOT EXISTS
                    for statement in _SCHEMA.split(";"):
                        db.execute(statement)
                    _add_missing_columns(db)
                    # After the columns: an older database gains request_id only then.
                    db.execute("CREATE INDEX IF NOT EXISTS usage_request_id ON usage (request_id)")
            except BaseException:
                db.close()
                raise
            self._db, self._pid = db, os.getpid()
        return self._db

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` on this process's connection; retried while another process holds the lock."""
        delay, waited = _FIRST_RETRY, 0.0
        while True:
            with self._lock:
                try:
                    return work(self._connection())
                except sqlite3.OperationalError as exc:
                    if (
                        getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _BUSY_CODES
                        or waited >= BUSY_TIMEOUT
                    ):
                        raise StoreUnavailable(f"SQLite {self.path}: {exc}") from None
                except (sqlite3.Error, OSError) as exc:
                    raise StoreUnavailable(f"SQLite {self.path}: {exc}") from None
            time.sleep(delay)  # outside the lock, and cooperative under gevent
            waited += delay
            delay = min(delay * 2, 0.005)

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    # -- key health -----------------------------------------------------------------------
    def key_states(self) -> Mapping[str, KeyState]:
        return self._run(_key_states)

    def key_states_with(
        self, names: Sequence[str], now: float
    ) -> tuple[Mapping[str, KeyState], Mapping[str, Affinity]]:
        def read(db: sqlite3.Connection) -> tuple[Mapping[str, KeyState], Mapping[str, Affinity]]:
            rows = db.execute(
                f"SELECT name, key_id, client, until, note FROM affinity "
                f"WHERE name IN ({', '.join('?' * len(names))})",
                tuple(names),
            )
            found = {row[0]: Affinity(*row[1:]) for row in rows if row[3] > now}
            return _key_states(db), found

        return self._run(read)

    def remember(self, name: str, affinity: Affinity, now: float) -> None:
        self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO affinity (name, key_id, client, until, note) VALUES (?, ?, ?, ?, ?)",
                (name, affinity.key_id, affinity.client, affinity.until, affinity.note),
            )
        )

    def remember_once(self, name: str, affinity: Affinity, now: float) -> bool:
        def claim(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT INTO affinity (name, key_id, client, until, note) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, client = excluded.client, "
                "until = excluded.until, note = excluded.note WHERE affinity.until <= ?",
                (name, affinity.key_id, affinity.client, affinity.until, affinity.note, now),
            )
            return cursor.rowcount == 1

        return self._run(claim)

    def forget(self, name: str) -> None:
        self._run(lambda db: db.execute("DELETE FROM affinity WHERE name = ?", (name,)))

    def owned(self, client: str, prefix: str, now: float) -> Mapping[str, Affinity]:
        def read(db: sqlite3.Connection) -> Mapping[str, Affinity]:
            rows = db.execute(
                "SELECT name, key_id, client, until, note FROM affinity "
                "WHERE client = ? AND name >= ? AND name < ? AND until > ? LIMIT ?",
                (client, prefix, prefix + "\U0010ffff", now, OWNED_LIMIT),
            )
            return {row[0]: Affinity(*row[1:]) for row in rows}

        return self._run(read)

    def update_key_state(self, key_id: str, change: StateChange) -> KeyState:
        def update(db: sqlite3.Connection) -> KeyState:
            with _transaction(db):
                row = db.execute(
                    f"SELECT {_KEY_STATE_FIELDS} FROM key_state WHERE key_id = ?", (key_id,)
                ).fetchone()
                state = change(KeyState(*row) if row else KeyState())
                if state == KeyState():
                    db.execute("DELETE FROM key_state WHERE key_id = ?", (key_id,))
                else:
                    db.execute(
                        f"INSERT OR REPLACE INTO key_state (key_id, {_KEY_STATE_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            key_id,
                            state.cooldown_until,
                            state.disabled_until,
                            state.failures,
                            state.last_error,
                            state.probe_until,
                            state.soft_until,
                        ),
                    )
                return state

        return self._run(update)

    # -- client limits --------------------------------------------------------------------
    def admit(
        self,
        client: str,
        limits: Sequence[Limit],
        now: float,
        *,
        amounts: Mapping[str, int] | None = None,
        holder: str | None = None,
    ) -> tuple[Limit, float] | None:
        adding = _REQUEST if amounts is None else amounts
        concurrent = [limit for limit in limits if limit.metric == "concurrent"]
        counted = [limit for limit in limits if limit.metric != "concurrent"]

        def admit(db: sqlite3.Connection) -> tuple[Limit, float] | None:
            with _transaction(db):
                buckets: dict[str, dict[int, int]] = {limit.name: {} for limit in counted}
                spent = False
                for name, bucket, amount, expires in db.execute(
                    "SELECT limit_name, bucket, amount, expires FROM quota WHERE client = ?", (client,)
                ):
                    if expires <= now:
                        spent = True
                    elif name in buckets:
                        buckets[name][bucket] = amount
                if spent:
                    db.execute("DELETE FROM quota WHERE client = ? AND expires <= ?", (client, now))
                waits = [(limit, limit.wait(buckets[limit.name], now)) for limit in counted]
                over = [(limit, wait) for limit, wait in waits if wait is not None]
                if concurrent and holder is not None:
                    db.execute("DELETE FROM slot WHERE client = ? AND expires <= ?", (client, now))
                    (held,) = db.execute("SELECT COUNT(*) FROM slot WHERE client = ?", (client,)).fetchone()
                    over += [(limit, SLOT_RETRY) for limit in concurrent if held >= limit.amount]
                if over:
                    return max(over, key=lambda item: item[1])
                for metric, amount in adding.items():
                    if amount:
                        _charge(
                            db, client, [limit for limit in counted if limit.metric == metric], amount, now
                        )
                if concurrent and holder is not None:
                    lease = max(limit.window for limit in concurrent)
                    db.execute("INSERT OR REPLACE INTO slot VALUES (?, ?, ?)", (client, holder, now + lease))
                return None

        return self._run(admit)

    # -- admin logins ---------------------------------------------------------------------
    def login_attempt(
        self, address: str, now: float, backoff: Callable[[int], float], forget: float
    ) -> float | None:
        def attempt(db: sqlite3.Connection) -> float | None:
            with _transaction(db):
                found = db.execute(
                    "SELECT failures, latest, expires FROM admin_login WHERE address = ?", (address,)
                ).fetchone()
                failures, latest = (found[0], found[1]) if found and found[2] > now else (0, 0.0)
                wait = latest + backoff(failures) - now if failures else 0.0
                if wait > 0:
                    return wait
                db.execute(
                    "INSERT OR REPLACE INTO admin_login VALUES (?, ?, ?, ?)",
                    (address, failures + 1, now, now + forget),
                )
                return None

        return self._run(attempt)

    def login_succeeded(self, address: str) -> None:
        self._run(lambda db: db.execute("DELETE FROM admin_login WHERE address = ?", (address,)))

    def revoke_session(self, session_id: str, until: float) -> None:
        self._run(
            lambda db: db.execute("INSERT OR REPLACE INTO revoked_session VALUES (?, ?)", (session_id, until))
        )

    def session_revoked(self, session_id: str, now: float) -> bool:
        def read(db: sqlite3.Connection) -> bool:
            found = db.execute(
                "SELECT 1 FROM revoked_session WHERE session_id = ? AND expires > ?", (session_id, now)
            ).fetchone()
            return found is not None

        return self._run(read)

    # -- usage ----------------------------------------------------------------------------
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
        values = tuple(_sql_value(row.get(name)) for name in USAGE_FIELDS)

        def finish(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(_INSERT_USAGE, values)
                if client and tokens > 0:
                    _charge(db, client, token_limits, tokens, now)
                if client and reserved:
                    _charge(db, client, token_limits, -reserved, reserved_at)
                if client and holder is not None:
                    db.execute("DELETE FROM slot WHERE client = ? AND holder = ?", (client, holder))

        self._run(finish)

    def usage(self, since: float, until: float, client: str | None = None) -> Iterator[dict]:
        query = f"SELECT id, {', '.join(USAGE_FIELDS)} FROM usage WHERE (time, id) > (?, ?) AND time < ?"
        if client is not None:
            query += " AND client = ?"
        query += f" ORDER BY time, id LIMIT {_PAGE}"
        after = (since, -1)
        while True:  # page by page, so an export neither holds the lock nor the whole table
            args = after + (until,) + ((client,) if client is not None else ())

            def page(db: sqlite3.Connection, args: tuple = args) -> list:
                return db.execute(query, args).fetchall()

            rows = self._run(page)
            for values in rows:
                yield typed_row(dict(zip(USAGE_FIELDS, values[1:], strict=False)))
            if len(rows) < _PAGE:
                return
            after = (rows[-1][1], rows[-1][0])

    def import_usage(self, rows: Sequence[Mapping]) -> int:
        added = 0
        for start in range(0, len(rows), _PAGE):  # in batches: the write lock is shared with every worker
            batch = rows[start : start + _PAGE]

            def insert(db: sqlite3.Connection, batch: Sequence[Mapping] = batch) -> int:
                inserted = 0
                with _transaction(db):
                    for row in batch:
                        values = tuple(_sql_value(row.get(name)) for name in USAGE_FIELDS)
                        inserted += db.execute(_IMPORT_USAGE, values + (row["request_id"],)).rowcount
                return inserted

            added += self._run(insert)
        return added

    # -- runtime settings -----------------------------------------------------------------------
    def settings(self) -> dict[str, str]:
        return self._run(lambda db: dict(db.execute("SELECT name, value FROM setting").fetchall()))

    def update_settings(self, changes: Mapping[str, str | None]) -> None:
        def update(db: sqlite3.Connection) -> None:
            with _transaction(db):
                for name, value in changes.items():
                    if value is None:
                        db.execute("DELETE FROM setting WHERE name = ?", (name,))
                    else:
                        db.execute(
                            "INSERT OR REPLACE INTO setting (name, value) VALUES (?, ?)", (name, value)
                        )

        self._run(update)

    # -- tool calls -------------------------------------------------------------------------------
    def remember_calls(self, client: str, calls: Mapping[str, str], ttl: float, now: float) -> None:
        rows = [(client, call_id, value, now + ttl) for call_id, value in calls.items()]

        def remember(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.executemany("INSERT OR REPLACE INTO tool_call VALUES (?, ?, ?, ?)", rows)
                db.execute(
                    "DELETE FROM tool_call WHERE rowid IN "
                    "(SELECT rowid FROM tool_call WHERE expires <= ? LIMIT ?)",
                    (now, _EXPIRED_CALLS),
                )

        self._run(remember)

    def recall_calls(self, client: str, call_ids: Sequence[str], now: float) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(call_ids), _LOOKUP):
            chunk = tuple(call_ids[start : start + _LOOKUP])
            query = (
                "SELECT call_id, value FROM tool_call WHERE client = ? AND expires > ? "
                f"AND call_id IN ({', '.join('?' * len(chunk))})"
            )
            args = (client, now, *chunk)

            def read(db: sqlite3.Connection, query: str = query, args: tuple = args) -> list[tuple[str, str]]:
                return db.execute(query, args).fetchall()

            found.update(self._run(read))
        return found

    def prune(self, before: float) -> int:
        def batch(db: sqlite3.Connection) -> int:
            with _transaction(db):
                count = db.execute(
                    "DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE time < ? LIMIT ?)",
                    (before, _PRUNE_BATCH),
                ).rowcount
                if count < _PRUNE_BATCH:
                    now = time.time()
                    db.execute("DELETE FROM quota WHERE expires <= ?", (now,))
                    for table in ("slot", "admin_login", "revoked_session"):
                        db.execute(f"DELETE FROM {table} WHERE expires <= ?", (now,))
                    db.execute("DELETE FROM affinity WHERE until <= ?", (now,))
                    db.execute(
                        "DELETE FROM key_state WHERE instr(key_id, '/') > 0 AND "
                        "max(cooldown_until, disabled_until, soft_until) < ?",
                        (now - STALE_PAIR,),
                    )
                    db.execute("DELETE FROM stored_response WHERE expires <= ?", (now,))
                return count

        deleted = 0
        while True:  # in batches: a long delete would hold the write lock every worker needs
            count = self._run(batch)
            deleted += count
            if count < _PRUNE_BATCH:
                return deleted
            time.sleep(0)  # under gevent, this worker's other requests run between batches

    # -- stored responses -----------------------------------------------------------------
    def put_response(
        self, owner: str, response_id: str, data: bytes, *, now: float, expires: float, owner_bytes: int
    ) -> None:
        def put(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute("DELETE FROM stored_response WHERE owner = ? AND expires <= ?", (owner, now))
                db.execute(
                    "INSERT OR REPLACE INTO stored_response VALUES (?, ?, ?, ?, ?, ?)",
                    (owner, response_id, now, expires, len(data), data),
                )
                (total,) = db.execute(
                    "SELECT SUM(size) FROM stored_response WHERE owner = ?", (owner,)
                ).fetchone()
                if total <= owner_bytes:
                    return
                oldest_first = db.execute(
                    "SELECT id, size FROM stored_response WHERE owner = ? AND id != ? ORDER BY stored",
                    (owner, response_id),
                ).fetchall()
                evicted = []
                for other, size in oldest_first:
                    if total <= owner_bytes:
                        break
                    evicted.append((owner, other))
                    total -= size
                db.executemany("DELETE FROM stored_response WHERE owner = ? AND id = ?", evicted)

        self._run(put)

    def get_response(self, owner: str, response_id: str, now: float) -> bytes | None:
        row = self._run(
            lambda db: db.execute(
                "SELECT data FROM stored_response WHERE owner = ? AND id = ? AND expires > ?",
                (owner, response_id, now),
            ).fetchone()
        )
        return bytes(row[0]) if row else None

    def delete_response(self, owner: str, response_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            with _transaction(db):
                return (
                    db.execute(
                        "DELETE FROM stored_response WHERE owner = ? AND id = ?", (owner, response_id)
                    ).rowcount
                    > 0
                )

        return self._run(delete)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so a read-then-write cannot interleave with
    # another process's (and a deferred upgrade cannot deadlock).
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _charge(db: sqlite3.Connection, client: str, limits: Sequence[Limit], amount: int, now: float) -> None:
    rows = []
    for limit in limits:
        bucket = limit.bucket(now)
        rows.append((client, limit.name, bucket, amount, limit.expires(bucket)))
    if rows:
        db.executemany(_ADD, rows)


def _key_states(db: sqlite3.Connection) -> Mapping[str, KeyState]:
    rows = db.execute(f"SELECT key_id, {_KEY_STATE_FIELDS} FROM key_state")
    return {row[0]: KeyState(*row[1:]) for row in rows}


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """A database from an older version gains the columns added since."""
    present = {row[1] for row in db.execute("PRAGMA table_info(usage)")}
    for name, kind in USAGE_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE usage ADD COLUMN {name} {_SQL_TYPES[kind]}")
    for table, added in (("key_state", _KEY_STATE_ADDED), ("affinity", _AFFINITY_ADDED)):
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, declaration in added:
            if name not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def _sql_value(value):
    return int(value) if isinstance(value, bool) else value
