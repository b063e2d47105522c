"""The shared store in Redis, for instances on several hosts: one view of keys, limits and usage."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .. import jsonx
from ..upstream.key_pool import Affinity, KeyState, StateChange
from ..usage.limits import BUCKETS, Limit
from . import OWNED_LIMIT, USAGE_FIELDS, Store, StoreUnavailable, typed_row

_PAGE = 1000
# A (key, model) pair whose rests all ended this long ago is forgotten by prune().
STALE_PAIR = 86400.0
# Stream ids are when a request ended (by the clock of the gateway that stored it), `time` is
# when it started: an export looks this far either side of its window, then filters on `time`.
_CLOCK_SKEW_MS = 60_000
_LONGEST_REQUEST_MS = 86_400_000

# Atomically: drop spent buckets and lapsed slots, check every limit for room, and either report the
# limits with none (with their buckets, for the Retry-After) or add this request's amounts and slot.
# KEYS[i]: limit i's hash (bucket -> amount), or its sorted set of slots (holder -> lease end).
# ARGV, 6 values per limit. A counted limit: 'b', the current bucket, the oldest bucket still counted,
# the amount allowed, the amount to add, the hash's TTL (ms). A concurrency limit: 'c', now, the slots
# allowed, the holder ('' for none: not checked), the lease's end, the set's TTL (ms).
_ADMIT = """
local over = {}
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 6
  if ARGV[a + 1] == 'c' then
    if ARGV[a + 4] ~= '' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[a + 2])
      if redis.call('ZCARD', key) >= tonumber(ARGV[a + 3]) then
        over[#over + 1] = i
        over[#over + 1] = {}
      end
    end
  else
    local oldest, amount = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    local flat = redis.call('HGETALL', key)
    local used, kept = 0, {}
    for j = 1, #flat, 2 do
      if tonumber(flat[j]) < oldest then
        redis.call('HDEL', key, flat[j])
      else
        used = used + tonumber(flat[j + 1])
        kept[#kept + 1] = flat[j]
        kept[#kept + 1] = flat[j + 1]
      end
    end
    if used >= amount then
      over[#over + 1] = i
      over[#over + 1] = kept
    end
  end
end
if #over > 0 then
  return over
end
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 6
  if ARGV[a + 1] == 'c' then
    if ARGV[a + 4] ~= '' then
      redis.call('ZADD', key, ARGV[a + 5], ARGV[a + 4])
      redis.call('PEXPIRE', key, ARGV[a + 6])
    end
  elseif ARGV[a + 5] ~= '0' then
    redis.call('HINCRBY', key, ARGV[a + 2], ARGV[a + 5])
    redis.call('PEXPIRE', key, ARGV[a + 6])
  end
end
return over
"""
_REQUEST = {"requests": 1}
SLOT_RETRY = 1.0  # seconds a client over its concurrency limit is told to wait

# Stored responses, per owner: a hash of the responses' bytes, a sorted set of their expiry times (the
# oldest first) and a byte counter, under one {owner} hash tag. Both scripts keep the three in step.
_DROP = """
local function drop(id)
  local size = redis.call('HSTRLEN', KEYS[1], id)
  local gone = redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if size > 0 then redis.call('DECRBY', KEYS[3], size) end
  return gone
end
"""
# ARGV: id, bytes, now, expires, the owner's byte limit, the keys' TTL (ms).
_PUT_RESPONSE = (
    _DROP
    + """
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, 100)) do
  drop(id)
end
drop(ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
local total = redis.call('INCRBY', KEYS[3], string.len(ARGV[2]))
local limit = tonumber(ARGV[5])
local skip = 0
while total > limit do
  local oldest = redis.call('ZRANGE', KEYS[2], skip, skip)[1]
  if oldest == nil then break end
  if oldest == ARGV[1] then
    skip = skip + 1
  else
    drop(oldest)
    total = tonumber(redis.call('GET', KEYS[3]))
  end
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[6]) end
"""
)
_DELETE_RESPONSE = _DROP + "return drop(ARGV[1])"


# Imported usage rows: request id -> row in one hash, request id by time in a sorted set. A row whose
# request id is there already is skipped. KEYS: the hash, the set. ARGV: request id, time, row; ...
_IMPORT = """
local added = 0
for i = 1, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 2]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
    added = added + 1
  end
end
return added
"""
_LOOKUP = 500  # keys per MGET
# Store ARGV[1] under KEYS[1] for ARGV[2] ms unless a value is there whose `until` (its third
# field) is still ahead of ARGV[3], the caller's clock; 1 when stored.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(cjson.decode(current)[3]) > tonumber(ARGV[3]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisStore(Store):
    backend = "redis"

    def __init__(
        self, url: str, *, prefix: str = "gemgate:", retention_days: float = 0.0, tls_verify: bool = True
    ):
        # Short timeouts and one quick retry: a request should fail fast (503), not hang, when
        # Redis is away. Sockets are gevent's under gunicorn, so waiting blocks no other request.
        # Heroku Redis serves rediss:// with a self-signed certificate and owns REDIS_URL.
        tls = {} if tls_verify or not url.startswith("rediss://") else {"ssl_cert_reqs": "none"}
        # redis-py types every reply as bytes | str; with decode_responses off (as here) they are bytes.
        self.r: Any = redis.Redis.from_url(
            url,
            **tls,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 1),
            health_check_interval=30,
        )
        self.prefix = prefix
        self.retention_ms = int(retention_days * 86_400_000)
        self._keys = prefix + "keys"
        self._usage = prefix + "usage"
        self._admit = self.r.register_script(_ADMIT)
        self._settings = prefix + "settings"
        self._imported = prefix + "usage:imported"  # request id -> imported row (JSON)
        self._imported_times = prefix + "usage:imported:time"  # request id by time
        self._import = self.r.register_script(_IMPORT)
        self._claim = self.r.register_script(_CLAIM)
        self._put_response = self.r.register_script(_PUT_RESPONSE)
        self._delete_response = self.r.register_script(_DELETE_RESPONSE)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis: {type(exc).__name__}: {exc}") from None

    def ping(self) -> None:
        with self._guard():
            self.r.ping()

    def close(self) -> None:
        self.r.close()

    def _quota_key(self, client: str, limit: Limit) -> str:
        # The {client} hash tag keeps one client's counters in one Redis Cluster slot.
        return f"{self.prefix}quota:{{{client}}}:{limit.name}"

    def _affinity_key(self, name: str) -> str:
        return f"{self.prefix}affinity:{name}"

    def _owned_key(self, client: str) -> str:
        # A client's resources, by when each is forgotten: the index `owned` reads.
        return f"{self.prefix}owned:{{{client}}}"

    def _slots_key(self, client: str) -> str:
        return f"{self.prefix}slots:{{{client}}}"

    # -- key health -----------------------------------------------------------------------
    # One hash: a key's health under its id, a (key, model) pair's under "id/model".
    def key_states(self) -> Mapping[str, KeyState]:
        with self._guard():
            raw = self.r.hgetall(self._keys)
        return {key_id.decode(): _state(value) for key_id, value in raw.items()}

    def key_states_with(
        self, names: Sequence[str], now: float
    ) -> tuple[Mapping[str, KeyState], Mapping[str, Affinity]]:
        with self._guard():
            pipe = self.r.pipeline(transaction=False)  # one round trip
            pipe.hgetall(self._keys)
            pipe.mget([self._affinity_key(name) for name in names])
            raw, values = pipe.execute()
        found = {}
        for name, value in zip(names, values, strict=True):
            if value is not None:
                affinity = _affinity(value)
                if affinity.until > now:
                    found[name] = affinity
        return {key_id.decode(): _state(v) for key_id, v in raw.items()}, found

    def remember(self, name: str, affinity: Affinity, now: float) -> None:
        ttl_ms = max(1, int((affinity.until - now) * 1000))
        with self._guard():
            pipe = self.r.pipeline(transaction=True)
            pipe.set(self._affinity_key(name), _affinity_value(affinity), px=ttl_ms)  # forgotten on time
            self._index(pipe, name, affinity, now)
            pipe.execute()

    def remember_once(self, name: str, affinity: Affinity, now: float) -> bool:
        ttl_ms = max(1, int((affinity.until - now) * 1000))
        with self._guard():
            stored = self._claim(
                keys=[self._affinity_key(name)], args=[_affinity_value(affinity), ttl_ms, repr(now)]
            )
            if stored:
                pipe = self.r.pipeline(transaction=False)
                self._index(pipe, name, affinity, now)
                pipe.execute()
        return bool(stored)

    def _index(self, pipe: redis.client.Pipeline, name: str, affinity: Affinity, now: float) -> None:
        """A resource's name in its client's index (with the index's expired names dropped)."""
        if affinity.client is None or not name.startswith("r:"):
            return
        key = self._owned_key(affinity.client)
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {name: affinity.until})

    def forget(self, name: str) -> None:
        with self._guard():
            pipe = self.r.pipeline(transaction=True)
            pipe.get(self._affinity_key(name))
            pipe.delete(self._affinity_key(name))
            value, _ = pipe.execute()
            if value is not None:
                client = _affinity(value).client
                if client is not None:
                    self.r.zrem(self._owned_key(client), name)

    def owned(self, client: str, prefix: str, now: float) -> Mapping[str, Affinity]:
        with self._guard():
            names = [
                n.decode()
                for n in self.r.zrangebyscore(self._owned_key(client), f"({now}", "+inf")
                if n.startswith(prefix.encode())
            ][:OWNED_LIMIT]
            values = self.r.mget([self._affinity_key(n) for n in names]) if names else []
        found = {}
        for name, value in zip(names, values, strict=True):
            if value is not None:
                affinity = _affinity(value)
                if affinity.client == client and affinity.until > now:
                    found[name] = affinity
        return found

    def update_key_state(self, key_id: str, change: StateChange) -> KeyState:
        def apply(pipe: Any) -> KeyState:  # a WATCHing pipeline (see self.r)
            raw = pipe.hget(self._keys, key_id)  # WATCHed: a concurrent change makes EXEC retry
            state = change(_state(raw) if raw else KeyState())
            pipe.multi()
            if state == KeyState():
                pipe.hdel(self._keys, key_id)
            else:
                pipe.hset(
                    self._keys,
                    key_id,
                    jsonx.dumps(
                        [
                            state.cooldown_until,
                            state.disabled_until,
                            state.failures,
                            state.last_error,
                            state.probe_until,
                            state.soft_until,
                        ]
                    ),
                )
            return state

        with self._guard():
            return self.r.transaction(apply, self._keys, value_from_callable=True)

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
        keys: list[str] = []
        args: list = []
        for limit in limits:
            if limit.metric == "concurrent":
                keys.append(self._slots_key(client))
                lease_end = now + limit.window
                args += ["c", now, limit.amount, holder or "", lease_end, int(limit.window * 1000) + 1000]
            else:
                keys.append(self._quota_key(client, limit))
                args += [
                    "b",
                    limit.bucket(now),
                    limit.oldest(now),
                    limit.amount,
                    adding.get(limit.metric, 0),
                    _ttl_ms(limit),
                ]
        with self._guard():
            over = self._admit(keys=keys, args=args)
        if not over:
            return None
        waits = []
        for i in range(0, len(over), 2):
            limit = limits[int(over[i]) - 1]
            if limit.metric == "concurrent":
                waits.append((limit, SLOT_RETRY))
                continue
            flat = over[i + 1]
            buckets = {int(flat[j]): int(flat[j + 1]) for j in range(0, len(flat), 2)}
            waits.append((limit, limit.wait(buckets, now) or 0.001))
        return max(waits, key=lambda item: item[1])

    # -- admin logins ---------------------------------------------------------------------
    def login_attempt(
        self, address: str, now: float, backoff: Callable[[int], float], forget: float
    ) -> float | None:
        key = f"{self.prefix}login:{address}"

        def attempt(pipe: redis.client.Pipeline) -> float | None:
            raw = pipe.hmget(key, "failures", "latest")  # WATCHed: a concurrent attempt makes EXEC retry
            failures, latest = (int(raw[0]), float(raw[1] or 0)) if raw[0] is not None else (0, 0.0)
            wait = latest + backoff(failures) - now if failures else 0.0
            if wait > 0:
                return wait
            pipe.multi()
            pipe.hset(key, mapping={"failures": failures + 1, "latest": now})
            pipe.pexpire(key, int(forget * 1000))
            return None

        with self._guard():
            waited = self.r.transaction(attempt, key, value_from_callable=True)
        return cast(float | None, waited)

    def login_succeeded(self, address: str) -> None:
        with self._guard():
            self.r.delete(f"{self.prefix}login:{address}")

    def revoke_session(self, session_id: str, until: float) -> None:
        with self._guard():
            self.r.set(f"{self.prefix}revoked:{session_id}", 1, pxat=int(until * 1000))

    def session_revoked(self, session_id: str, now: float) -> bool:
        with self._guard():
            return bool(self.r.exists(f"{self.prefix}revoked:{session_id}"))

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
        fields = {name: _field(row[name]) for name in USAGE_FIELDS if row.get(name) is not None}
        minid = int(now * 1000) - self.retention_ms if self.retention_ms else None
        with self._guard():
            pipe = self.r.pipeline(transaction=True)  # MULTI/EXEC: the record and its charge together
            # The entry's id is when it was stored, by this gateway's clock, as for SQLite.
            pipe.xadd(self._usage, fields, id=f"{int(now * 1000)}-*", minid=minid, approximate=True)
            if client:
                for limit in token_limits if tokens > 0 or reserved else ():
                    key = self._quota_key(client, limit)
                    if tokens > 0:
                        pipe.hincrby(key, str(limit.bucket(now)), tokens)
                    if reserved:
                        pipe.hincrby(key, str(limit.bucket(reserved_at)), -reserved)
                    pipe.pexpire(key, _ttl_ms(limit))
                if holder is not None:
                    pipe.zrem(self._slots_key(client), holder)
            added, *settled = pipe.execute(raise_on_error=False)
            if isinstance(added, redis.ResponseError):
                # Another host's clock is ahead of ours (ids only grow), or Redis is older than
                # 7.0: let Redis number the entry.
                self.r.xadd(self._usage, fields, minid=minid, approximate=True)
            for result in settled:
                if isinstance(result, Exception):
                    raise result

    def usage(self, since: float, until: float, client: str | None = None) -> Iterator[dict]:
        start = str(max(0, int(since * 1000) - _CLOCK_SKEW_MS))
        end = str(int(until * 1000) + _LONGEST_REQUEST_MS)
        found = []
        while True:
            with self._guard():
                entries = self.r.xrange(self._usage, min=start, max=end, count=_PAGE)
            for _, fields in entries:
                row = typed_row({name.decode(): value for name, value in fields.items()})
                if since <= row["time"] < until and (client is None or row["client"] == client):
                    found.append(row)
            if len(entries) < _PAGE:
                break
            start = "(" + entries[-1][0].decode()
        found.extend(self._imported_rows(since, until, client))
        # Stream order is the order requests ended; exports list them by when they started.
        found.sort(key=lambda row: row["time"])
        yield from found

    def _imported_rows(self, since: float, until: float, client: str | None) -> list[dict]:
        with self._guard():
            ids = self.r.zrangebyscore(self._imported_times, since, f"({until}")
        rows = []
        for start in range(0, len(ids), _PAGE):
            with self._guard():
                values = self.r.hmget(self._imported, ids[start : start + _PAGE])
            for value in values:
                if value is not None:
                    row = typed_row(jsonx.loads(value))
                    if client is None or row["client"] == client:
                        rows.append(row)
        return rows

    def import_usage(self, rows: Sequence[Mapping]) -> int:
        wanted = {row["request_id"] for row in rows}
        if not wanted:
            return 0
        # Rows the gateway stored itself live in the stream: look for these ids around their times.
        present = set()
        times = [row["time"] for row in rows]
        start = str(max(0, int(min(times) * 1000) - _CLOCK_SKEW_MS))
        end = str(int(max(times) * 1000) + _LONGEST_REQUEST_MS)
        while True:
            with self._guard():
                entries = self.r.xrange(self._usage, min=start, max=end, count=_PAGE)
            for _, fields in entries:
                request_id = (fields.get(b"request_id") or b"").decode()
                if request_id in wanted:
                    present.add(request_id)
            if len(entries) < _PAGE:
                break
            start = "(" + entries[-1][0].decode()
        added = 0
        fresh = [row for row in rows if row["request_id"] not in present]
        for first in range(0, len(fresh), _PAGE):
            args: list = []
            for row in fresh[first : first + _PAGE]:
                values = {name: row.get(name) for name in USAGE_FIELDS}
                args += [row["request_id"], row["time"], jsonx.dumps(values)]
            with self._guard():
                added += int(self._import(keys=[self._imported, self._imported_times], args=args))
        return added

    # -- runtime settings -----------------------------------------------------------------------
    def settings(self) -> dict[str, str]:
        with self._guard():
            raw = self.r.hgetall(self._settings)
        return {name.decode(): value.decode() for name, value in raw.items()}

    def update_settings(self, changes: Mapping[str, str | None]) -> None:
        with self._guard():
            pipe = self.r.pipeline(transaction=True)
            for name, value in changes.items():
                if value is None:
                    pipe.hdel(self._settings, name)
                else:
                    pipe.hset(self._settings, name, value)
            pipe.execute()

    # -- tool calls -------------------------------------------------------------------------------
    def _call_key(self, client: str, call_id: str) -> str:
        return f"{self.prefix}call:{{{client}}}:{call_id}"

    def remember_calls(self, client: str, calls: Mapping[str, str], ttl: float, now: float) -> None:
        with self._guard():
            pipe = self.r.pipeline(transaction=False)
            for call_id, value in calls.items():
                pipe.set(self._call_key(client, call_id), value, px=max(1, int(ttl * 1000)))
            pipe.execute()

    def recall_calls(self, client: str, call_ids: Sequence[str], now: float) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(call_ids), _LOOKUP):
            chunk = call_ids[start : start + _LOOKUP]
            with self._guard():
                values = self.r.mget([self._call_key(client, call_id) for call_id in chunk])
            found.update(
                (call_id, value.decode()) for call_id, value in zip(chunk, values, strict=True) if value
            )
        return found

    def prune(self, before: float) -> int:
        # By when requests ended, which is at most a request's length off `time`. Rate counters
        # and affinities expire once their time has passed; the clients' indexes drop their names.
        with self._guard():
            deleted = self.r.xtrim(self._usage, minid=int(before * 1000), approximate=False)
            old = self.r.zrangebyscore(self._imported_times, "-inf", f"({before}")
            if old:
                pipe = self.r.pipeline(transaction=True)
                pipe.hdel(self._imported, *old)
                pipe.zrem(self._imported_times, *old)
                pipe.execute()
            now = time.time()
            pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "owned:*"
            for key in self.r.scan_iter(match=pattern, count=500):
                self.r.zremrangebyscore(key, "-inf", now)
            stale = now - STALE_PAIR
            for state_id, value in self.r.hgetall(self._keys).items():
                s = _state(value)
                if b"/" in state_id and max(s.cooldown_until, s.disabled_until, s.soft_until) < stale:
                    # Only if unchanged since read: a rest set meanwhile stays.
                    self.r.eval(_DELETE_IF_SAME, 1, self._keys, state_id, value)
            return deleted + len(old)

    # -- stored responses -----------------------------------------------------------------
    def _response_keys(self, owner: str) -> list[str]:
        base = f"{self.prefix}responses:{{{owner}}}"
        return [base + ":data", base + ":expires", base + ":bytes"]

    def put_response(
        self, owner: str, response_id: str, data: bytes, *, now: float, expires: float, owner_bytes: int
    ) -> None:
        ttl_ms = max(1, int((expires - now) * 1000))
        with self._guard():
            self._put_response(
                keys=self._response_keys(owner), args=[response_id, data, now, expires, owner_bytes, ttl_ms]
            )

    def get_response(self, owner: str, response_id: str, now: float) -> bytes | None:
        data_key, expires_key, _ = self._response_keys(owner)
        with self._guard():
            pipe = self.r.pipeline(transaction=False)
            pipe.hget(data_key, response_id)
            pipe.zscore(expires_key, response_id)
            data, expires = pipe.execute()
        return data if data is not None and expires is not None and expires > now else None

    def delete_response(self, owner: str, response_id: str) -> bool:
        with self._guard():
            return bool(self._delete_response(keys=self._response_keys(owner), args=[response_id]))


_DELETE_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


def _state(raw: bytes) -> KeyState:
    # Four fields in entries written before probes and soft rests existed: the rest default to 0.
    return KeyState(*jsonx.loads(raw))


def _affinity(raw: bytes) -> Affinity:
    # Three fields in entries written before notes existed: the note defaults to None.
    return Affinity(*jsonx.loads(raw))


def _affinity_value(affinity: Affinity) -> bytes:
    values = [affinity.key_id, affinity.client, affinity.until]
    return jsonx.dumps(values if affinity.note is None else [*values, affinity.note])


def _ttl_ms(limit: Limit) -> int:
    return int((BUCKETS + 2) * limit.width * 1000)


def _field(value) -> bytes | str | int | float:
    return int(value) if isinstance(value, bool) else value
