"""PCM -> the audio files OpenAI clients ask for."""

import io
import math
import struct

import av
import pytest

from app.openai import audio

RATE = 24000
# One second of a 440 Hz tone, 16-bit little-endian mono.
TONE = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / RATE))) for i in range(RATE))


@pytest.mark.parametrize(
    "mime, rate",
    [
        ("audio/L16;codec=pcm;rate=24000", 24000),
        ("audio/l16; rate=16000; channels=1", 16000),
        ("audio/pcm", 24000),
        ("audio/mpeg", None),
        ("image/png", None),
    ],
)
def test_pcm_rate(mime, rate):
    assert audio.pcm_rate(mime) == rate


def test_wav_header():
    data = audio.wav(TONE, RATE)
    riff, size, wave, fmt, fmt_size, pcm, channels, rate, byte_rate, align, bits, tag, length = struct.unpack(
        "<4sI4s4sIHHIIHH4sI", data[:44]
    )
    assert (riff, wave, fmt, tag) == (b"RIFF", b"WAVE", b"fmt ", b"data")
    assert (size, fmt_size, pcm, channels, rate, byte_rate, align, bits, length) == (
        36 + len(TONE),
        16,
        1,
        1,
        RATE,
        RATE * 2,
        2,
        16,
        len(TONE),
    )
    assert data[44:] == TONE
    assert audio.encode(TONE, RATE, "pcm") == TONE


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_encoded_formats_decode_back_to_a_second_of_sound(fmt):
    assert fmt in audio.formats()
    data = audio.encode(TONE, RATE, fmt)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        seconds = sum(frame.samples / frame.sample_rate for frame in container.decode(stream))
        assert stream.channels == 1
    assert 0.95 <= seconds <= 1.1


def test_formats_without_the_encoder_library(monkeypatch):
    monkeypatch.setattr(audio, "_av", lambda: None)
    assert audio.formats() == ("wav", "pcm")


def test_odd_byte_counts_and_silence_encode():
    assert audio.encode(TONE[:3], RATE, "mp3")
    assert audio.encode(b"", RATE, "flac").startswith(b"fLaC")
