"""What the gateway adds to generate calls in every dialect: default safety settings, forced tools."""

import json

import pytest

from app import create_app
from tests.conftest import AUTH, BASE, fixture_bytes, make_env

CALLS = {
    "gemini": (
        "/v1beta/models/gemini-2.5-flash:generateContent",
        {"contents": [{"parts": [{"text": "hi"}]}]},
    ),
    "openai": (
        "/v1/chat/completions",
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]},
    ),
    "anthropic": (
        "/v1/messages",
        {"model": "gemini-2.5-flash", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
    ),
}


@pytest.mark.parametrize("dialect", list(CALLS))
def test_safety_defaults_and_forced_tools(tmp_path, mocked, dialect):
    app = create_app(
        make_env(
            DATA_DIR=str(tmp_path),
            SAFETY_THRESHOLD="BLOCK_NONE",
            FORCE_GOOGLE_SEARCH="true",
            FORCE_CODE_EXECUTION="yes",
        )
    )
    mocked.post(
        BASE + "/v1beta/models/gemini-2.5-flash:generateContent",
        body=fixture_bytes("gemini/generate_text.json"),
    )
    path, body = CALLS[dialect]
    assert app.test_client().post(path, json=body, headers=AUTH).status_code == 200
    sent = json.loads(mocked.calls[0].request.body)
    assert {s["threshold"] for s in sent["safetySettings"]} == {"BLOCK_NONE"} and len(
        sent["safetySettings"]
    ) == 4
    if dialect != "gemini":  # native requests go to Gemini as the client wrote them
        assert {"googleSearch": {}} in sent["tools"] and {"codeExecution": {}} in sent["tools"]
