"""Waiting for Gemini's next bytes with a deadline: one timer per worker keeps every stream's heartbeat
deadline, rather than a timer, or a reader greenlet, per stream."""

from __future__ import annotations

import heapq
import math
import select
import ssl
import sys
import time
from collections.abc import Iterator
from typing import Any

import requests

# How finely the deadlines are kept: a heartbeat may go out up to this much late.
TICK = 0.05


class Heartbeat:
    """What a stream's events give instead of an event when Gemini has been silent for a heartbeat."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "HEARTBEAT"


HEARTBEAT = Heartbeat()


class Silence:
    """The socket a streamed response is read from, and how to wait for its next bytes.

    `ready(timeout)` is True as soon as the next read will not wait for Gemini (bytes are buffered, or
    have arrived, or the connection has ended), False once `timeout` seconds passed without any. It never
    reads: bytes split anywhere stay where the response's own reader finds them.
    """

    def __init__(self, buffer: Any, sock: Any):
        self.buffer = buffer  # http.client's buffered reader over the socket
        self.sock = sock
        self.timeout = sock.gettimeout()  # the call's read timeout, which its reads keep
        self._watcher: Any = None
        self._deadlines = _deadlines() if _gevent_sockets() else None

    @classmethod
    def of(cls, response: requests.Response) -> Silence | None:
        """The response's socket, or None when its body does not come from one (a mocked response)."""
        buffer = getattr(getattr(response.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(buffer, "raw", None), "_sock", None)
        if sock is None or not hasattr(buffer, "peek"):
            return None
        return cls(buffer, sock)

    def idle_timeout(self) -> float | None:
        """How long the response may stay silent (the read timeout the call was sent with)."""
        return self.timeout or None

    def ready(self, timeout: float) -> bool:
        if self._has_bytes():
            return True
        if self._deadlines is not None:
            if self._watcher is None:
                self._watcher = self._deadlines.hub.loop.io(self.sock.fileno(), 1)
            return self._deadlines.wait(self._watcher, timeout)
        return bool(select.select([self.sock], [], [], timeout)[0])

    def _has_bytes(self) -> bool:
        """Bytes in the reader's buffer or on the socket, looked for without waiting: a read of a socket
        without a timeout returns what has come, or nothing."""
        sock = self.sock
        sock.settimeout(0.0)
        try:
            return bool(self.buffer.peek(1))  # b"" at the end of the body: the read reports it
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except (OSError, ValueError):
            return True  # a broken or closed connection: the read raises what it is
        finally:
            sock.settimeout(self.timeout)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None


def quiet_pieces(pieces: Iterator[bytes], silence: Silence, heartbeat: float) -> Iterator[bytes | Heartbeat]:
    """`pieces` (read from `silence`'s socket), with HEARTBEAT each time Gemini has been silent for
    `heartbeat` seconds; TimeoutError once it has been silent for the response's read timeout."""
    idle = silence.idle_timeout()
    try:
        while True:
            silent = 0.0
            while True:
                wait = heartbeat if idle is None else min(heartbeat, idle - silent)
                if silence.ready(wait):
                    break
                silent += wait
                if idle is not None and silent >= idle:
                    raise TimeoutError("Gemini sent nothing within the read timeout")
                yield HEARTBEAT
            piece = next(pieces, None)
            if piece is None:
                return
            yield piece
    finally:
        silence.close()


def _gevent_sockets() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")


class _Deadlines:
    """Every waiting stream's deadline, in slots of TICK seconds, and one greenlet that wakes the streams
    whose deadline has passed: a wait costs a set entry, not a timer of its own."""

    def __init__(self) -> None:
        from gevent import get_hub, spawn
        from gevent.hub import Waiter

        self.hub = get_hub()
        self._spawn = spawn
        self._waiter = Waiter
        self._slots: dict[int, set[Any]] = {}
        self._due: list[int] = []  # the slots that hold waiters, earliest first
        self._runner: Any = None

    def wait(self, watcher: Any, timeout: float) -> bool:
        """True when `watcher` fires, False when `timeout` has passed first."""
        slot = math.ceil((time.monotonic() + timeout) / TICK)
        waiters = self._slots.get(slot)
        if waiters is None:
            waiters = self._slots[slot] = set()
            heapq.heappush(self._due, slot)
        waiter = self._waiter(self.hub)
        waiters.add(waiter)
        if self._runner is None:
            self._runner = self._spawn(self._run)
        watcher.start(waiter.switch, True)
        try:
            return waiter.get()
        finally:
            watcher.stop()
            waiters.discard(waiter)

    def _run(self) -> None:
        from gevent import sleep

        try:
            while self._due:
                sleep(min(TICK, max(0.0, self._due[0] * TICK - time.monotonic())))
                now = time.monotonic() / TICK
                while self._due and self._due[0] <= now:
                    for waiter in self._slots.pop(heapq.heappop(self._due), ()):
                        # From the hub, as a watcher would: the waiter's greenlet is parked in `wait`
                        # (a waiter already woken only keeps the value).
                        self.hub.loop.run_callback(waiter.switch, False)
        finally:
            self._runner = None


_DEADLINES: _Deadlines | None = None


def _deadlines() -> _Deadlines:
    global _DEADLINES
    if _DEADLINES is None:
        _DEADLINES = _Deadlines()
    return _DEADLINES
