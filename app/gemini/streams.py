"""Relaying Gemini's own stream to a native client, as SSE or as the streamed JSON array."""

from __future__ import annotations

from .. import jsonx
from ..errors import GatewayError
from ..translate.finish import cut_short, finished
from ..upstream.answers import stream_event
from .errors import error_body

CRLF2 = b"\r\n\r\n"


class SSERelay:
    """Each upstream event goes out as it came, in Google's CRLF framing."""

    usage = None
    ended = False  # Gemini said why it stopped: a stream without it was cut short

    def start(self) -> bytes:
        return b""

    def feed(self, data: bytes) -> bytes:
        # Parsed to keep the usage and see the end, and so garbage from upstream becomes an error event.
        event = stream_event(data)
        self.usage = event.get("usageMetadata", self.usage)
        self.ended = self.ended or finished(event)
        if b"\n" in data:  # a whole answer (a fake stream) is pretty-printed: one line per event
            data = jsonx.dumps(event)
        return b"data: " + data + CRLF2

    def finish(self) -> bytes:
        if not self.ended:
            raise cut_short()
        return b""

    def fail(self, err: GatewayError) -> bytes:
        return b"data: " + jsonx.dumps(error_body(err)) + CRLF2


class JSONArrayRelay:
    """`streamGenerateContent` without `alt=sse`: one JSON array, written element by element."""

    usage = None

    def __init__(self) -> None:
        self._opened = False
        self.ended = False

    def _element(self, obj: object) -> bytes:
        prefix = b"\n,\r\n" if self._opened else b"["
        self._opened = True
        return prefix + jsonx.dumps_pretty(obj).rstrip(b"\n")

    def start(self) -> bytes:
        return b""

    def feed(self, data: bytes) -> bytes:
        obj = stream_event(data)
        self.usage = obj.get("usageMetadata", self.usage)
        self.ended = self.ended or finished(obj)
        return self._element(obj)

    def finish(self) -> bytes:
        if not self.ended:
            raise cut_short()
        return b"\n]" if self._opened else b"[]"

    def fail(self, err: GatewayError) -> bytes:
        return self._element(error_body(err)) + b"\n]"
