"""Runtime settings: the few settings the admin page changes while the gateway runs, shared by every worker.

The environment gives their first values; a change made on the admin page is kept in the shared store
(so it survives restarts and reaches every worker and host) as the text the environment would hold.
Each worker reads the store at most once per REFRESH seconds, never once per request.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .errors import ConfigError
from .settings import RUNTIME_SETTINGS, Config, read_runtime_setting

log = logging.getLogger(__name__)

REFRESH = 0.5  # seconds a worker trusts what it last read: a change is seen everywhere within a second


class SettingsStore(Protocol):
    def settings(self) -> Mapping[str, str]:
        """Every runtime setting changed on the admin page: variable -> its text."""

    def update_settings(self, changes: Mapping[str, str | None]) -> None:
        """Set each variable's text, or forget it (None: back to the environment's value), atomically."""


def effective(config: Config, overrides: Mapping[str, str]) -> Config:
    """`config` with the stored changes applied; a stored value that no longer reads is skipped."""
    values: dict[str, Any] = {}
    for name, raw in overrides.items():
        if name not in RUNTIME_SETTINGS:
            continue  # a setting of a newer or older version
        try:
            values[RUNTIME_SETTINGS[name][0]] = read_runtime_setting(name, raw)
        except ConfigError as exc:
            log.warning("ignoring the stored runtime setting %s: %s", name, exc)
    return dataclasses.replace(config, **values) if values else config


def env_text(config: Config, name: str) -> str:
    """A runtime setting's current value as the environment would write it."""
    value = getattr(config, RUNTIME_SETTINGS[name][0])
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class LiveSettings:
    """The current settings: the environment's Config with the admin page's changes from the store."""

    def __init__(self, config: Config, store: SettingsStore, clock: Callable[[], float] = time.monotonic):
        self.base = config
        self.store = store
        self.clock = clock
        self._current = config
        self._overrides: Mapping[str, str] = {}
        self._fresh_until = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> Config:
        """The settings in force now; refreshed from the store when the last read is older than REFRESH."""
        if self.clock() < self._fresh_until:
            return self._current
        if self._lock.acquire(blocking=False):  # one reader per worker; the others keep what they have
            try:
                if self.clock() >= self._fresh_until:
                    self._refresh()
            finally:
                self._lock.release()
        return self._current

    def fresh(self) -> Config:
        """The settings in force now, read from the store at once: the admin page shows what was just
        saved, whichever worker saved it."""
        with self._lock:
            self._refresh()
        return self._current

    def overrides(self) -> Mapping[str, str]:
        """The stored changes as last read (the admin page shows which values are the environment's)."""
        self.current()
        return self._overrides

    def change(self, values: Mapping[str, str | None]) -> dict[str, tuple[str, str]]:
        """Check and store changes (None: back to the environment's value); returns what changed,
        variable -> (old text, new text). ConfigError names the first bad value, and nothing is stored."""
        before = self.current()
        for name, raw in values.items():
            if name not in RUNTIME_SETTINGS:
                raise ConfigError(f"{name} cannot be changed while the gateway runs")
            if raw is not None:
                read_runtime_setting(name, raw)
        self.store.update_settings(values)
        with self._lock:
            self._refresh()
        after = self._current
        return {
            name: (env_text(before, name), env_text(after, name))
            for name in values
            if env_text(before, name) != env_text(after, name)
        }

    def _refresh(self) -> None:
        try:
            overrides = dict(self.store.settings())
        except Exception:  # the store is away: keep the last values, try again soon
            log.warning("runtime settings could not be read; keeping the last ones", exc_info=True)
            self._fresh_until = self.clock() + REFRESH
            return
        if overrides != self._overrides:
            self._current = effective(self.base, overrides)
            self._overrides = overrides
        self._fresh_until = self.clock() + REFRESH
