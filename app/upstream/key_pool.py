"""The pool of upstream Gemini keys: health per key and per (key, model), fair rotation, probes, affinity."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..errors import InvalidRequest, NotFound, RateLimited, UpstreamNotConfigured
from .retry import Judgement, Rest, Scope

MODEL_KEY_STATES = ("healthy", "cooling", "disabled", "denied")
# How long one request may hold a probe of a key back from a rest before another may try.
PROBE_WINDOW = 30.0


class UpstreamKey:
    """One upstream key. Its repr shows only the label, so it can never leak into a log.

    `id` names the key in the shared store: a short SHA-256 fingerprint, so every worker and
    instance agrees on it whatever the order of GEMINI_API_KEYS, and the store holds no secret.
    """

    __slots__ = ("label", "secret", "id")

    def __init__(self, label: str, secret: str):
        self.label = label
        self.secret = secret
        self.id = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"UpstreamKey({self.label})"


@dataclass(frozen=True)
class KeyState:
    """The health of a key, or of a (key, model) pair: the same fields, under another id."""

    cooldown_until: float = 0.0  # wall-clock seconds; 0 when not cooling
    disabled_until: float = 0.0  # disabled keys are tried again after this time
    failures: int = 0
    last_error: str | None = None  # a short reason of the gateway's own, never upstream text
    probe_until: float = 0.0  # one request is probing the key after its rest; the others wait
    soft_until: float = 0.0  # used only when no other key is available (a 403 on this model)

    def available(self, now: float) -> bool:
        return self.cooldown_until <= now and self.disabled_until <= now

    def returning(self, now: float) -> bool:
        """Back from a rest but not yet proven: the next request probes it, alone."""
        return self.available(now) and (self.cooldown_until > 0 or self.disabled_until > 0)

    def probed(self, now: float) -> bool:
        return self.probe_until > now


_FRESH = KeyState()
StateChange = Callable[[KeyState], KeyState]


def pair_id(key_id: str, model: str) -> str:
    """The store id of a (key, model) pair's health; a key's own health is under its id alone."""
    return f"{key_id}/{model}"


@dataclass(frozen=True)
class Affinity:
    """A remembered choice: the key that holds a resource, or that a session used last."""

    key_id: str
    client: str | None
    until: float
    note: str | None = None  # a short detail kept with a resource (an OpenAI file's purpose...)


class KeyStateStore(Protocol):
    """Where key states live, by id: this process's memory, or `app.store` shared by all."""

    def key_states(self) -> Mapping[str, KeyState]:
        """Every state that is not fresh, keys and (key, model) pairs, in one read."""

    def key_states_with(
        self, names: Sequence[str], now: float
    ) -> tuple[Mapping[str, KeyState], Mapping[str, Affinity]]:
        """The states and the live affinities of `names`, in one read."""

    def update_key_state(self, key_id: str, change: StateChange) -> KeyState:
        """Apply `change` to one state atomically (a fresh result is forgotten)."""

    def remember(self, name: str, affinity: Affinity, now: float) -> None:
        """Keep an affinity until its `until` (`now` by the pool's clock)."""

    def remember_once(self, name: str, affinity: Affinity, now: float) -> bool:
        """Keep an affinity unless one is live under `name`; True when this call kept it."""

    def forget(self, name: str) -> None:
        """Drop an affinity (a resource that was deleted or is gone)."""

    def owned(self, client: str, prefix: str, now: float) -> Mapping[str, Affinity]:
        """The live affinities of `client` whose names start with `prefix`, by name."""


class MemoryKeyStore:
    def __init__(self) -> None:
        self._states: dict[str, KeyState] = {}
        self._affinity: dict[str, Affinity] = {}
        self._lock = threading.Lock()

    def key_states(self) -> Mapping[str, KeyState]:
        return dict(self._states)

    def key_states_with(
        self, names: Sequence[str], now: float
    ) -> tuple[Mapping[str, KeyState], Mapping[str, Affinity]]:
        found = {n: a for n in names if (a := self._affinity.get(n)) is not None and a.until > now}
        return dict(self._states), found

    def update_key_state(self, key_id: str, change: StateChange) -> KeyState:
        with self._lock:
            state = change(self._states.get(key_id, _FRESH))
            if state == _FRESH:
                self._states.pop(key_id, None)
            else:
                self._states[key_id] = state
            return state

    def remember(self, name: str, affinity: Affinity, now: float) -> None:
        with self._lock:
            if len(self._affinity) > 10_000:  # bounded: drop the ones that have expired
                self._affinity = {n: a for n, a in self._affinity.items() if a.until > now}
            self._affinity[name] = affinity

    def remember_once(self, name: str, affinity: Affinity, now: float) -> bool:
        with self._lock:
            live = self._affinity.get(name)
            if live is not None and live.until > now:
                return False
            self._affinity[name] = affinity
            return True

    def forget(self, name: str) -> None:
        with self._lock:
            self._affinity.pop(name, None)

    def owned(self, client: str, prefix: str, now: float) -> Mapping[str, Affinity]:
        with self._lock:
            return {
                n: a
                for n, a in self._affinity.items()
                if a.client == client and n.startswith(prefix) and a.until > now
            }


