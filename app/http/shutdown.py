"""A stopping worker ends the requests it still serves before its master kills it, so each ends in its record."""

from __future__ import annotations

import logging
import sys

from ..errors import GatewayError
from ..usage.record import unfinished

log = logging.getLogger(__name__)

# Seconds before the graceful timeout at which the requests still running are ended: the master kills
# the worker (SIGKILL) when the timeout ends, and their records take a few milliseconds to store.
STOP_MARGIN = 2.0


class Interrupted(GatewayError):
    """The worker serving the request is stopping (a restart or a deploy): the client should retry."""

    status, kind = 503, "overloaded"

    def __init__(self) -> None:
        super().__init__("The gateway is restarting; retry the request.")


def current_owner() -> object | None:
    """What serves the current request, when it can be interrupted: its greenlet under gevent (a thread
    cannot be)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    import gevent

    return gevent.getcurrent()


def interrupt_all() -> int:
    """End every request still running in this process: a stream with an error event in its dialect, a
    whole answer with a 503; each ends in its record. Returns how many were interrupted."""
    count = 0
    for rec in unfinished():
        owner = rec.owner
        kill = getattr(owner, "kill", None)
        if kill is None or getattr(owner, "dead", True):
            continue
        rec.error = "interrupted"
        kill(Interrupted(), block=False)
        count += 1
    if count:
        log.warning("worker stopping: %d request(s) still running were interrupted", count)
    return count


def interrupt_before(graceful_timeout: float) -> None:
    """Schedule `interrupt_all` for STOP_MARGIN seconds before `graceful_timeout` ends (gevent only)."""
    import gevent

    gevent.spawn_later(max(0.0, graceful_timeout - STOP_MARGIN), interrupt_all)
