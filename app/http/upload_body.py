"""A client's upload body, read as Gemini's connection asks for it: never held whole, bounded by its length,
by the longest silence allowed between two reads, and by a slowest pace for the whole."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO

from ..errors import GatewayError, InvalidRequest

PIECE = 256 * 1024  # bytes read from the client at a time, at most
# The slowest an upload may arrive on the whole (a trickle of bytes never hold a connection and a
# connection to Gemini for ever): on top of REQUEST_BODY_TIMEOUT, its length at this pace.
SLOWEST = 16 * 1024  # bytes a second


class UploadTimeout(GatewayError):
    status, kind = 408, "timeout"


class _Silent(Exception):
    """The client sent nothing for longer than the idle limit."""


class StreamedBody:
    """File-like over the WSGI input. `len` lets `requests` send a Content-Length (no chunking);
    `consumed` says how much has gone upstream; `error` says why reading stopped when it was the
    client's doing, so the failure is blamed on the client rather than on Gemini."""

    def __init__(
        self,
        stream: IO[bytes],
        length: int,
        idle: float,
        allowance: float = 120.0,
        on_stop: Callable[[], None] | None = None,
    ):
        self.stream = stream
        self.on_stop = on_stop  # reading stopped on the client's side: read nothing more from it
        self.len = length
        self.idle = idle
        self.deadline = time.monotonic() + allowance + length / SLOWEST
        self.consumed = 0
        self.error: GatewayError | None = None

    def read(self, size: int = -1) -> bytes:
        left = self.len - self.consumed
        if left <= 0:
            return b""
        want = left if size is None or size < 0 else min(size, left)
        remaining = self.deadline - time.monotonic()
        try:
            with _deadline(min(self.idle, max(remaining, 0.001))):
                piece = self.stream.read(min(want, PIECE))
        except _Silent:
            if remaining <= self.idle:
                self.error = UploadTimeout(
                    f"The upload arrived slower than {SLOWEST // 1024} KiB/s; it was abandoned."
                )
            else:
                self.error = UploadTimeout(f"The upload sent nothing for {self.idle:g} s; it was abandoned.")
            if self.on_stop is not None:
                self.on_stop()
            raise OSError("upload stopped") from None
        except OSError:
            self.error = InvalidRequest("The client closed the connection in the middle of the upload.")
            raise
        if not piece:
            self.error = InvalidRequest(
                f"The upload ended after {self.consumed} of the {self.len} bytes its Content-Length announced.",
                param="Content-Length",
            )
            raise OSError("upload ended early")
        self.consumed += len(piece)
        return piece

    def pieces(self) -> Iterator[bytes]:
        while piece := self.read(PIECE):
            yield piece


@contextlib.contextmanager
def within_pace(length: int, allowance: float) -> Iterator[None]:
    """Bound a whole read of `length` bytes done elsewhere (a multipart form parsed into a spool) as
    StreamedBody bounds its reads: REQUEST_BODY_TIMEOUT (`allowance`) plus its length at SLOWEST."""
    try:
        with _deadline(allowance + length / SLOWEST):
            yield
    except _Silent:
        raise UploadTimeout(
            f"The upload arrived slower than {SLOWEST // 1024} KiB/s; it was abandoned."
        ) from None


def _deadline(seconds: float):
    """A limit on one read: gevent's timeout under the gevent worker (reads block only this
    greenlet); nothing elsewhere (the tests' in-memory bodies never block)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        import gevent

        return gevent.Timeout(seconds, _Silent)
    return contextlib.nullcontext()
