"""A client's upload body, read as Gemini's connection asks for it: never held whole, bounded by its length
and by the longest silence allowed between two reads."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO

from ..errors import GatewayError, InvalidRequest

PIECE = 256 * 1024  # bytes read from the client at a time, at most


class UploadTimeout(GatewayError):
    status, kind = 408, "timeout"


class _Silent(Exception):
    """The client sent nothing for longer than the idle limit."""


class StreamedBody:
    """File-like over the WSGI input. `len` lets `requests` send a Content-Length (no chunking);
    `consumed` says how much has gone upstream; `error` says why reading stopped when it was the
    client's doing, so the failure is blamed on the client rather than on Gemini."""

    def __init__(self, stream: IO[bytes], length: int, idle: float):
        self.stream = stream
        self.len = length
        self.idle = idle
        self.consumed = 0
        self.error: GatewayError | None = None

    def read(self, size: int = -1) -> bytes:
        left = self.len - self.consumed
        if left <= 0:
            return b""
        want = left if size is None or size < 0 else min(size, left)
        try:
            with _deadline(self.idle):
                piece = self.stream.read(min(want, PIECE))
        except _Silent:
            self.error = UploadTimeout(f"The upload sent nothing for {self.idle:g} s; it was abandoned.")
            raise OSError("upload went silent") from None
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


def _deadline(seconds: float):
    """A limit on one read: gevent's timeout under the gevent worker (reads block only this
    greenlet); nothing elsewhere (the tests' in-memory bodies never block)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        import gevent

        return gevent.Timeout(seconds, _Silent)
    return contextlib.nullcontext()
