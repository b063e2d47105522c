"""The pool of upstream Gemini keys: rotation, cooldowns and disabled keys."""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Protocol

from ..errors import RateLimited, UpstreamNotConfigured, UpstreamUnavailable


class UpstreamKey:
    """One upstream key. Its repr shows only the label, so it can never leak into a log."""

    __slots__ = ("label", "secret")

    def __init__(self, label: str, secret: str):
        self.label = label
        self.secret = secret

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


class KeyStateStore(Protocol):
    """Where key states live; memory here, a store shared by workers later."""

    def get(self, label: str) -> KeyState: ...

    def put(self, label: str, state: KeyState) -> None: ...


class MemoryKeyStore:
    def __init__(self) -> None:
        self._states: dict[str, KeyState] = {}
        self._lock = threading.Lock()

    def get(self, label: str) -> KeyState:
        return self._states.get(label) or _FRESH

    def put(self, label: str, state: KeyState) -> None:
        with self._lock:
            self._states[label] = state


_FRESH = KeyState()


class KeyPool:
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
        now = self.clock()
        start = next(self._turn) % len(keys)
        fallback = None
        for i in range(len(keys)):
            key = keys[(start + i) % len(keys)]
            if self.store.get(key.label).available(now):
                if key.label != avoid:
                    return key
                fallback = key
        if fallback is not None:
            return fallback
        states = [self.store.get(k.label) for k in keys]
        cooling = [s.cooldown_until for s in states if s.disabled_until <= now]
        if cooling:
            wait = max(1.0, min(cooling) - now)
            raise RateLimited(
                f"Every upstream Gemini key is rate limited; retry in {int(wait + 0.999)}s.",
                retry_after=wait,
            )
        raise UpstreamUnavailable(
            "Gemini rejected every configured upstream key (invalid or without permission); "
            "check GEMINI_API_KEYS."
        )

    def retry_after(self) -> float:
        """Seconds until the first cooling key is available again (at least 1)."""
        now = self.clock()
        waits = [s.cooldown_until - now for s in map(self.store.get, (k.label for k in self.keys))]
        return max(1.0, min(waits, default=1.0))

    def succeeded(self, key: UpstreamKey) -> None:
        state = self.store.get(key.label)
        if state.failures or state.last_error or state.cooldown_until or state.disabled_until:
            self.store.put(key.label, _FRESH)

    def cool_down(self, key: UpstreamKey, seconds: float | None, reason: str) -> None:
        state = self.store.get(key.label)
        until = self.clock() + (self.default_cooldown if seconds is None else seconds)
        self.store.put(
            key.label,
            replace(state, cooldown_until=max(until, state.cooldown_until), last_error=reason),
        )

    def disable(self, key: UpstreamKey, reason: str) -> None:
        state = self.store.get(key.label)
        self.store.put(
            key.label,
            replace(state, disabled_until=self.clock() + self.recheck_after, failures=state.failures + 1,
                    last_error=reason),
        )

    def failed(self, key: UpstreamKey, reason: str) -> None:
        """A transient failure: counted for the operator, no penalty on rotation."""
        state = self.store.get(key.label)
        self.store.put(key.label, replace(state, failures=state.failures + 1, last_error=reason))

    def snapshot(self) -> list[dict]:
        """Key health for operators, by label only."""
        now = self.clock()
        out = []
        for key in self.keys:
            s = self.store.get(key.label)
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
