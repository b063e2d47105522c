"""The key pool end to end: the real gunicorn server, the fake Gemini, one client's errors and the others."""

import json
import subprocess
import sys
import time
from datetime import datetime

import requests

from app.upstream.retry import PACIFIC, next_pacific_midnight
from tests.conftest import CLIENT_KEY, ROOT, SEED_KEY, UPSTREAM_KEYS, fixture_json

FLASH = "/v1beta/models/gemini-2.5-flash:generateContent"
PRO = "/v1beta/models/gemini-2.5-pro:generateContent"
NATIVE = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
ALICE = {"Authorization": f"Bearer {CLIENT_KEY}"}
BOB = {"Authorization": f"Bearer {SEED_KEY}"}


def chat(model: str, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Hello"}], **extra}


def message(model: str, **extra) -> dict:
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}], **extra}


def health(gateway) -> dict:
    return requests.get(gateway.url("/healthz"), timeout=5).json()["upstream_keys"]


def post(gateway, path, body, headers=ALICE, **kwargs):
    return requests.post(gateway.url(path), json=body, headers=headers, timeout=10, **kwargs)


def test_a_request_level_403_is_the_callers_and_the_next_client_is_served_at_once(start_gateway, upstream):
    gateway = start_gateway()
    denied = fixture_json("gemini/error_403_file_not_owned.json")
    for path, body, shape in (
        (FLASH, NATIVE, lambda j: j["error"]["status"] == "PERMISSION_DENIED"),
        (
            "/v1/chat/completions",
            chat("gemini-2.5-flash"),
            lambda j: j["error"]["type"] == "permission_error",
        ),
        ("/v1/messages", message("gemini-2.5-flash"), lambda j: j["error"]["type"] == "permission_error"),
    ):
        upstream.reset()
        upstream.script({"match": "flash:generateContent", "status": 403, "body": denied, "repeat": 2})
        r = post(gateway, path, body)
        assert r.status_code == 403 and shape(r.json()), r.text
        assert "You do not have permission to access the File" in r.text
        assert len({c["key"] for c in upstream.calls()}) == 2  # tried once on another key, no more
        # Nothing was rested: the next request, another client's, is served at once by the first key.
        started = time.monotonic()
        assert post(gateway, path, body, headers=BOB).status_code == 200
        assert time.monotonic() - started < 2
    keys = health(gateway)
    assert keys["healthy"] == 3 and keys["models"] == {}


def test_a_generic_403_rests_one_pair_and_never_empties_the_models_pool(start_gateway, upstream):
    gateway = start_gateway()
    generic = fixture_json("gemini/error_403_generic_model.json")
    upstream.script(
        {
            "match": "gemini-3-pro-preview",
            "key": UPSTREAM_KEYS[0],
            "status": 403,
            "body": generic,
            "repeat": -1,
        }
    )
    preview = "/v1beta/models/gemini-3-pro-preview:generateContent"
    assert post(gateway, preview, NATIVE).status_code == 200  # key-1 refused, key-2 served
    assert health(gateway)["models"]["gemini-3-pro-preview"] == {
        "healthy": 2,
        "cooling": 0,
        "disabled": 0,
        "denied": 1,
    }
    upstream.reset()
    upstream.script({"match": "gemini-3-pro-preview", "status": 403, "body": generic, "repeat": -1})
    for _ in range(3):  # no key may use it: the callers get 403, every time, and keys stay in use
        assert post(gateway, preview, NATIVE).status_code == 403
    assert post(gateway, FLASH, NATIVE).status_code == 200
    keys = health(gateway)
    assert keys["healthy"] == 3 and keys["models"]["gemini-3-pro-preview"]["denied"] == 3
    upstream.reset()  # the model opens to the keys: one success clears its pair
    assert post(gateway, preview, NATIVE).status_code == 200
    assert health(gateway)["models"]["gemini-3-pro-preview"]["denied"] == 2


def test_a_model_scoped_429_on_every_key_leaves_other_models_served(start_gateway, upstream):
    gateway = start_gateway()
    upstream.script(
        {
            "match": "gemini-2.5-pro:",
            "status": 429,
            "body": fixture_json("gemini/error_429_resource_exhausted.json"),
            "repeat": -1,
        }
    )
    r = post(gateway, "/v1/chat/completions", chat("gemini-2.5-pro"))
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    assert 20 <= int(r.headers["Retry-After"]) <= 26
    assert len(upstream.calls()) == 3
    for path, body in ((FLASH, NATIVE), ("/v1/chat/completions", chat("gemini-2.5-flash"))):
        for headers in (ALICE, BOB):
            assert post(gateway, path, body, headers=headers).status_code == 200
    r = post(gateway, PRO, NATIVE, headers=BOB)  # answered by the gateway: nothing goes upstream
    assert r.status_code == 429 and "rate limited for gemini-2.5-pro" in r.json()["error"]["message"]
    assert sum("gemini-2.5-pro" in c["path"] for c in upstream.calls()) == 3
    keys = health(gateway)
    assert keys["healthy"] == 3 and keys["models"] == {
        "gemini-2.5-pro": {"healthy": 0, "cooling": 3, "disabled": 0, "denied": 0}
    }


