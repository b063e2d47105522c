import pytest
import requests

from app.config import Config
from app.errors import (
    RateLimited,
    UpstreamError,
    UpstreamNotConfigured,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from app.upstream.client import UpstreamClient
from app.upstream.key_pool import KeyPool
from tests.conftest import BASE, UPSTREAM_KEYS, fixture_bytes, make_env

URL = BASE + "/v1beta/models/gemini-2.5-flash:generateContent"
OK = fixture_bytes("gemini/generate_text.json")


def client(tmp_path, **env):
    config = Config.from_env(make_env(DATA_DIR=str(tmp_path), **env))
    pool = KeyPool(config.gemini_api_keys, default_cooldown=config.key_cooldown)
    return UpstreamClient(config, pool)


def sent_keys(mocked):
    return [c.request.headers["x-goog-api-key"] for c in mocked.calls]


def err(name, status):
    return dict(body=fixture_bytes(f"gemini/{name}"), status=status, content_type="application/json")


def test_key_travels_only_in_the_header(tmp_path, mocked):
    mocked.post(URL, body=OK)
    up = client(tmp_path)
    response = up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
    assert response.response.status_code == 200 and response.key.label == "key-1"
    sent = mocked.calls[0].request
    assert sent.headers["x-goog-api-key"] == UPSTREAM_KEYS[0]
    assert all(k not in sent.url for k in UPSTREAM_KEYS) and "key=" not in sent.url


def test_429_moves_to_the_next_key_at_once_and_cools_the_first(tmp_path, mocked):
    mocked.post(URL, **err("error_429_resource_exhausted.json", 429))
    mocked.post(URL, body=OK)
    up = client(tmp_path)
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    assert up.request("POST", path, body=b"{}").response.status_code == 200
    assert sent_keys(mocked) == list(UPSTREAM_KEYS[:2])
    key = up.pool.snapshot()[0]
    assert key["status"] == "healthy"  # as a whole: the quota was the model's
    (state,) = key["models"]
    assert state["model"] == "gemini-2.5-flash" and state["status"] == "cooling"
    assert (
        state["last_error"]
        == "HTTP 429 RESOURCE_EXHAUSTED GenerateContentInputTokensPerModelPerMinute-FreeTier"
    )
    # The cooled key is skipped by the following calls.
    for _ in range(4):
        up.request("POST", path, body=b"{}")
    assert UPSTREAM_KEYS[0] not in sent_keys(mocked)[2:]


def test_every_key_429_answers_429_with_retry_after_and_gemini_details(tmp_path, mocked):
    mocked.post(URL, **err("error_429_resource_exhausted.json", 429))
    up = client(tmp_path)
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
    assert caught.value.status == 429 and 25 <= caught.value.retry_after <= 26
    assert caught.value.upstream_status == "RESOURCE_EXHAUSTED"
    assert sorted(sent_keys(mocked)) == sorted(UPSTREAM_KEYS)
    # Once all are cooling, nothing is sent upstream at all.
    with pytest.raises(RateLimited):
        up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
    assert len(mocked.calls) == 3


def test_callers_errors_are_not_retried_and_do_not_penalise(tmp_path, mocked):
    mocked.post(URL, **err("error_400_invalid_argument.json", 400))
    up = client(tmp_path)
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
    assert caught.value.status == 400 and len(mocked.calls) == 1
    assert up.pool.snapshot()[0]["status"] == "healthy"


def test_invalid_key_is_disabled_and_the_next_serves(tmp_path, mocked):
    mocked.post(URL, **err("error_400_api_key_invalid_with_debuginfo.json", 400))
    mocked.post(URL, body=OK)
    up = client(tmp_path)
    assert (
        up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}").response.status_code
        == 200
    )
    assert [k["status"] for k in up.pool.snapshot()] == ["disabled", "healthy", "healthy"]


def test_all_keys_invalid_is_a_503_that_says_what_to_fix(tmp_path, mocked):
    mocked.post(URL, **err("error_400_api_key_invalid.json", 400))
    up = client(tmp_path)
    with pytest.raises(UpstreamNotConfigured, match="GEMINI_API_KEYS"):
        up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")


