"""A call that runs beside the request (a greenlet under gevent, else a thread) while the response waits."""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Pending(Generic[T]):
    """`work()` started at once; `wait` for it with a timeout, then `result` (its value, or its exception
    raised here). `cancel` stops it where it waits on Gemini (gevent), so a client that leaves frees it.

    `work` runs in a copy of the caller's context: the upstream client still sees the request it serves
    (its client key and session hint choose the key; the time waited counts against it).
    """

    def __init__(self, work: Callable[[], T]):
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        context = contextvars.copy_context()

        def run() -> None:
            try:
                self._value = context.run(work)
            except Exception as exc:  # kept for `result`, never printed by the hub
                self._error = exc
            finally:
                self._done.set()

        gevent_monkey = sys.modules.get("gevent.monkey")
        if gevent_monkey is not None and gevent_monkey.is_module_patched("threading"):
            import gevent

            self._greenlet = gevent.spawn(run)
        else:
            self._greenlet = None
            threading.Thread(target=run, daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once `work` has ended (within `timeout` seconds)."""
        return self._done.wait(timeout)

    def result(self) -> T:
        """`work`'s value, waiting for it; its exception is raised here."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def cancel(self) -> None:
        if self._greenlet is not None and not self._done.is_set():
            self._greenlet.kill(block=False)
