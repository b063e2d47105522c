"""The pool of upstream Gemini keys: rotation, cooldowns and disabled keys."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from ..errors import RateLimited, UpstreamNotConfigured


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
    cooldown_until: float = 0.0  # wall-clock seconds; 0 when not cooling
    disabled_until: float = 0.0  # disabled keys are tried again after this time
    failures: int = 0
    last_error: str | None = None

    def available(self, now: float) -> bool:
        return self.cooldown_until <= now and self.disabled_until <= now


_FRESH = KeyState()
StateChange = Callable[[KeyState], KeyState]


class KeyStateStore(Protocol):
    """Where key states live, by key id: this process's memory, or `app.store` shared by all."""

    def key_states(self) -> Mapping[str, KeyState]:
        """Every key's state that is not fresh, in one read."""

    def update_key_state(self, key_id: str, change: StateChange) -> KeyState:
        """Apply `change` to one key's state atomically (a fresh result is forgotten)."""


class MemoryKeyStore:
    def __init__(self) -> None:
        self._states: dict[str, KeyState] = {}
        self._lock = threading.Lock()

    def key_states(self) -> Mapping[str, KeyState]:
        return dict(self._states)

    def update_key_state(self, key_id: str, change: StateChange) -> KeyState:
        with self._lock:
            state = change(self._states.get(key_id, _FRESH))
            if state == _FRESH:
                self._states.pop(key_id, None)
            else:
                self._states[key_id] = state
            return state


class KeyPool:
    """Rotation over the upstream keys; their health lives in `store`.

    `choose` runs on every request, so it makes exactly one store read and no write; the
    other methods write only when a key's state really changes.
    """

    def __init__(
        self,
        secrets: Iterable[str],
        store: KeyStateStore | None = None,
        *,
        default_cooldown: float = 60.0,
        recheck_after: float = 600.0,
        clock: Callable[[], float] = time.time,
    ):
        self.keys = tuple(UpstreamKey(f"key-{i}", s) for i, s in enumerate(secrets, 1))
        self.store = store or MemoryKeyStore()
        self.default_cooldown = default_cooldown
        self.recheck_after = recheck_after
        self.clock = clock
        self._turn = itertools.count()
        # The states the latest `choose` read (None: unknown), so that `succeeded` on a key that
        # was fresh then costs nothing. A newer cooldown set meanwhile is never cleared by it.
        self._seen: Mapping[str, KeyState] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def choose(self, avoid: str | None = None) -> UpstreamKey:
        """The next available key in rotation, preferring one other than `avoid`."""
        keys = self.keys
        if not keys:
            raise UpstreamNotConfigured(
                "No upstream Gemini key is configured: set GEMINI_API_KEYS to one or more "
                "comma-separated Gemini API keys and restart the gateway."
            )
        self._seen = states = self.store.key_states()
        now = self.clock()
        start = next(self._turn) % len(keys)
        fallback = None
        for i in range(len(keys)):
            key = keys[(start + i) % len(keys)]
            if states.get(key.id, _FRESH).available(now):
                if key.label != avoid:
                    return key
                fallback = key
        if fallback is not None:
            return fallback
        cooling = [
            s.cooldown_until for s in (states.get(k.id, _FRESH) for k in keys) if s.disabled_until <= now
        ]
        if cooling:
            wait = max(1.0, min(cooling) - now)
            raise RateLimited(
                f"Every upstream Gemini key is rate limited; retry in {int(wait + 0.999)}s.",
                retry_after=wait,
            )
        raise UpstreamNotConfigured(
            "Gemini rejected every configured upstream key (invalid or without permission); "
            "check GEMINI_API_KEYS."
        )

    def retry_after(self) -> float:
        """Seconds until the first cooling key is available again (at least 1)."""
        now = self.clock()
        states = self.store.key_states()
        waits = [states.get(k.id, _FRESH).cooldown_until - now for k in self.keys]
        return max(1.0, min(waits, default=1.0))

    def succeeded(self, key: UpstreamKey) -> None:
        seen = self._seen
        if seen is not None and key.id not in seen:
            return  # fresh when chosen: the happy path writes nothing
        now = self.clock()
        # A cooldown another request set since stays: only a key that is available again is reset.
        self._change(key, lambda state: _FRESH if state.available(now) else state)

    def cool_down(self, key: UpstreamKey, seconds: float | None, reason: str) -> None:
        until = self.clock() + (self.default_cooldown if seconds is None else seconds)
        self._change(
            key,
            lambda state: replace(state, cooldown_until=max(until, state.cooldown_until), last_error=reason),
        )

    def disable(self, key: UpstreamKey, reason: str) -> None:
        until = self.clock() + self.recheck_after
        self._change(
            key,
            lambda state: replace(
                state, disabled_until=until, failures=state.failures + 1, last_error=reason
            ),
        )

    def failed(self, key: UpstreamKey, reason: str) -> None:
        """A transient failure: counted for the operator, no penalty on rotation."""
        self._change(key, lambda state: replace(state, failures=state.failures + 1, last_error=reason))

    def _change(self, key: UpstreamKey, change: StateChange) -> None:
        self.store.update_key_state(key.id, change)
        self._seen = None

    def snapshot(self) -> list[dict]:
        """Key health for operators, by label only."""
        now = self.clock()
        states = self.store.key_states()
        out = []
        for key in self.keys:
            s = states.get(key.id, _FRESH)
            if s.disabled_until > now:
                status = "disabled"
            elif s.cooldown_until > now:
                status = "cooling"
            else:
                status = "healthy"
            out.append(
                {
                    "label": key.label,
                    "status": status,
                    "cooldown_until": s.cooldown_until if status == "cooling" else None,
                    "disabled_until": s.disabled_until if status == "disabled" else None,
                    "failures": s.failures,
                    "last_error": s.last_error,
                }
            )
        return out
