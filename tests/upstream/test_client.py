import pytest
import requests

from app.config import Config
from app.errors import RateLimited, UpstreamError, UpstreamNotConfigured, UpstreamTimeout, UpstreamUnavailable
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
    assert state["last_error"] == "HTTP 429 RESOURCE_EXHAUSTED GenerateContentInputTokensPerModelPerMinute-FreeTier"
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
        (requests.ConnectionError("refused"), UpstreamUnavailable),
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
