"""The last step of every dialect's generate request: directives, forced tools, default safety settings."""

from app.translate.directives import Forced, parse_model_name
from app.translate.finalize import finalize

REQUEST = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
OFF = [
    {"category": c, "threshold": "OFF"}
    for c in (
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
    )
]


def test_default_safety_settings_where_the_client_set_none():
    out = finalize(dict(REQUEST), parse_model_name("gemini-2.5-flash"), safety_threshold="OFF")
    assert out["safetySettings"] == OFF
    mine = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    for name in ("safetySettings", "safety_settings"):
        out = finalize({**REQUEST, name: mine}, parse_model_name("gemini-2.5-flash"), safety_threshold="OFF")
        assert out[name] == mine and len([k for k in out if "safety" in k]) == 1


def test_directives_and_forced_tools():
    out = finalize(dict(REQUEST), parse_model_name("gemini-2.5-flash-search-high"), safety_threshold="OFF")
    assert out["tools"] == [{"googleSearch": {}}]
    assert out["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576}
    out = finalize(
        dict(REQUEST), parse_model_name("gemini-2.5-flash"), safety_threshold="OFF", forced=Forced(code=True)
    )
    assert out["tools"] == [{"codeExecution": {}}]


def test_the_model_name_level_wins_over_the_request_s_own():
    request = {
        **REQUEST,
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 100, "includeThoughts": True}},
    }
    out = finalize(request, parse_model_name("gemini-2.5-flash-low"), safety_threshold="OFF")
    assert out["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 1024}
