"""Client keys' limits through the app: allowed models (403) and rate limits (429) in each dialect."""

import json

import pytest

from app import create_app
from app.errors import PermissionDenied
from app.state import state_of
from app.usage.limits import BUCKETS, Limit, check_model
from app.usage.record import RequestRecord
from app.usage.sink import usage_row
from tests.conftest import BASE, CLIENT_KEY, fixture_bytes, make_env

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789"


@pytest.fixture
def keys_file(tmp_path):
    def write(*entries):
        path = tmp_path / "keys.json"
        path.write_text(json.dumps({"keys": list(entries)}))
        return path

    return write


def app_with(tmp_path, keys_path, **env):
    return create_app(make_env(DATA_DIR=str(tmp_path / "data"), CLIENT_KEYS_FILE=str(keys_path), **env))


# -- the sliding window ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "buckets, now, expected",
    [
        ({}, 100.0, None),
        ({90: 2}, 100.0, None),  # under the limit of 3
        ({90: 3}, 100.0, 151 - 100.0),  # bucket 90 counts until 90 + 61
        ({40: 1, 90: 2}, 100.0, 101 - 100.0),  # the oldest counted bucket (40) frees one slot
        ({39: 5, 90: 2}, 100.0, None),  # bucket 39 no longer counts at 100
        ({50: 1, 60: 1, 70: 5}, 100.0, 131 - 100.0),  # excess 5: 50, 60 and 70 must all go
    ],
)
def test_limit_wait(buckets, now, expected):
    limit = Limit("requests", 60, 3)
    wait = limit.wait(buckets, now)
    assert wait == (None if expected is None else pytest.approx(expected))


def test_a_window_never_under_counts():
    """Whatever the timing, no `window` seconds hold more than `amount` admitted requests."""
    limit = Limit("requests", 60, 5)
    admitted: list[float] = []
    buckets: dict[int, int] = {}
    t = 1000.0
    while t < 1400:
        if limit.wait(buckets, t) is None:
            admitted.append(t)
            buckets[limit.bucket(t)] = buckets.get(limit.bucket(t), 0) + 1
        t += 0.37
    for start in admitted:
        assert sum(start <= a < start + 60 for a in admitted) <= 5
    assert len(admitted) >= 5 * 400 // 61  # and it is not much stricter than that
    assert limit.width * BUCKETS == 60


def test_check_model_takes_wildcards_and_the_models_prefix():
    check_model(("gemini-2.5-*", "text-embedding-004"), "models/gemini-2.5-flash")
    check_model(("*",), "anything")
    with pytest.raises(PermissionDenied) as err:
        check_model(("gemini-2.5-*",), "gemini-3-pro-preview")
    assert err.value.param == "model" and "gemini-3-pro-preview" in err.value.message


def test_the_record_checks_its_model_when_it_is_named():
    record = RequestRecord("req_1", "gemini", "/x")
    record.use_model("anything")  # no allowed list: any model
    record.allowed_models = ("gemini-*",)
    record.use_model("gemini-2.5-flash")
    with pytest.raises(PermissionDenied):
        record.use_model("imagen-4")
    assert record.model == "imagen-4"  # kept, so the usage record says what was refused
    assert "allowed_models" not in usage_row(record)


# -- through the app ---------------------------------------------------------------------------------


