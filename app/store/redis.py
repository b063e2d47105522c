"""The shared store in Redis, for instances on several hosts: one view of keys, limits and usage."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

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

# Atomically: drop spent buckets, sum each limit's window, and either report the limits with no
# room (with their buckets, for the Retry-After) or count one request against request limits.
# KEYS[i]: limit i's hash (bucket -> amount). ARGV: per limit, 5 values: the current bucket,
# the oldest bucket still counted, the amount allowed, 1 to count this request, the hash's TTL (ms).
_ADMIT = """
local over = {}
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 5
  local oldest, amount = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
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
if #over > 0 then
  return over
end
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 5
  if ARGV[a + 4] == '1' then
    redis.call('HINCRBY', key, ARGV[a + 1], 1)
    redis.call('PEXPIRE', key, ARGV[a + 5])
  end
end
return over
"""


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
        self.r = redis.Redis.from_url(
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
        self._claim = self.r.register_script(_CLAIM)

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
        def apply(pipe: redis.client.Pipeline) -> KeyState:
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
    def admit(self, client: str, limits: Sequence[Limit], now: float) -> tuple[Limit, float] | None:
        args: list = []
        for limit in limits:
            args += [
                limit.bucket(now),
                limit.oldest(now),
                limit.amount,
                int(limit.metric == "requests"),
                _ttl_ms(limit),
            ]
        with self._guard():
            over = self._admit(keys=[self._quota_key(client, limit) for limit in limits], args=args)
        if not over:
            return None
        waits = []
        for i in range(0, len(over), 2):
            limit = limits[int(over[i]) - 1]
            flat = over[i + 1]
            buckets = {int(flat[j]): int(flat[j + 1]) for j in range(0, len(flat), 2)}
            waits.append((limit, limit.wait(buckets, now) or 0.001))
        return max(waits, key=lambda item: item[1])

    # -- usage ----------------------------------------------------------------------------
    def finish(
        self, row: Mapping, client: str | None, token_limits: Sequence[Limit], tokens: int, now: float
    ) -> None:
        fields = {name: _field(row[name]) for name in USAGE_FIELDS if row.get(name) is not None}
        minid = int(now * 1000) - self.retention_ms if self.retention_ms else None
        with self._guard():
            pipe = self.r.pipeline(transaction=True)  # MULTI/EXEC: the record and its charge together
            # The entry's id is when it was stored, by this gateway's clock, as for SQLite.
            pipe.xadd(self._usage, fields, id=f"{int(now * 1000)}-*", minid=minid, approximate=True)
            if client and tokens > 0:
                for limit in token_limits:
                    key = self._quota_key(client, limit)
                    pipe.hincrby(key, str(limit.bucket(now)), tokens)
                    pipe.pexpire(key, _ttl_ms(limit))
            added, *charged = pipe.execute(raise_on_error=False)
            if isinstance(added, redis.ResponseError):
                # Another host's clock is ahead of ours (ids only grow), or Redis is older than
                # 7.0: let Redis number the entry.
                self.r.xadd(self._usage, fields, minid=minid, approximate=True)
            for result in charged:
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
        # Stream order is the order requests ended; exports list them by when they started.
        found.sort(key=lambda row: row["time"])
        yield from found

    def prune(self, before: float) -> int:
        # By when requests ended, which is at most a request's length off `time`. Rate counters
        # and affinities expire once their time has passed; the clients' indexes drop their names.
        with self._guard():
            deleted = self.r.xtrim(self._usage, minid=int(before * 1000), approximate=False)
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
            return deleted


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