def test_5xx_storm_retries_with_backoff_then_gives_up(tmp_path, mocked):
    mocked.post(URL, **err("error_503_unavailable.json", 503))
    up = client(tmp_path, UPSTREAM_RETRIES=2)
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
    assert caught.value.status == 503 and len(mocked.calls) == 3
    keys = sent_keys(mocked)
    assert keys[0] != keys[1] != keys[2]  # each retry goes to another key


def test_5xx_then_success(tmp_path, mocked):
    mocked.post(URL, **err("error_500_internal.json", 500))
    mocked.post(URL, body=OK)
    assert (
        client(tmp_path)
        .request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
        .response.ok
    )


@pytest.mark.parametrize(
    "exc, expected",
    [
        (requests.ConnectionError("refused"), UpstreamUnreachable),
        (requests.ConnectTimeout("slow"), UpstreamTimeout),
        (requests.ReadTimeout("silent"), UpstreamTimeout),
    ],
)
def test_network_failures_retry_then_map(tmp_path, mocked, exc, expected):
    mocked.post(URL, body=exc)
    up = client(tmp_path, UPSTREAM_RETRIES=1)
    with pytest.raises(expected):
        up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
    assert len(mocked.calls) == 2


def test_network_failure_then_success(tmp_path, mocked):
    mocked.post(URL, body=requests.ConnectionError("reset"))
    mocked.post(URL, body=OK)
    assert (
        client(tmp_path)
        .request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
        .response.ok
    )


def test_keys_are_scrubbed_from_upstream_errors(tmp_path, mocked):
    leaked = (
        f'{{"error": {{"code": 400, "message": "bad key {UPSTREAM_KEYS[0]} '
        'and AIzaSyOTHERkey-000000000000000000000000",'
        ' "status": "INVALID_ARGUMENT"}}'
    )
    mocked.post(URL, body=leaked, status=400)
    with pytest.raises(UpstreamError) as caught:
        client(tmp_path).request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
    text = caught.value.raw.decode() + caught.value.message
    assert "AIza" not in text and "[redacted]" in text


def test_stream_reopens_when_the_connection_breaks_before_the_first_event(tmp_path, mocked):
    stream_url = BASE + "/v1beta/models/m:streamGenerateContent"
    mocked.post(stream_url, body=requests.ConnectionError("reset"))
    mocked.post(stream_url, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    stream = client(tmp_path).open_stream("/v1beta/models/m:streamGenerateContent", b"{}", {"alt": "sse"})
    assert len(list(stream.events())) == 4


def test_a_redirect_is_not_followed_and_the_key_never_leaves(tmp_path, mocked):
    mocked.post(URL, status=307, headers={"Location": "http://elsewhere.test/steal"})
    up = client(tmp_path, UPSTREAM_RETRIES=1)
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
    assert caught.value.status == 502
    assert all(c.request.url.startswith(BASE) for c in mocked.calls) and len(mocked.calls) == 2


def test_upstream_cookies_are_not_kept(tmp_path, mocked):
    mocked.post(URL, body=OK, headers={"Set-Cookie": "tracking=1; Path=/"})
    up = client(tmp_path)
    for _ in range(2):
        up.request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", body=b"{}")
    assert "Cookie" not in mocked.calls[1].request.headers


# -- the pool under the policy: no client's request takes keys away from the others -------------

PRO_URL = BASE + "/v1beta/models/gemini-2.5-pro:generateContent"
FLASH_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
PRO_PATH = "/v1beta/models/gemini-2.5-pro:generateContent"


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self):
        return self.now


def pool_client(tmp_path, clock=None, context=None, **env):
    config = Config.from_env(make_env(DATA_DIR=str(tmp_path), **env))
    pool = KeyPool(config.gemini_api_keys, default_cooldown=config.key_cooldown, clock=clock or Clock(1e9))
    return UpstreamClient(config, pool, context=context or (lambda: (None, None)))