def test_requests_per_minute_answers_429_in_every_dialect(tmp_path, keys_file, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    client = app_with(
        tmp_path,
        keys_file({"name": "alice", "key": ALICE, "requests_per_minute": 2}, {"name": "bob", "key": BOB}),
    ).test_client()
    auth = {"x-goog-api-key": ALICE}
    assert client.post(GEN, json=BODY, headers=auth).status_code == 200
    assert client.post(GEN, json=BODY, headers=auth).status_code == 200
    r = client.post(GEN, json=BODY, headers=auth)
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 61
    error = r.json["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert "2 requests per minute" in error["message"]
    assert any(d.get("retryDelay") for d in error.get("details", []))

    r = client.post("/v1/chat/completions", json={}, headers={"Authorization": f"Bearer {ALICE}"})
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert r.json["error"]["type"] == "rate_limit_error" and r.json["error"]["code"] == "rate_limit_exceeded"
    r = client.post("/v1/messages", json={}, headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"})
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert r.json["type"] == "error" and r.json["error"]["type"] == "rate_limit_error"

    # Other keys are counted apart, and API_KEYS keys have no limits.
    assert client.post(GEN, json=BODY, headers={"x-goog-api-key": BOB}).status_code == 200
    for _ in range(3):
        assert client.post(GEN, json=BODY, headers={"x-goog-api-key": CLIENT_KEY}).status_code == 200
    assert len(mocked.calls) == 6  # a refused request never reaches Gemini


def test_a_model_the_key_may_not_use_is_403_and_never_sent(tmp_path, keys_file, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    client = app_with(
        tmp_path, keys_file({"name": "alice", "key": ALICE, "models": ["gemini-2.5-*"]})
    ).test_client()
    auth = {"x-goog-api-key": ALICE}
    assert client.post(GEN, json=BODY, headers=auth).status_code == 200
    r = client.post("/v1beta/models/gemini-3-pro-preview:generateContent", json=BODY, headers=auth)
    assert r.status_code == 403
    error = r.json["error"]
    assert error["status"] == "PERMISSION_DENIED" and "gemini-3-pro-preview" in error["message"]
    assert error["details"][0]["fieldViolations"][0]["field"] == "model"
    r = client.post(
        "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse", json=BODY, headers=auth
    )
    assert r.status_code == 403
    assert len(mocked.calls) == 1


def test_a_token_quota_counts_the_tokens_gemini_reported(tmp_path, keys_file, mocked):
    # generate_text.json reports 11 prompt + 1 candidate + 34 thought tokens: 46 a call.
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    client = app_with(
        tmp_path, keys_file({"name": "alice", "key": ALICE, "tokens_per_minute": 92})
    ).test_client()
    auth = {"x-goog-api-key": ALICE}
    assert client.post(GEN, json=BODY, headers=auth).status_code == 200  # 46 used
    assert client.post(GEN, json=BODY, headers=auth).status_code == 200  # 92 used: at the limit
    r = client.post(GEN, json=BODY, headers=auth)
    assert r.status_code == 429 and "92 tokens per minute" in r.json["error"]["message"]
    assert len(mocked.calls) == 2


def test_a_token_quota_counts_stream_usage(tmp_path, keys_file, mocked):
    stream = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    mocked.post(BASE + stream, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    client = app_with(
        tmp_path, keys_file({"name": "alice", "key": ALICE, "tokens_per_day": 344})
    ).test_client()
    auth = {"x-goog-api-key": ALICE}
    r = client.post(stream + "?alt=sse", json=BODY, headers=auth)
    assert r.status_code == 200 and r.data  # the last event says 29 + 115 + 199 = 343 tokens
    r = client.post(stream + "?alt=sse", json=BODY, headers=auth)
    assert r.status_code == 200 and r.data  # admitted with 343 < 344; the stream's end charges it
    r = client.post(stream + "?alt=sse", json=BODY, headers=auth)
    assert r.status_code == 429 and "344 tokens per day" in r.json["error"]["message"]


def test_usage_records_name_the_client_never_its_key(tmp_path, keys_file, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    app = app_with(tmp_path, keys_file({"name": "alice", "key": ALICE, "models": ["gemini-2.5-*"]}))
    client = app.test_client()
    client.post(GEN, json=BODY, headers={"x-goog-api-key": ALICE})
    client.post(
        "/v1beta/models/gemini-3-pro-preview:generateContent", json=BODY, headers={"x-goog-api-key": ALICE}
    )
    client.post(GEN, json=BODY, headers={"x-goog-api-key": "wrong"})
    rows = list(state_of(app).store.usage(0, 2e9))
    assert [(r["client"], r["status"], r["model"]) for r in rows] == [
        ("alice", 200, "gemini-2.5-flash"),
        ("alice", 403, "gemini-3-pro-preview"),
    ]  # the 401 has no client: metrics and the request log count it, the usage store does not
    assert (
        rows[0]["prompt_tokens"] == 11 and rows[0]["thought_tokens"] == 34 and rows[0]["key_label"] == "key-1"
    )
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir())
    assert ALICE.encode() not in raw and b"wrong" not in raw


def test_the_allowed_models_hold_in_the_openai_and_anthropic_dialects(tmp_path, keys_file, mocked):
    client = app_with(
        tmp_path, keys_file({"name": "alice", "key": ALICE, "models": ["gemini-2.5-*"]})
    ).test_client()
    chat = {"model": "gemini-3-pro-preview", "messages": [{"role": "user", "content": "Hi"}]}
    r = client.post("/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {ALICE}"})
    assert r.status_code == 403
    assert r.json["error"]["type"] == "permission_error" and r.json["error"]["param"] == "model"
    message = {
        "model": "gemini-3-pro-preview",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    r = client.post(
        "/v1/messages", json=message, headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"}
    )
    assert r.status_code == 403 and r.json["error"]["type"] == "permission_error"
    assert "gemini-3-pro-preview" in r.json["error"]["message"]
    assert len(mocked.calls) == 0


def test_a_new_cache_is_charged_what_it_stores_and_only_on_an_allowed_model(tmp_path, keys_file, mocked):
    created = {
        "name": "cachedContents/c1",
        "model": "models/gemini-2.5-flash",
        "usageMetadata": {"totalTokenCount": 600},
    }
    mocked.post(BASE + "/v1beta/cachedContents", json=created)
    app = app_with(
        tmp_path,
        keys_file({"name": "alice", "key": ALICE, "models": ["gemini-2.5-*"], "tokens_per_minute": 1000}),
    )
    client, auth = app.test_client(), {"x-goog-api-key": ALICE}
    cache = {"model": "models/gemini-2.5-flash", "contents": BODY["contents"], "ttl": "600s"}
    assert client.post("/v1beta/cachedContents", json=cache, headers=auth).status_code == 200
    r = client.post(
        "/v1beta/cachedContents", json={**cache, "model": "models/gemini-3-pro-preview"}, headers=auth
    )
    assert r.status_code == 403 and r.json["error"]["details"][0]["fieldViolations"][0]["field"] == "model"
    r = client.post("/v1beta/cachedContents", json={**cache, "model": "../files"}, headers=auth)
    assert r.status_code == 400 and "model" in r.json["error"]["message"].lower()
    assert client.post("/v1beta/cachedContents", json=cache, headers=auth).status_code == 200  # 1,200 used
    r = client.post("/v1beta/cachedContents", json=cache, headers=auth)
    assert r.status_code == 429 and "1000 tokens per minute" in r.json["error"]["message"]
    assert len(mocked.calls) == 2  # refused caches never reach Gemini
    rows = list(state_of(app).store.usage(0, 2e9))
    assert [(r["status"], r["model"], r["prompt_tokens"]) for r in rows][:2] == [
        (200, "gemini-2.5-flash", 600),
        (403, "gemini-3-pro-preview", 0),
    ]


# -- reservations and fan-out -------------------------------------------------------------------------


def test_each_upstream_call_of_a_request_counts_against_its_request_limits(tmp_path, keys_file, mocked):
    embed = "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    mocked.post(BASE + embed, json={"embeddings": [{"values": [0.5]}] * 100})
    mocked.post(BASE + embed, json={"embeddings": [{"values": [0.5]}] * 100})
    mocked.post(BASE + embed, json={"embeddings": [{"values": [0.5]}] * 50})
    client = app_with(
        tmp_path, keys_file({"name": "alice", "key": ALICE, "requests_per_minute": 3})
    ).test_client()
    auth = {"Authorization": f"Bearer {ALICE}"}
    body = {"model": "text-embedding-3-small", "input": ["x"] * 250}  # three calls to Gemini
    assert client.post("/v1/embeddings", json=body, headers=auth).status_code == 200
    r = client.post("/v1/embeddings", json={**body, "input": "one"}, headers=auth)
    assert r.status_code == 429 and "3 requests per minute" in r.json["error"]["message"]
    assert len(mocked.calls) == 3


def test_gemini_image_models_count_one_request_per_image(tmp_path, keys_file, mocked):
    gen = "/v1beta/models/gemini-2.5-flash-image:generateContent"
    mocked.post(BASE + gen, body=fixture_bytes("gemini/image_generation.json"))
    mocked.post(BASE + gen, body=fixture_bytes("gemini/image_generation.json"))
    client = app_with(
        tmp_path, keys_file({"name": "alice", "key": ALICE, "requests_per_minute": 2})
    ).test_client()
    auth = {"Authorization": f"Bearer {ALICE}"}
    body = {"model": "gemini-2.5-flash-image", "prompt": "a cat", "n": 2}
    assert client.post("/v1/images/generations", json=body, headers=auth).status_code == 200
    r = client.post("/v1/images/generations", json={**body, "n": 1}, headers=auth)
    assert r.status_code == 429
    # A request whose extra calls find no room is refused before any of them.
    client = app_with(
        tmp_path / "other", keys_file({"name": "alice", "key": ALICE, "requests_per_minute": 1})
    ).test_client()
    r = client.post("/v1/images/generations", json={**body, "n": 3}, headers=auth)
    assert r.status_code == 429 and len(mocked.calls) == 2


@pytest.mark.parametrize(
    "path, body, headers, cap",
    [
        (GEN, {**BODY, "generationConfig": {"maxOutputTokens": 300, "candidateCount": 2}}, "gemini", 600),
        (GEN, BODY, "gemini", None),
        (
            "/v1/chat/completions",
            {"model": "gemini-2.5-flash", "max_tokens": 70, "messages": [{"role": "user", "content": "Hi"}]},
            "openai",
            70,
        ),
        (
            "/v1/messages",
            {"model": "gemini-2.5-flash", "max_tokens": 90, "messages": [{"role": "user", "content": "Hi"}]},
            "anthropic",
            90,
        ),
    ],
)
def test_the_estimate_held_is_the_requests_own_cap_or_the_default_plus_its_size(
    tmp_path, keys_file, mocked, monkeypatch, path, body, headers, cap
):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    app = app_with(
        tmp_path,
        keys_file({"name": "alice", "key": ALICE, "tokens_per_minute": 10}),
        RESERVED_OUTPUT_TOKENS=5000,
    )
    store = state_of(app).store
    held = []
    admit = store.admit

    def watch(client, limits, now, **kwargs):
        if (kwargs.get("amounts") or {}).get("tokens"):
            held.append(kwargs["amounts"]["tokens"])
        return admit(client, limits, now, **kwargs)

    monkeypatch.setattr(store, "admit", watch)
    auth = {
        "gemini": {"x-goog-api-key": ALICE},
        "openai": {"Authorization": f"Bearer {ALICE}"},
        "anthropic": {"x-api-key": ALICE, "anthropic-version": "2023-06-01"},
    }[headers]
    r = app.test_client().post(
        path, data=json.dumps(body), headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert held == [len(json.dumps(body)) // 4 + (5000 if cap is None else cap)]
    # Once it ended, the estimate was given back and Gemini's count charged: 46 of 10, so the next waits.
    r = app.test_client().post(
        path, data=json.dumps(body), headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 429  # 46 of 10: the limit is spent, the estimate given back
