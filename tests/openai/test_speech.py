"""OpenAI speech requests -> Gemini TTS requests."""

import pytest

from app.errors import InvalidRequest
from app.openai import speech


@pytest.mark.parametrize(
    "voice, name", [("alloy", "Kore"), ("NOVA", "Zephyr"), ("Puck", "Puck"), ("sulafat", "Sulafat")]
)
def test_voices(voice, name):
    assert speech.speech_config(voice) == {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": name}}}


def test_every_openai_voice_maps_to_a_gemini_voice():
    assert set(speech.OPENAI_VOICES.values()) <= set(speech.GEMINI_VOICES)
    assert (
        speech.speech_config(None)["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == speech.DEFAULT_VOICE
    )


def test_unknown_voice_is_a_400_listing_the_choices():
    with pytest.raises(InvalidRequest) as caught:
        speech.voice_name("darth", param="audio.voice")
    assert (
        caught.value.param == "audio.voice"
        and "alloy" in caught.value.message
        and "Kore" in caught.value.message
    )


@pytest.mark.parametrize(
    "name, model",
    [
        ("tts-1", speech.DEFAULT_MODEL),
        ("tts-1-hd", speech.DEFAULT_MODEL),
        ("gpt-4o-mini-tts", speech.DEFAULT_MODEL),
        ("gpt-4o-mini-tts-2025-03-20", speech.DEFAULT_MODEL),
        ("gemini-2.5-pro-preview-tts", "gemini-2.5-pro-preview-tts"),
        ("models/gemini-2.5-flash-preview-tts", "gemini-2.5-flash-preview-tts"),
    ],
)
def test_models(name, model):
    assert speech.tts_model(name) == model


def test_a_model_that_does_not_speak_is_a_400():
    with pytest.raises(InvalidRequest) as caught:
        speech.tts_model("gemini-2.5-flash")
    assert caught.value.param == "model"


def test_prompt():
    assert speech.prompt("Hi", None, None) == "Hi"
    assert speech.prompt("Hi", None, 1.0) == "Hi"
    assert (
        speech.prompt("Hi", "Sound cheerful.", None) == "Sound cheerful. Read the following text aloud:\nHi"
    )
    assert speech.prompt("Hi", "", 1.6) == "Speak very quickly. Read the following text aloud:\nHi"
    assert speech.prompt("Hi", "Calm", 0.8).startswith("Calm. Speak slowly.")


def test_speech_request():
    assert speech.speech_request({"input": "Hello", "voice": "echo"}) == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}},
        },
    }


def test_a_voice_object_with_an_id():
    assert speech.voice_name({"id": "coral"}) == "Aoede"
    with pytest.raises(InvalidRequest):
        speech.voice_name({"name": "coral"})
