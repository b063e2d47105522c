"""Redis specifics: a Redis that is away answers 503 in the caller's dialect, and comes back."""

import logging

from app import create_app
from app.state import state_of
from tests.conftest import AUTH, BASE, fixture_bytes, free_port, make_env

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


def test_redis_away_is_a_503_in_each_dialect_and_the_record_is_logged(tmp_path, caplog, mocked):
    app = create_app(make_env(DATA_DIR=str(tmp_path), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    client = app.test_client()  # the gateway starts anyway, and says why requests fail
    with caplog.at_level(logging.ERROR):
        r = client.post(GEN, json=BODY, headers=AUTH)
    assert r.status_code == 503 and r.json["error"]["status"] == "UNAVAILABLE"
    assert "state store is unavailable" in r.json["error"]["message"] and "127.0.0.1" not in r.text
    r = client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
        headers=AUTH,
    )
    assert r.status_code == 503 and r.json["error"]["type"] == "server_error"
    assert client.get("/healthz").status_code == 503
    assert "Connection refused" in caplog.text  # the operator's log has the detail
    assert "usage record not stored" in caplog.text and '"status":503' in caplog.text
    assert len(mocked.calls) == 0


def test_requests_work_again_once_redis_is_back(tmp_path, redis_server, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    app = create_app(make_env(DATA_DIR=str(tmp_path), REDIS_URL=redis_server.url, REDIS_PREFIX="back:"))
    client = app.test_client()
    store = state_of(app).store
    working_pool = store.r.connection_pool
    store.r.connection_pool = type(working_pool).from_url(f"redis://127.0.0.1:{free_port()}/0")
    assert client.post(GEN, json=BODY, headers=AUTH).status_code == 503
    store.r.connection_pool = working_pool
    assert client.post(GEN, json=BODY, headers=AUTH).status_code == 200
    # The 503's record went to the log, and is stored once Redis is back.
    assert sorted(r["status"] for r in store.usage(0, 2e9)) == [200, 503]


def test_tls_verification_can_be_turned_off_for_self_signed_redis():
    from app.store.redis import RedisStore

    relaxed = RedisStore("rediss://127.0.0.1:1/0", tls_verify=False)
    strict = RedisStore("rediss://127.0.0.1:1/0")
    assert relaxed.r.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"
    assert strict.r.connection_pool.connection_kwargs.get("ssl_cert_reqs", "required") == "required"


def test_an_older_key_state_entry_still_reads(redis_url):
    from app.store.redis import RedisStore
    from app.upstream.key_pool import KeyState

    store = RedisStore(redis_url, prefix="old:")
    store.r.hset("old:keys", "abc", b'[50.0, 0, 2, "HTTP 429"]')  # as the first version wrote it
    assert store.key_states() == {"abc": KeyState(cooldown_until=50.0, failures=2, last_error="HTTP 429")}
    store.update_key_state("abc", lambda s: s)
    assert store.key_states()["abc"].probe_until == 0.0
    store.close()
