"""Affinity and fallbacks through the routes: session hints per dialect, resource owners, the served model."""

import json

import pytest
from responses import matchers

from app import create_app
from app.state import state_of
from app.store import USAGE_FIELDS
from tests.conftest import AUTH, BASE, SEED_KEY, UPSTREAM_KEYS, fixture_bytes, fixture_json, make_env

FLASH = BASE + "/v1beta/models/gemini-2.5-flash:generateContent"
PRO = BASE + "/v1beta/models/gemini-2.5-pro:generateContent"
OK = fixture_bytes("gemini/generate_text.json")
NATIVE = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
CHAT = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hello"}]}
MESSAGE = {"model": "gemini-2.5-flash", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
OTHER_CLIENT = {"Authorization": f"Bearer {SEED_KEY}"}


def keys_used(mocked) -> list[str]:
    return [f"key-{UPSTREAM_KEYS.index(c.request.headers['x-goog-api-key']) + 1}" for c in mocked.calls]


@pytest.mark.parametrize(
    "path, body, headers",
    [
        ("/v1/chat/completions", {**CHAT, "user": "user-42"}, {}),
        ("/v1/chat/completions", {**CHAT, "prompt_cache_key": "thread-9"}, {}),
        ("/v1/messages", {**MESSAGE, "metadata": {"user_id": "user-42"}}, {}),
        ("/v1beta/models/gemini-2.5-flash:generateContent", NATIVE, {"x-session-affinity": "s-1"}),
        ("/v1/chat/completions", CHAT, {"x-gemgate-session": "s-2"}),
    ],
)
def test_a_session_hint_keeps_calls_on_one_key(client, mocked, path, body, headers):
    mocked.post(FLASH, body=OK)
    for _ in range(4):
        assert client.post(path, json=body, headers={**AUTH, **headers}).status_code == 200
    assert len(set(keys_used(mocked))) == 1


def test_without_a_hint_calls_rotate(client, mocked):
    mocked.post(FLASH, body=OK)
    for _ in range(3):
        client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert keys_used(mocked) == ["key-1", "key-2", "key-3"]


def test_a_session_leaves_its_key_when_that_key_rests(client, mocked):
    mocked.post(FLASH, body=OK, match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[0]})])
    hinted = {**CHAT, "user": "u"}
    client.post("/v1/chat/completions", json=hinted, headers=AUTH)
    assert keys_used(mocked) == ["key-1"]
    mocked.replace(
        "POST",
        FLASH,
        json=fixture_json("gemini/error_429_resource_exhausted_bare.json"),
        status=429,
        match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[0]})],
    )
    mocked.post(FLASH, body=OK)
    for _ in range(3):
        assert client.post("/v1/chat/completions", json=hinted, headers=AUTH).status_code == 200
    assert keys_used(mocked)[1:] == ["key-1", "key-2", "key-2", "key-2"]


def test_cached_content_goes_to_the_key_that_created_it_and_only_for_its_client(app, client, mocked):
    mocked.post(FLASH, body=OK)
    pool = state_of(app).pool
    pool.record_owner("cachedContents/c4che", pool.keys[1], "key-1", ttl=600)  # AUTH is key-1
    body = {**NATIVE, "cachedContent": "cachedContents/c4che"}
    for _ in range(3):
        r = client.post("/v1beta/models/gemini-2.5-flash:generateContent", json=body, headers=AUTH)
        assert r.status_code == 200
    chat = {**CHAT, "extra_body": {"google": {"cached_content": "cachedContents/c4che"}}}
    assert client.post("/v1/chat/completions", json=chat, headers=AUTH).status_code == 200
    assert keys_used(mocked) == ["key-2"] * 4
    # Another client naming it: not found, in its own dialect, and nothing sent upstream.
    r = client.post("/v1beta/models/gemini-2.5-flash:generateContent", json=body, headers=OTHER_CLIENT)
    assert r.status_code == 404 and r.json["error"]["status"] == "NOT_FOUND"
    assert "cachedContents/c4che was not found" in r.json["error"]["message"]
    r = client.post("/v1/chat/completions", json=chat, headers=OTHER_CLIENT)
    assert r.status_code == 404 and r.json["error"]["type"] == "invalid_request_error"
    assert len(mocked.calls) == 4