@dataclass
class Route:
    """Where one call may go: its client, the affinity names it carries, what the store said of
    them, and whether the key chosen is probing its way back from a rest."""

    client: str | None = None
    session: str | None = None  # the store name of the call's session hint
    session_ttl: float | None = None  # how long its mapping lasts, when not SESSION_AFFINITY_TTL
    resources: tuple[str, ...] = ()  # store names of the upstream resources the call names
    # Those of `resources` the client must have created through the gateway (named in the path:
    # reading, changing or deleting one): any other is not found, and nothing is sent.
    required: tuple[str, ...] = ()
    owner: Affinity | None = None
    owned: str | None = None  # the resource `owner` holds, for messages
    last: Affinity | None = None  # the key the session used last
    looked_up: bool = False
    probing: list[str] = field(default_factory=list)  # state ids this call holds a probe on

    @property
    def names(self) -> tuple[str, ...]:
        return self.resources + ((self.session,) if self.session else ())


class ModelExhausted(RateLimited):
    """Every key is resting for the model the call asked for: another model may serve it."""


class ProbePending(RateLimited):
    """The only keys left are being probed by other requests: worth waiting a moment for."""


class KeyPool:
    """Rotation over the upstream keys; their health, per key and per (key, model), lives in `store`.

    `choose` runs on every attempt, so it makes exactly one store read and, unless a key is back
    from a rest and needs its probe claimed, no write; the other methods write only when a state
    really changes. Rotation is least-recently-used among the healthy keys, counted per worker.
    """

    def __init__(
        self,
        secrets: Iterable[str],
        store: KeyStateStore | None = None,
        *,
        default_cooldown: float = 60.0,
        recheck_after: float = 600.0,
        session_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ):
        self.keys = tuple(UpstreamKey(f"key-{i}", s) for i, s in enumerate(secrets, 1))
        self.store: KeyStateStore = store or MemoryKeyStore()
        self.default_cooldown = default_cooldown
        self.recheck_after = recheck_after
        self.session_ttl = session_ttl
        self.clock = clock
        self._by_id = {key.id: key for key in self.keys}
        self._uses = itertools.count()
        self._last_used: dict[str, int] = {}  # per worker: sharing it would cost a write per call
        # The states the latest `choose` read (None: unknown), so that `succeeded` on a key that
        # was fresh then costs nothing. A newer cooldown set meanwhile is never cleared by it.
        self._seen: Mapping[str, KeyState] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    # -- choosing -------------------------------------------------------------------------------
    def choose(
        self, model: str | None = None, avoid: Collection[str] = (), route: Route | None = None
    ) -> UpstreamKey:
        """The key for the next attempt of a call on `model` (None: a call on no model).

        Healthy keys come first, least recently used first, then keys under `avoid` (labels), then
        those Gemini refused this model (403) lately. A call that names a resource goes to the key
        that holds it; a session prefers the key it used last while that key is healthy.
        """
        keys = self.keys
        if not keys:
            raise UpstreamNotConfigured(
                "No upstream Gemini key is configured: set GEMINI_API_KEYS to one or more "
                "comma-separated Gemini API keys and restart the gateway."
            )
        now = self.clock()
        if route is not None and not route.looked_up and route.names:
            states, found = self.store.key_states_with(route.names, now)
            self._take_affinity(route, found)
        else:
            states = self.store.key_states()
        self._seen = states
        candidates = keys
        if route is not None and route.owner is not None:
            candidates = (self._by_id[route.owner.key_id],)
        preferred = route.last.key_id if route is not None and route.last is not None else None
        ranked = []
        for index, key in enumerate(candidates):
            key_state = states.get(key.id, _FRESH)
            pair_state = states.get(pair_id(key.id, model), _FRESH) if model else _FRESH
            if not (key_state.available(now) and pair_state.available(now)):
                continue
            returning = [
                (state_id, state)
                for state_id, state in ((key.id, key_state), (pair_id(key.id, model or ""), pair_state))
                if state.returning(now)
            ]
            if any(state.probed(now) for _, state in returning):
                continue  # another request is finding out whether it is back
            rank = (
                pair_state.soft_until > now,
                key.label in avoid,
                key.id != preferred,
                self._last_used.get(key.id, -1),
                index,
            )
            ranked.append((rank, key, [state_id for state_id, _ in returning]))
        ranked.sort(key=lambda item: item[0])
        for _, key, to_probe in ranked:
            if to_probe and not self._claim_probe(to_probe, now, route):
                continue
            self._last_used[key.id] = next(self._uses)
            return key
        raise self._exhausted(states, candidates, model, route, now)

    def _take_affinity(self, route: Route, found: Mapping[str, Affinity]) -> None:
        route.looked_up = True
        for name in route.resources:
            owner = found.get(name)
            required = name in route.required
            if owner is None or owner.key_id not in self._by_id:
                if required:  # never created through the gateway, forgotten, or its key left the pool
                    raise NotFound(f"{name.removeprefix('r:')} was not found.")
                continue
            if owner.client != route.client and (
                required or (owner.client is not None and route.client is not None)
            ):
                # Another client's resource: as far as this client can tell, it does not exist.
                raise NotFound(f"{name.removeprefix('r:')} was not found.")
            if route.owner is None:  # the first named decides the key; the others are checked too
                route.owner, route.owned = owner, name.removeprefix("r:")
            elif owner.key_id != route.owner.key_id:
                raise InvalidRequest(
                    f"{route.owned} and {name.removeprefix('r:')} are held by different upstream keys "
                    "(Gemini's projects), so no call can use both: create them again together, one "
                    "naming the other (a cache from the file, a store's document by uploading into it)."
                )
        last = found.get(route.session) if route.session else None
        if last is not None and last.key_id in self._by_id:
            route.last = last

    def _claim_probe(self, state_ids: list[str], now: float, route: Route | None) -> bool:
        """Claim the one probe of a key (or pair) back from its rest: a write, but only then."""
        until = now + PROBE_WINDOW
        for state_id in state_ids:
            won = False

            def claim(state: KeyState) -> KeyState:
                nonlocal won
                won = state.returning(now) and not state.probed(now)
                return replace(state, probe_until=until) if won else state

            self.store.update_key_state(state_id, claim)
            if not won:
                return False
            if route is not None:
                route.probing.append(state_id)
        return True

    def _exhausted(self, states, candidates, model, route, now) -> Exception:
        """The error to answer when no key may take the call now."""
        waits, model_bound, daily, probing = [], False, False, False
        for key in candidates:
            key_state = states.get(key.id, _FRESH)
            pair_state = states.get(pair_id(key.id, model), _FRESH) if model else _FRESH
            if key_state.disabled_until > now:
                continue
            pair_until = max(pair_state.cooldown_until, pair_state.disabled_until)
            until = max(key_state.cooldown_until, pair_until)
            if pair_until > now:
                model_bound = True
                daily = daily or "PerDay" in (pair_state.last_error or "")
            if until <= now:
                probing = True  # available, but another request is probing it (or won the claim)
            waits.append(until - now if until > now else 1.0)
        if probing:
            return ProbePending(
                "Every upstream Gemini key that could take this call is being re-checked; retry in 1s.",
                retry_after=1.0,
            )
        if route is not None and route.owner is not None:
            wait = max(1.0, min(waits, default=_left(states, route.owner.key_id, now)))
            return RateLimited(
                f"The upstream key that holds {route.owned} is resting; retry in {_seconds(wait)}s.",
                retry_after=wait,
            )
        if not waits:
            return UpstreamNotConfigured(
                "Gemini rejected every configured upstream key (invalid or without permission); "
                "check GEMINI_API_KEYS."
            )
        wait = max(1.0, min(waits))
        if not model_bound:
            return RateLimited(
                f"Every upstream Gemini key is rate limited; retry in {_seconds(wait)}s.", retry_after=wait
            )
        if daily:
            message = (
                f"Every upstream Gemini key has used its daily quota for {model}; it resets at midnight "
                f"Pacific time, in {_seconds(wait)}s."
            )
        else:
            message = f"Every upstream Gemini key is rate limited for {model}; retry in {_seconds(wait)}s."
        return ModelExhausted(message, retry_after=wait)

    def retry_after(self, model: str | None = None) -> float:
        """Seconds until the first key (for `model`) is available again (at least 1)."""
        now = self.clock()
        states = self.store.key_states()
        waits = []
        for key in self.keys:
            key_state = states.get(key.id, _FRESH)
            pair_state = states.get(pair_id(key.id, model), _FRESH) if model else _FRESH
            rests = (
                key_state.cooldown_until,
                key_state.disabled_until,
                pair_state.cooldown_until,
                pair_state.disabled_until,
            )
            waits.append(max(rests) - now)
        return max(1.0, min(waits, default=1.0))

    # -- what an attempt came to ------------------------------------------------------------------
    def succeeded(self, key: UpstreamKey, model: str | None = None, route: Route | None = None) -> None:
        now = self.clock()
        seen = self._seen
        for state_id in (key.id, pair_id(key.id, model)) if model else (key.id,):
            if seen is not None and state_id not in seen and not (route and state_id in route.probing):
                continue  # fresh when chosen: the happy path writes nothing
            # A rest another request set since stays: only a state that is available is reset.
            self._change(state_id, lambda state: _FRESH if state.available(now) else state)
        if route is not None:
            route.probing.clear()
            self._remember_session(key, route, now)

    def judged(
        self, key: UpstreamKey, model: str | None, judgement: Judgement, route: Route | None = None
    ) -> None:
        """Apply the policy's judgement of a failed attempt to the key or the (key, model) pair."""
        if judgement.rest is Rest.NONE or judgement.scope is Scope.NONE:
            self.release(route)
            return
        state_id = key.id if judgement.scope is Scope.KEY or not model else pair_id(key.id, model)
        until, reason = judgement.until, judgement.reason
        if judgement.rest is Rest.SOFT:

            def change(state: KeyState) -> KeyState:
                return replace(
                    state, soft_until=max(until, state.soft_until), probe_until=0.0, last_error=reason
                )
        elif judgement.rest is Rest.DISABLE:

            def change(state: KeyState) -> KeyState:
                return replace(
                    state,
                    disabled_until=until,
                    failures=state.failures + 1,
                    probe_until=0.0,
                    last_error=reason,
                )
        else:

            def change(state: KeyState) -> KeyState:
                return replace(
                    state, cooldown_until=max(until, state.cooldown_until), probe_until=0.0, last_error=reason
                )

        self._change(state_id, change)
        if route is not None:
            if state_id in route.probing:
                route.probing.remove(state_id)
            self.release(route)

    def release(self, route: Route | None) -> None:
        """A probe that proved nothing either way (the caller's error): the next request probes."""
        if route is None or not route.probing:
            return
        for state_id in route.probing:
            self._change(state_id, lambda state: replace(state, probe_until=0.0))
        route.probing.clear()

    def cool_down(
        self, key: UpstreamKey, seconds: float | None, reason: str, model: str | None = None
    ) -> None:
        until = self.clock() + (self.default_cooldown if seconds is None else seconds)
        self._change(
            pair_id(key.id, model) if model else key.id,
            lambda state: replace(
                state, cooldown_until=max(until, state.cooldown_until), probe_until=0.0, last_error=reason
            ),
        )

    def disable(self, key: UpstreamKey, reason: str, model: str | None = None) -> None:
        until = self.clock() + self.recheck_after
        self._change(
            pair_id(key.id, model) if model else key.id,
            lambda state: replace(
                state, disabled_until=until, failures=state.failures + 1, probe_until=0.0, last_error=reason
            ),
        )

    def failed(self, key: UpstreamKey, reason: str, route: Route | None = None) -> None:
        """A transient failure: counted for the operator, no penalty on rotation."""
        self._change(
            key.id,
            lambda state: replace(state, failures=state.failures + 1, probe_until=0.0, last_error=reason),
        )
        if route is not None:
            route.probing = [i for i in route.probing if i != key.id]
            self.release(route)

    def _change(self, state_id: str, change: StateChange) -> None:
        self.store.update_key_state(state_id, change)
        self._seen = None

    # -- affinity -----------------------------------------------------------------------------------
    def record_owner(
        self, resource: str, key: UpstreamKey, client: str | None, ttl: float, note: str | None = None
    ) -> None:
        """Remember that `key` holds `resource` (files/…, cachedContents/…), created by `client`."""
        now = self.clock()
        self.store.remember(resource_name(resource), Affinity(key.id, client, now + ttl, note), now)

    def forget_owner(self, resource: str) -> None:
        """`resource` was deleted, or Gemini says it is gone: no call goes to its key any more."""
        self.store.forget(resource_name(resource))

    def owned(self, client: str | None, family: str) -> dict[str, Affinity]:
        """The resources of one family (`files`, `batches`...) `client` created, whose keys are still
        in the pool, by name (`files/abc`)."""
        if client is None:
            return {}
        found = self.store.owned(client, resource_name(family + "/"), self.clock())
        return {name.removeprefix("r:"): a for name, a in found.items() if a.key_id in self._by_id}

    def key_by_id(self, key_id: str) -> UpstreamKey | None:
        return self._by_id.get(key_id)

    def recall(self, name: str) -> Affinity | None:
        """The live affinity stored under `name` (any kind), or None."""
        return self.store.key_states_with([name], self.clock())[1].get(name)

    def remember(
        self, name: str, key: UpstreamKey, client: str | None, ttl: float, note: str | None = None
    ) -> None:
        """Keep `name` -> (key, client, note) for `ttl` seconds (an upload session...)."""
        now = self.clock()
        self.store.remember(name, Affinity(key.id, client, now + ttl, note), now)

    def forget(self, name: str) -> None:
        self.store.forget(name)

    def once(self, name: str, client: str | None, ttl: float) -> bool:
        """True the first time `name` is claimed within `ttl` seconds, on any worker or host (something
        to do once, such as counting a finished batch's tokens)."""
        now = self.clock()
        return self.store.remember_once(name, Affinity("", client, now + ttl), now)

    def _remember_session(self, key: UpstreamKey, route: Route, now: float) -> None:
        if route.session is None:
            return
        last = route.last
        # Written when the key changes, or when half the mapping's lifetime has passed: not per call.
        ttl = route.session_ttl or self.session_ttl
        if last is None or last.key_id != key.id or last.until - now < ttl / 2:
            affinity = Affinity(key.id, route.client, now + ttl)
            self.store.remember(route.session, affinity, now)
            route.last = affinity

    # -- the operator's view --------------------------------------------------------------------------
    def snapshot(self) -> list[dict]:
        """Key health for operators, by label only, with each model the key is resting for."""
        now = self.clock()
        states = self.store.key_states()
        pairs: dict[str, list[dict]] = {}
        for state_id, state in states.items():
            key_id, sep, model = state_id.partition("/")
            if sep and key_id in self._by_id:
                status = _status(state, now)
                if status != "healthy":
                    pairs.setdefault(key_id, []).append(dict(_view(state, status), model=model))
        out = []
        for key in self.keys:
            s = states.get(key.id, _FRESH)
            status = _status(s, now)
            models = sorted(pairs.get(key.id, ()), key=lambda m: m["model"])
            out.append(dict(_view(s, status), label=key.label, models=models))
        return out