def all_healthy(up):
    return all(k["status"] == "healthy" and not k["models"] for k in up.pool.snapshot())


def test_a_403_on_a_file_is_tried_once_elsewhere_then_answered_and_rests_nothing(tmp_path, mocked):
    mocked.post(URL, **err("error_403_file_not_owned.json", 403))
    up = pool_client(tmp_path)
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", FLASH_PATH, body=b"{}")
    assert caught.value.status == 403 and len(mocked.calls) == 2
    assert len(set(sent_keys(mocked))) == 2 and all_healthy(up)


def test_a_403_on_a_file_another_key_can_read_is_served(tmp_path, mocked):
    mocked.post(URL, **err("error_403_file_not_owned.json", 403))
    mocked.post(URL, body=OK)
    assert pool_client(tmp_path).request("POST", FLASH_PATH, body=b"{}").key.label == "key-2"


def test_a_generic_403_rests_only_that_pair_and_the_next_call_goes_elsewhere(tmp_path, mocked):
    mocked.post(PRO_URL, **err("error_403_generic_model.json", 403), match=[key_is(0)])
    mocked.post(PRO_URL, body=OK, match=[key_is(1)])
    mocked.post(URL, body=OK, match=[key_is(0)])
    up = pool_client(tmp_path)
    assert up.request("POST", PRO_PATH, body=b"{}").key.label == "key-2"
    (state,) = up.pool.snapshot()[0]["models"]
    assert (state["model"], state["status"]) == ("gemini-2.5-pro", "denied")
    assert up.request("POST", PRO_PATH, body=b"{}").key.label == "key-2"  # key-1 skipped for pro
    assert up.request("POST", FLASH_PATH, body=b"{}").key.label == "key-1"  # and serves flash
    assert up.pool.snapshot()[0]["status"] == "healthy"


def test_a_model_scoped_429_on_every_key_leaves_other_models_served(tmp_path, mocked):
    mocked.post(URL, **err("error_429_resource_exhausted.json", 429))
    mocked.post(PRO_URL, body=OK)
    up = pool_client(tmp_path)
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", FLASH_PATH, body=b"{}")
    assert caught.value.status == 429 and len(mocked.calls) == 3
    for _ in range(3):
        assert up.request("POST", PRO_PATH, body=b"{}").response.ok
    with pytest.raises(RateLimited, match="rate limited for gemini-2.5-flash"):
        up.request("POST", FLASH_PATH, body=b"{}")  # answered by the gateway: nothing sent
    assert len(mocked.calls) == 6


def test_a_daily_quota_rests_the_pair_until_pacific_midnight(tmp_path, mocked):
    from datetime import datetime

    from app.upstream.retry import PACIFIC

    clock = Clock(datetime(2026, 7, 1, 18, 0, tzinfo=PACIFIC).timestamp())  # 18:00 PDT
    mocked.post(URL, **err("error_429_daily_minute_and_tokens.json", 429))
    up = pool_client(tmp_path, clock)
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", FLASH_PATH, body=b"{}")
    assert caught.value.retry_after == 6 * 3600  # to midnight, not RetryInfo's 47 s
    clock.now += 3600
    with pytest.raises(RateLimited, match="daily quota for gemini-2.5-flash") as later:
        up.request("POST", FLASH_PATH, body=b"{}")
    assert later.value.retry_after == 5 * 3600 and len(mocked.calls) == 3
    clock.now += 5 * 3600  # midnight: back, probed by this call
    mocked.post(URL, body=OK)
    assert up.request("POST", FLASH_PATH, body=b"{}").response.ok


def test_a_zero_limit_rests_the_pair_for_the_recheck_interval(tmp_path, mocked):
    mocked.post(URL, **err("error_429_free_tier_limit_zero.json", 429), match=[key_is(0)])
    mocked.post(URL, body=OK, match=[key_is(1)])
    up = pool_client(tmp_path, KEY_RECHECK_INTERVAL=900)
    assert up.request("POST", FLASH_PATH, body=b"{}").key.label == "key-2"
    (state,) = up.pool.snapshot()[0]["models"]
    assert state["status"] == "disabled" and state["disabled_until"] == up.pool.clock() + 900