def test_a_fallback_model_is_named_in_the_header_and_the_record_and_not_in_the_answer(tmp_path, mocked):
    app = create_app(make_env(DATA_DIR=str(tmp_path), MODEL_FALLBACKS="gemini-2.5-pro>gemini-2.5-flash"))
    seen = []
    state_of(app).finish = seen.append
    client = app.test_client()
    mocked.post(PRO, json=fixture_json("gemini/error_429_resource_exhausted_bare.json"), status=429)
    mocked.post(FLASH, body=OK)
    r = client.post("/v1/chat/completions", json={**CHAT, "model": "gemini-2.5-pro"}, headers=AUTH)
    assert r.status_code == 200 and r.headers["x-gemgate-model"] == "gemini-2.5-flash"
    assert r.json["model"] == "gemini-2.5-pro"  # what the client asked for
    (rec,) = seen
    assert (rec.model, rec.served_model) == ("gemini-2.5-pro", "gemini-2.5-flash")
    r = client.post("/v1/messages", json=MESSAGE, headers=AUTH)
    assert r.headers["x-gemgate-model"] == "gemini-2.5-flash" and r.json["model"] == "gemini-2.5-flash"
    assert "served_model" in USAGE_FIELDS


def test_a_fallback_model_of_another_family_gets_the_thinking_settings_it_takes(tmp_path, mocked):
    chain = "gemini-3-pro-preview>gemini-2.5-pro>gemini-2.0-flash"
    app = create_app(make_env(DATA_DIR=str(tmp_path), MODEL_FALLBACKS=chain))
    client = app.test_client()
    exhausted = {"json": fixture_json("gemini/error_429_resource_exhausted_bare.json"), "status": 429}
    for model in ("gemini-3-pro-preview", "gemini-2.5-pro"):
        for action in ("generateContent", "streamGenerateContent"):
            mocked.post(f"{BASE}/v1beta/models/{model}:{action}", **exhausted)
    mocked.post(BASE + "/v1beta/models/gemini-2.0-flash:generateContent", body=OK)
    chat = {**CHAT, "model": "gemini-3-pro-preview", "reasoning_effort": "high"}
    r = client.post("/v1/chat/completions", json=chat, headers=AUTH)
    assert r.status_code == 200 and r.headers["x-gemgate-model"] == "gemini-2.0-flash"
    sent = {c.request.url.split("/models/")[1].split(":")[0]: c.request.body for c in mocked.calls}
    config = lambda body: json.loads(body)["generationConfig"].get("thinkingConfig")  # noqa: E731
    assert config(sent["gemini-3-pro-preview"]) == {"thinkingLevel": "HIGH", "includeThoughts": True}
    assert config(sent["gemini-2.5-pro"]) == {"thinkingBudget": 24576, "includeThoughts": True}
    assert config(sent["gemini-2.0-flash"]) is None  # it takes none

    mocked.calls.reset()
    client = create_app(make_env(DATA_DIR=str(tmp_path / "again"), MODEL_FALLBACKS=chain)).test_client()
    mocked.post(
        BASE + "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
        body=fixture_bytes("gemini/stream_text.sse"),
        content_type="text/event-stream",
    )
    body = {
        **NATIVE,
        "generation_config": {"thinking_config": {"thinking_level": "low", "include_thoughts": True}},
    }
    r = client.post(
        "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse", json=body, headers=AUTH
    )
    assert r.status_code == 200 and r.data.count(b"data: ") == 4
    budgets = [json.loads(c.request.body)["generation_config"].get("thinking_config") for c in mocked.calls]
    assert budgets[0] == {"thinking_level": "low", "include_thoughts": True}  # as the client sent it
    assert {"thinking_budget": 1024, "include_thoughts": True} in budgets and budgets[-1] is None


def test_a_streamed_fallback_names_its_model_before_the_first_byte(tmp_path, mocked):
    app = create_app(make_env(DATA_DIR=str(tmp_path), MODEL_FALLBACKS="gemini-2.5-pro>gemini-2.5-flash"))
    client = app.test_client()
    mocked.post(
        BASE + "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
        json=fixture_json("gemini/error_429_resource_exhausted_bare.json"),
        status=429,
    )
    mocked.post(
        BASE + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        body=fixture_bytes("gemini/stream_text.sse"),
        content_type="text/event-stream",
    )
    r = client.post(
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        json=NATIVE,
        headers=AUTH,
        buffered=True,
    )
    assert r.status_code == 200 and r.headers["x-gemgate-model"] == "gemini-2.5-flash"
    assert r.data.count(b"data: ") == 4