def model_health(keys: list[dict]) -> dict[str, dict[str, int]]:
    """For each model some key rests for (from KeyPool.snapshot), how many keys are in each state.
    A key refused or cooling as a whole counts as such for every model."""
    models = sorted({m["model"] for key in keys for m in key["models"]})
    out = {}
    for model in models:
        counts = dict.fromkeys(MODEL_KEY_STATES, 0)
        for key in keys:
            pair = next((m for m in key["models"] if m["model"] == model), None)
            state = key["status"] if key["status"] != "healthy" or pair is None else pair["status"]
            counts[state] += 1
        out[model] = counts
    return out


def resource_name(resource: str) -> str:
    """The store name of an upstream resource's owner."""
    return "r:" + resource


def session_name(client: str | None, hint: str) -> str:
    """The store name of a session hint, scoped by client key name so clients cannot collide, and
    hashed: the hint may be a user id, which the store need not hold."""
    digest = hashlib.sha256(f"{client or ''}\x00{hint}".encode("utf-8", "surrogatepass")).hexdigest()
    return "s:" + digest[:32]


def _status(state: KeyState, now: float) -> str:
    if state.disabled_until > now:
        return "disabled"
    if state.cooldown_until > now:
        return "cooling"
    if state.soft_until > now:
        return "denied"
    return "healthy"


def _view(state: KeyState, status: str) -> dict:
    return {
        "status": status,
        "cooldown_until": state.cooldown_until if status == "cooling" else None,
        "disabled_until": state.disabled_until if status == "disabled" else None,
        "denied_until": state.soft_until if status == "denied" else None,
        "failures": state.failures,
        "last_error": state.last_error,
    }


def _left(states: Mapping[str, KeyState], key_id: str, now: float) -> float:
    state = states.get(key_id, _FRESH)
    return max(state.cooldown_until, state.disabled_until) - now


def _seconds(wait: float) -> int:
    return int(wait + 0.999)