def test_a_prompt_over_the_token_limit_is_the_callers_and_cools_nothing(tmp_path, mocked):
    mocked.post(URL, **err("error_429_input_tokens_per_minute.json", 429))
    mocked.post(URL, body=OK)
    up = pool_client(tmp_path)
    huge = b'{"contents":[{"parts":[{"text":"' + b"word " * 200_000 + b'"}]}]}'  # ~250k tokens
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", FLASH_PATH, body=huge)
    assert caught.value.status == 429 and len(mocked.calls) == 1 and all_healthy(up)
    assert up.request("POST", FLASH_PATH, body=b'{"contents":[]}').response.ok  # served at once


def test_scrubbed_key_in_a_consumer_suspended_message(tmp_path, mocked):
    body = (
        '{"error": {"code": 403, "message": "Permission denied: Consumer \'api_key:KEY\' has been suspended.",'
        ' "status": "PERMISSION_DENIED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",'
        ' "reason": "CONSUMER_SUSPENDED"}]}}'.replace("KEY", UPSTREAM_KEYS[0])
    )
    mocked.post(URL, body=body, status=403, content_type="application/json")
    up = pool_client(tmp_path)
    with pytest.raises(UpstreamNotConfigured):
        up.request("POST", FLASH_PATH, body=b"{}")
    states = up.pool.snapshot()
    assert [k["status"] for k in states] == ["disabled"] * 3
    assert all(k["last_error"] == "HTTP 403 CONSUMER_SUSPENDED" for k in states)


# -- fallback chains ------------------------------------------------------------------------------

LITE_URL = BASE + "/v1beta/models/gemini-2.5-flash-lite:generateContent"
CHAIN = {"MODEL_FALLBACKS": "gemini-2.5-pro>gemini-2.5-flash>gemini-2.5-flash-lite"}


def test_a_fallback_model_serves_when_every_key_rests_for_the_first(tmp_path, mocked):
    mocked.post(PRO_URL, **err("error_429_resource_exhausted.json", 429))
    mocked.post(URL, **err("error_429_resource_exhausted_bare.json", 429))
    mocked.post(LITE_URL, body=OK)
    up = pool_client(tmp_path, **CHAIN)
    served = up.request("POST", PRO_PATH, body=b"{}")
    assert served.model == "gemini-2.5-flash-lite" and served.path.endswith("flash-lite:generateContent")
    assert len(mocked.calls) == 7 == served.attempts  # three keys for each model, then the one that served
    again = up.request("POST", PRO_PATH, body=b"{}")  # both rest: straight to the third
    assert again.model == "gemini-2.5-flash-lite" and len(mocked.calls) == 8


def test_without_a_chain_or_on_other_calls_there_is_no_fallback(tmp_path, mocked):
    mocked.post(PRO_URL, **err("error_429_resource_exhausted_bare.json", 429))
    with pytest.raises(UpstreamError):
        pool_client(tmp_path).request("POST", PRO_PATH, body=b"{}")
    embed = BASE + "/v1beta/models/gemini-2.5-pro:batchEmbedContents"
    mocked.post(embed, **err("error_429_resource_exhausted_bare.json", 429))
    up = pool_client(tmp_path, **CHAIN)
    with pytest.raises(UpstreamError):
        up.request("POST", "/v1beta/models/gemini-2.5-pro:batchEmbedContents", body=b"{}")
    assert all("flash" not in c.request.url for c in mocked.calls)


def test_a_fallback_model_that_refuses_the_request_answers_the_first_models_429(tmp_path, mocked):
    mocked.post(PRO_URL, **err("error_429_resource_exhausted_bare.json", 429))
    mocked.post(URL, **err("error_400_invalid_argument.json", 400))
    up = pool_client(tmp_path, MODEL_FALLBACKS="gemini-2.5-pro>gemini-2.5-flash")
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", PRO_PATH, body=b"{}")
    assert caught.value.status == 429 and caught.value.upstream_status == "RESOURCE_EXHAUSTED"