def test_a_daily_quota_rests_the_pair_until_pacific_midnight(start_gateway, upstream):
    # The gateway reads the real clock: a run that would straddle Pacific midnight waits it out first.
    if next_pacific_midnight(time.time()) - time.time() < 30:
        time.sleep(max(0.0, next_pacific_midnight(time.time()) - time.time()) + 1)
    gateway = start_gateway()
    upstream.script(
        {
            "match": "flash:generateContent",
            "status": 429,
            "body": fixture_json("gemini/error_429_daily_minute_and_tokens.json"),
            "repeat": -1,
        }
    )
    before = time.time()
    r = post(gateway, "/v1/messages", message("gemini-2.5-flash"))
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    midnight = next_pacific_midnight(before)
    assert abs(int(r.headers["Retry-After"]) - (midnight - time.time())) <= 2  # not RetryInfo's 47 s
    assert datetime.fromtimestamp(midnight, PACIFIC).hour == 0
    calls = len(upstream.calls())
    r = post(gateway, FLASH, NATIVE, headers=BOB)
    assert r.status_code == 429 and "daily quota for gemini-2.5-flash" in r.json()["error"]["message"]
    assert abs(int(r.headers["Retry-After"]) - (midnight - time.time())) <= 2
    assert len(upstream.calls()) == calls  # nothing sent upstream until midnight
    assert post(gateway, PRO, NATIVE).status_code == 200


def test_a_prompt_over_the_token_limit_is_answered_429_and_cools_nothing(start_gateway, upstream):
    gateway = start_gateway()
    upstream.script(
        {
            "match": "flash:generateContent",
            "status": 429,
            "body": fixture_json("gemini/error_429_input_tokens_per_minute.json"),
        }
    )
    huge = {"contents": [{"role": "user", "parts": [{"text": "word " * 200_000}]}]}
    assert post(gateway, FLASH, huge).status_code == 429
    assert len(upstream.calls()) == 1
    assert post(gateway, FLASH, NATIVE, headers=BOB).status_code == 200
    assert health(gateway)["models"] == {}


def test_a_fallback_chain_serves_when_the_first_model_is_exhausted_and_never_after_the_first_byte(
    start_gateway, upstream
):
    gateway = start_gateway(MODEL_FALLBACKS="gemini-2.5-pro>gemini-2.5-flash")
    upstream.script(
        {
            "match": "gemini-2.5-pro:",
            "status": 429,
            "body": fixture_json("gemini/error_429_resource_exhausted_bare.json"),
            "repeat": -1,
        }
    )
    r = post(gateway, "/v1/chat/completions", chat("gemini-2.5-pro"))
    assert r.status_code == 200 and r.headers["x-gemgate-model"] == "gemini-2.5-flash"
    assert r.json()["model"] == "gemini-2.5-pro"
    r = post(gateway, "/v1/messages", message("gemini-2.5-pro", stream=True), stream=True)
    assert r.status_code == 200 and r.headers["x-gemgate-model"] == "gemini-2.5-flash"
    assert b"message_stop" in r.content
    # A stream of the fallback model that breaks after its first event ends with an error event:
    # nothing is sent again, to this model or another.
    upstream.reset()
    upstream.script(
        {
            "match": "gemini-2.5-pro:",
            "status": 429,
            "body": fixture_json("gemini/error_429_resource_exhausted_bare.json"),
            "repeat": -1,
        },
        {
            "match": "flash:streamGenerateContent",
            "events": [{"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}}]}] * 3,
            "fault": "reset_after",
            "after": 1,
        },
    )
    r = post(gateway, "/v1/chat/completions", chat("gemini-2.5-pro", stream=True), stream=True)
    body = r.content
    assert r.status_code == 200 and b'"Hi"' in body and b'"error"' in body
    assert [c["path"].rsplit("/", 1)[-1] for c in upstream.calls()] == [
        "gemini-2.5-flash:streamGenerateContent"
    ]
    # The usage records name the model that served.
    out = subprocess.run(
        [sys.executable, "-m", "app.usage", "export", "--format", "jsonl"],
        cwd=ROOT,
        env=gateway.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert {(row["model"], row["served_model"]) for row in rows} == {("gemini-2.5-pro", "gemini-2.5-flash")}


def test_health_survives_a_restart_and_is_shared(start_gateway, upstream, tmp_path):
    data_dir = tmp_path / "shared"
    first = start_gateway(DATA_DIR=data_dir, WEB_CONCURRENCY=2)
    upstream.script(
        {
            "match": "gemini-2.5-pro:",
            "key": UPSTREAM_KEYS[0],
            "status": 429,
            "body": fixture_json("gemini/error_429_free_tier_limit_zero.json"),
            "repeat": -1,
        }
    )
    assert post(first, PRO, NATIVE).status_code == 200
    first.proc.stop()
    second = start_gateway(DATA_DIR=data_dir, WEB_CONCURRENCY=2)
    assert health(second)["models"]["gemini-2.5-pro"]["disabled"] == 1
    upstream.reset()
    for _ in range(6):
        assert post(second, PRO, NATIVE).status_code == 200
    assert UPSTREAM_KEYS[0] not in {c["key"] for c in upstream.calls()}


def test_connections_to_gemini_are_kept_and_used_again(start_gateway, upstream):
    gateway = start_gateway()  # one worker
    stream = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    post(gateway, FLASH, NATIVE)
    before = upstream.connections()
    for _ in range(10):
        assert post(gateway, FLASH, NATIVE).status_code == 200
        assert post(gateway, stream, NATIVE).status_code == 200
    assert upstream.connections() == before  # all twenty on the connection the first call opened
    # Sixteen streams at once take sixteen connections; the next sixteen find them idle in the pool.
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [fixture_json("gemini/generate_text.json")] * 3,
            "interval": 0.3,
            "repeat": 32,
        }
    )

    def wave() -> int:
        from concurrent.futures import ThreadPoolExecutor

        started = upstream.connections()
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: post(gateway, stream, NATIVE), range(16)))
        assert [a.status_code for a in answers] == [200] * 16
        return upstream.connections() - started

    assert wave() <= 16
    assert wave() == 0
