"""Relaying Gemini's own stream to a native client, as SSE or as the streamed JSON array."""

from __future__ import annotations

from .. import jsonx
from ..errors import GatewayError
from ..upstream.answers import stream_event
from .errors import error_body

CRLF2 = b"\r\n\r\n"


class SSERelay:
    """Each upstream event goes out as it came, in Google's CRLF framing."""

    usage = None

    def start(self) -> bytes:
        return b""

    def feed(self, data: bytes) -> bytes:
        # Parsed to keep the usage, and so garbage from upstream becomes an error event.
        self.usage = stream_event(data).get("usageMetadata", self.usage)
        return b"data: " + data + CRLF2

    def finish(self) -> bytes:
        return b""

    def fail(self, err: GatewayError) -> bytes:
        return b"data: " + jsonx.dumps(error_body(err)) + CRLF2


class JSONArrayRelay:
    """`streamGenerateContent` without `alt=sse`: one JSON array, written element by element."""

    usage = None

    def __init__(self) -> None:
        self._opened = False

    def _element(self, obj: object) -> bytes:
        prefix = b"\n,\r\n" if self._opened else b"["
        self._opened = True
        return prefix + jsonx.dumps_pretty(obj).rstrip(b"\n")

    def start(self) -> bytes:
        return b""

    def feed(self, data: bytes) -> bytes:
        obj = stream_event(data)
        self.usage = obj.get("usageMetadata", self.usage)
        return self._element(obj)

    def finish(self) -> bytes:
        return b"\n]" if self._opened else b"[]"

    def fail(self, err: GatewayError) -> bytes:
        return self._element(error_body(err)) + b"\n]"