def test_a_call_naming_cached_content_does_not_fall_back(tmp_path, mocked):
    mocked.post(PRO_URL, **err("error_429_resource_exhausted_bare.json", 429))
    up = pool_client(tmp_path, **CHAIN)
    with pytest.raises(UpstreamError):
        up.request("POST", PRO_PATH, body=b'{"cachedContent": "cachedContents/abc", "contents": []}')
    assert all("gemini-2.5-pro" in c.request.url for c in mocked.calls)


def test_a_stream_reopened_before_its_first_event_stays_on_the_model_that_answered(tmp_path, mocked):
    pro_stream = BASE + "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    flash_stream = BASE + "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    mocked.post(pro_stream, **err("error_429_resource_exhausted_bare.json", 429))
    mocked.post(flash_stream, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    up = pool_client(tmp_path, MODEL_FALLBACKS="gemini-2.5-pro>gemini-2.5-flash")
    stream = up.open_stream("/v1beta/models/gemini-2.5-pro:streamGenerateContent", b"{}", {"alt": "sse"})
    assert stream.model == "gemini-2.5-flash" and stream.path.endswith("flash:streamGenerateContent")
    reopened = []
    real_request = up.request

    def request(method, path, **kwargs):
        reopened.append((path, kwargs["fallback"]))
        return real_request(method, path, **kwargs)

    class Broken:
        raw = type(
            "Raw", (), {"chunked": False, "read1": lambda self, n: (_ for _ in ()).throw(OSError("reset"))}
        )()

        def close(self):
            pass

    up.request = request
    stream.response = Broken()
    assert len(list(stream.events())) == 4
    assert reopened == [("/v1beta/models/gemini-2.5-flash:streamGenerateContent", False)]


# -- affinity -----------------------------------------------------------------------------------


def test_a_call_naming_a_recorded_file_goes_to_the_key_that_holds_it(tmp_path, mocked):
    mocked.post(URL, body=OK)
    up = pool_client(tmp_path, context=lambda: ("alice", None))
    up.pool.record_owner("files/abc-123", up.pool.keys[2], "alice", ttl=3600)
    body = b'{"contents": [{"parts": [{"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123"}}]}]}'
    for _ in range(3):
        assert up.request("POST", FLASH_PATH, body=body).key.label == "key-3"
    assert up.request("POST", FLASH_PATH, body=b"{}").key.label == "key-1"  # others rotate


def test_a_session_hint_keeps_a_conversation_on_one_key(tmp_path, mocked):
    mocked.post(URL, body=OK)
    hint = {"value": "conversation-7"}
    up = pool_client(tmp_path, context=lambda: ("alice", hint["value"]))
    used = {up.request("POST", FLASH_PATH, body=b"{}").key.label for _ in range(4)}
    assert len(used) == 1
    hint["value"] = None
    assert len({up.request("POST", FLASH_PATH, body=b"{}").key.label for _ in range(3)}) == 3


def key_is(i):
    from responses import matchers

    return matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[i]})


def test_a_call_waits_briefly_for_another_requests_probe_then_is_served(tmp_path, mocked):
    import threading

    from app.upstream.key_pool import Route

    mocked.post(URL, body=OK)
    clock = Clock(1e9)
    up = pool_client(tmp_path, clock, GEMINI_API_KEYS=UPSTREAM_KEYS[0])
    key = up.pool.keys[0]
    up.pool.cool_down(key, 30, "HTTP 429", model="gemini-2.5-flash")
    clock.now += 31
    probe = Route()
    assert up.pool.choose("gemini-2.5-flash", route=probe) is key  # another request's probe
    threading.Timer(0.2, lambda: up.pool.succeeded(key, "gemini-2.5-flash", probe)).start()
    assert up.request("POST", FLASH_PATH, body=b"{}").response.ok
    assert len(mocked.calls) == 1
