"""OpenAI `/v1/audio/speech` requests as Gemini TTS requests: models, voices, and the spoken prompt."""

from __future__ import annotations

import re

from ..errors import InvalidRequest
from ..upstream.model_catalog import model_id

DEFAULT_MODEL = "gemini-2.5-flash-preview-tts"
DEFAULT_VOICE = "Kore"
# Gemini's prebuilt voices, from the speech-generation guide.
GEMINI_VOICES = (
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Callirrhoe",
    "Autonoe",
    "Enceladus",
    "Iapetus",
    "Umbriel",
    "Algieba",
    "Despina",
    "Erinome",
    "Algenib",
    "Rasalgethi",
    "Laomedeia",
    "Achernar",
    "Alnilam",
    "Schedar",
    "Gacrux",
    "Pulcherrima",
    "Achird",
    "Zubenelgenubi",
    "Vindemiatrix",
    "Sadachbia",
    "Sadaltager",
    "Sulafat",
)
# OpenAI's voices, each given the Gemini voice closest in character (Google's own descriptions).
OPENAI_VOICES = {
    "alloy": "Kore",  # neutral, firm
    "ash": "Charon",  # informative
    "ballad": "Algieba",  # smooth
    "coral": "Aoede",  # breezy
    "echo": "Puck",  # upbeat
    "fable": "Sadaltager",  # knowledgeable storyteller
    "onyx": "Algenib",  # deep, gravelly
    "nova": "Zephyr",  # bright
    "sage": "Achernar",  # soft
    "shimmer": "Leda",  # youthful
    "verse": "Orus",  # firm
    "marin": "Sulafat",  # warm
    "cedar": "Gacrux",  # mature
}
_BY_LOWER = {v.lower(): v for v in GEMINI_VOICES} | OPENAI_VOICES
# OpenAI's TTS model names: clients that only change the base URL send these.
_OPENAI_MODELS = re.compile(r"^(tts-1(-hd)?|gpt-4o(-mini)?-tts)(-\d{4}-\d{2}-\d{2})?$")


def voice_name(voice, *, param: str = "voice") -> str:
    """The Gemini voice for an OpenAI or Gemini voice name (or {"id": name}, as newer SDKs send)."""
    if isinstance(voice, dict):
        voice = voice.get("id")
    found = _BY_LOWER.get(voice.strip().lower()) if isinstance(voice, str) else None
    if found is None:
        raise InvalidRequest(
            f"Unknown voice {voice!r}: use an OpenAI voice ({', '.join(OPENAI_VOICES)}) "
            f"or a Gemini voice ({', '.join(GEMINI_VOICES)}).",
            param=param,
        )
    return found


def speech_config(voice, *, param: str = "voice") -> dict:
    name = voice_name(voice, param=param) if voice else DEFAULT_VOICE
    return {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": name}}}


def tts_model(name: str) -> str:
    """The Gemini TTS model for `model`: OpenAI's TTS names map to the default one."""
    bare = name.removeprefix("models/")
    if _OPENAI_MODELS.match(bare):
        return DEFAULT_MODEL
    if "tts" not in bare:
        raise InvalidRequest(
            f"Model {name!r} does not speak; use a Gemini TTS model such as {DEFAULT_MODEL!r}.", param="model"
        )
    return model_id(bare)


def prompt(text: str, instructions: str | None, speed: float | None) -> str:
    """Gemini TTS is steered in words: style instructions and pace go before the text to read."""
    notes = []
    if instructions and instructions.strip():
        notes.append(instructions.strip().rstrip(".:"))
    if speed is not None and abs(speed - 1.0) >= 0.05:
        notes.append(_pace(speed))
    if not notes:
        return text
    return ". ".join(notes) + ". Read the following text aloud:\n" + text


def _pace(speed: float) -> str:
    if speed < 0.7:
        return "Speak very slowly"
    if speed < 1.0:
        return "Speak slowly"
    if speed <= 1.5:
        return "Speak quickly"
    return "Speak very quickly"


def speech_request(body: dict) -> dict:
    return {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": prompt(body["input"], body.get("instructions"), body.get("speed"))}],
            }
        ],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": speech_config(body.get("voice")),
        },
    }
