"""Gemini's raw speech (16-bit little-endian mono PCM) as the audio files OpenAI clients ask for."""

from __future__ import annotations

import functools
import io
import re
import struct

DEFAULT_RATE = 24000
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
# format -> (PyAV container, codec)
_ENCODED = {
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "aac": ("adts", "aac"),
    "flac": ("flac", "flac"),
}
_RATE = re.compile(r"rate=(\d+)", re.I)


def pcm_rate(mime: str) -> int | None:
    """The sample rate of a PCM mime type like `audio/L16;codec=pcm;rate=24000`; None if not PCM."""
    kind = mime.split(";", 1)[0].strip().lower()
    if kind not in ("audio/l16", "audio/pcm", "audio/raw"):
        return None
    match = _RATE.search(mime)
    return int(match.group(1)) if match else DEFAULT_RATE


def wav(pcm: bytes, rate: int) -> bytes:
    """A RIFF/WAVE file around mono 16-bit PCM."""
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(pcm),
    )  # fmt: format, size, PCM, mono, rate, byte rate, block align, bits
    return header + pcm


@functools.cache
def _av():
    try:
        import av
    except ImportError:  # the encoder library is optional: wav and pcm still work without it
        return None
    return av


def formats() -> tuple[str, ...]:
    """The response formats this installation can produce."""
    encoded = tuple(_ENCODED) if _av() is not None else ()
    return encoded + ("wav", "pcm")


def encode(pcm: bytes, rate: int, fmt: str) -> bytes:
    """Mono s16le PCM as `fmt` (one of `formats()`)."""
    if fmt == "pcm":
        return pcm
    if fmt == "wav":
        return wav(pcm, rate)
    av = _av()
    container, codec = _ENCODED[fmt]
    pcm = pcm[: len(pcm) - len(pcm) % 2]
    out = io.BytesIO()
    with av.open(out, "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate, layout="mono")
        if pcm:
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
            frame.planes[0].update(pcm)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return out.getvalue()
