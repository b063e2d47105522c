"""What the gateway adds to generate calls in every dialect: default safety settings, forced features,
and the model name's directives, as set in the environment or changed while the gateway runs."""

import json
import time

import pytest

from app import create_app
from app.config.runtime import REFRESH
from app.state import state_of
from tests.conftest import AUTH, BASE, fixture_bytes, make_env

GENERATE = BASE + "/v1beta/models/gemini-2.5-flash:generateContent"
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
    assert {"googleSearch": {}} in sent["tools"] and {"codeExecution": {}} in sent["tools"]


def gateway(tmp_path, **env):
    return create_app(make_env(DATA_DIR=str(tmp_path), REQUEST_LOG="off", **env))


@pytest.mark.parametrize("dialect", list(CALLS))
def test_forced_url_context_and_thinking_in_every_dialect(tmp_path, mocked, dialect):
    app = gateway(tmp_path, FORCE_URL_CONTEXT="true", FORCE_THINKING="true")
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    path, body = CALLS[dialect]
    assert app.test_client().post(path, json=body, headers=AUTH).status_code == 200
    sent = json.loads(mocked.calls[0].request.body)
    assert sent["tools"] == [{"urlContext": {}}]
    assert sent["generationConfig"]["thinkingConfig"]["includeThoughts"] is True


@pytest.mark.parametrize("dialect", list(CALLS))
def test_force_dialects_leaves_the_other_dialects_alone(tmp_path, mocked, dialect):
    app = gateway(tmp_path, FORCE_GOOGLE_SEARCH="true", FORCE_THINKING="true", FORCE_DIALECTS="openai")
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    path, body = CALLS[dialect]
    assert app.test_client().post(path, json=body, headers=AUTH).status_code == 200
    sent = json.loads(mocked.calls[0].request.body)
    assert ("tools" in sent) is (dialect == "openai")


def test_native_clients_bytes_go_as_sent_unless_something_is_added(tmp_path, mocked):
    app = gateway(tmp_path)
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    raw = b'{"contents":[{"parts":[{"text":"hi"}]}],"generation_config":{"temperature":"0.5"}}'
    headers = {**AUTH, "Content-Type": "application/json"}
    client = app.test_client()
    assert client.post(CALLS["gemini"][0], data=raw, headers=headers).status_code == 200
    first = mocked.calls[0].request.body
    assert first.startswith(raw[:-1]) and b'"safetySettings"' in first  # the client's own bytes
    # A suffix adds a tool and a level: the body is re-encoded once, with one spelling of each name.
    path = "/v1beta/models/gemini-2.5-flash-search-low:generateContent"
    assert client.post(path, data=raw, headers=headers).status_code == 200
    assert mocked.calls[1].request.url == GENERATE
    sent = json.loads(mocked.calls[1].request.body)
    assert "generation_config" not in sent and sent["generationConfig"]["temperature"] == 0.5
    assert sent["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024}
    assert sent["tools"] == [{"googleSearch": {}}] and len(sent["safetySettings"]) == 4


def test_native_clients_with_functions_get_no_forced_tools(tmp_path, mocked):
    app = gateway(tmp_path, FORCE_GOOGLE_SEARCH="true", FORCE_CODE_EXECUTION="true")
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    body = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "tools": [{"function_declarations": [{"name": "lookup"}]}],
    }
    assert app.test_client().post(CALLS["gemini"][0], json=body, headers=AUTH).status_code == 200
    assert json.loads(mocked.calls[0].request.body)["tools"] == body["tools"]


def test_settings_changed_while_running_apply_to_the_next_request(tmp_path, mocked):
    app = gateway(tmp_path)
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    client = app.test_client()
    path, body = CALLS["anthropic"]
    client.post(path, json=body, headers=AUTH)
    assert "tools" not in json.loads(mocked.calls[0].request.body)
    # Another worker (another app on the same store) changes them; this one sees it within a second.
    other = gateway(tmp_path)
    changed = state_of(other).settings.change(
        {"FORCE_CODE_EXECUTION": "on", "SAFETY_THRESHOLD": "block_none"}
    )
    assert changed == {"FORCE_CODE_EXECUTION": ("false", "true"), "SAFETY_THRESHOLD": ("OFF", "BLOCK_NONE")}
    time.sleep(REFRESH + 0.1)
    client.post(path, json=body, headers=AUTH)
    sent = json.loads(mocked.calls[1].request.body)
    assert sent["tools"] == [{"codeExecution": {}}]
    assert {s["threshold"] for s in sent["safetySettings"]} == {"BLOCK_NONE"}
    assert state_of(gateway(tmp_path)).settings.current().force_code  # and a restart keeps them
