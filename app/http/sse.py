"""Server-sent events: encoding frames, and a buffered parser for upstream bytes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_LINE_ENDS = (b"\r\n", b"\n", b"\r")


def data_frame(payload: bytes, sep: bytes = b"\n\n") -> bytes:
    return b"data: " + payload + sep


def event_frame(event: bytes, payload: bytes) -> bytes:
    return b"event: " + event + b"\ndata: " + payload + b"\n\n"


class SSEDecoder:
    """Incremental SSE parser: feed raw bytes as they arrive, get complete `data` payloads.

    Survives frames split anywhere across reads, several frames in one read, and CR, LF or
    CRLF line endings. Only the `data` field matters for Gemini streams; other fields and
    comments are skipped. Lines that are not SSE at all (a raw JSON error appended after the
    events) are collected in `stray`.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self.stray: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[bytes] = []
        start = 0
        size = len(buffer)
        while start < size:
            nl = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, nl if nl >= 0 else size)
            if cr >= 0:
                end = cr
                if cr + 1 < size:
                    after = cr + 2 if buffer[cr + 1] == 10 else cr + 1
                elif not chunk:
                    after = cr + 1
                else:
                    break  # a lone CR at the end may be the first half of CRLF
            elif nl >= 0:
                end, after = nl, nl + 1
            else:
                break
            self._line(buffer[start:end], events)
            start = after
        self._buffer = buffer[start:]
        return events

    def close(self) -> list[bytes]:
        """End of stream: flush a final event that lacked its blank line."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append(b"\n".join(self._data))
            self._data = []
        return events

    def _line(self, line: bytes, events: list[bytes]) -> None:
        if not line:
            if self._data:
                events.append(b"\n".join(self._data))
                self._data = []
            return
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value[:1] == b" " else value)
        elif line[:1] == b":" or line.startswith((b"event:", b"id:", b"retry:")):
            return
        else:
            self.stray.append(line)


def iter_events(chunks: Iterable[bytes]) -> Iterator[bytes]:
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()
