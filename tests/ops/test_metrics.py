"""/metrics and the overhead header: unit tests through the Flask test client, and real gunicorn workers."""

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families
from responses import matchers

from app import create_app
from tests.conftest import (
    AUTH,
    BASE,
    CLIENT_KEY,
    SEED_KEY,
    UPSTREAM_KEYS,
    fixture_bytes,
    fixture_json,
    make_env,
)

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
GEN_ROUTE = "/v1beta/models/{model}:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
SECRETS = (*UPSTREAM_KEYS, CLIENT_KEY, SEED_KEY)


def samples(text: str) -> dict:
    """{(sample name, frozenset of labels): value} from Prometheus text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(parsed: dict, name: str, **labels) -> float:
    """The sum of every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in parsed.items() if n == name and want <= ls)


def scrape(client, **headers) -> dict:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.data
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(r.get_data(as_text=True))


def test_counters_histograms_and_tokens_move_after_traffic(client, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    before = scrape(client)
    for _ in range(3):
        assert client.post(GEN, json=BODY, headers=AUTH).status_code == 200
    assert client.post(GEN, data="{", headers={**AUTH, "Content-Type": "application/json"}).status_code == 400
    after = scrape(client)
    labels = {"dialect": "gemini", "endpoint": GEN_ROUTE, "model": "gemini-2.5-flash"}
    assert value(after, "gemgate_requests_total", status="200", **labels) == 3
    assert value(before, "gemgate_requests_total") == 0
    # The model comes from the path, so the malformed body is counted under it, with its status.
    assert value(after, "gemgate_requests_total", status="400", **labels) == 1
    assert value(after, "gemgate_request_duration_seconds_count", dialect="gemini", endpoint=GEN_ROUTE) == 4
    assert value(after, "gemgate_first_byte_seconds_count", endpoint=GEN_ROUTE) == 4
    assert value(after, "gemgate_overhead_seconds_count", endpoint=GEN_ROUTE) == 4
    usage = fixture_json("gemini/generate_text.json")["usageMetadata"]
    assert (
        value(after, "gemgate_tokens_total", client="key-1", type="prompt") == 3 * usage["promptTokenCount"]
    )
    assert value(after, "gemgate_upstream_attempts_total", outcome="ok") == 3


def test_upstream_attempts_are_counted_by_outcome(client, mocked):
    limited = fixture_json("gemini/error_429_resource_exhausted.json")
    mocked.post(
        BASE + GEN,
        json=limited,
        status=429,
        match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[0]})],
    )
    mocked.post(
        BASE + GEN,
        json=fixture_json("gemini/error_500_internal.json"),
        status=500,
        match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[1]})],
    )
    mocked.post(
        BASE + GEN,
        body=fixture_bytes("gemini/generate_text.json"),
        match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[2]})],
    )
    assert client.post(GEN, json=BODY, headers=AUTH).status_code == 200
    mocked.post(
        BASE + "/v1beta/models/unknown-model:generateContent",
        json=fixture_json("gemini/error_404_model_not_found.json"),
        status=404,
    )
    assert (
        client.post("/v1beta/models/unknown-model:generateContent", json=BODY, headers=AUTH).status_code
        == 404
    )
    parsed = scrape(client)
    attempts = {
        outcome: value(parsed, "gemgate_upstream_attempts_total", outcome=outcome)
        for outcome in ("ok", "rate_limited", "server_error", "client_error", "key_invalid", "timeout")
    }
    assert attempts == {
        "ok": 1,
        "rate_limited": 1,
        "server_error": 1,
        "client_error": 1,
        "key_invalid": 0,
        "timeout": 0,
    }
    # A model Gemini has never served is folded, so clients cannot mint labels.
    assert value(parsed, "gemgate_requests_total", status="404", model="other") == 1
    assert not any("unknown-model" in str(labels) for _, labels in parsed)


def test_key_states_are_read_from_the_store_at_scrape_time(client, mocked):
    mocked.post(
        BASE + GEN,
        json=fixture_json("gemini/error_429_resource_exhausted.json"),
        status=429,
        match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[0]})],
    )
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    parsed = scrape(client)
    assert value(parsed, "gemgate_upstream_keys", state="healthy") == 3
    client.post(GEN, json=BODY, headers=AUTH)
    parsed = scrape(client)
    # A quota is per model: the key rests for that model only, and is healthy as a whole.
    assert value(parsed, "gemgate_upstream_keys", state="healthy") == 3
    assert value(parsed, "gemgate_upstream_key_state", key="key-1", state="healthy") == 1
    model = GEN.split("/")[-1].split(":")[0]
    assert value(parsed, "gemgate_upstream_model_keys", model=model, state="cooling") == 1
    assert value(parsed, "gemgate_upstream_model_keys", model=model, state="healthy") == 2
    assert value(parsed, "gemgate_upstream_model_keys", model=model, state="disabled") == 0


def test_route_labels_are_rules_not_paths(client, mocked):
    mocked.get(BASE + "/v1beta/models", body=fixture_bytes("gemini/models_list_page.json"))
    client.get("/v1/models", headers=AUTH)
    client.get("/v1/no/such/route", headers=AUTH)
    client.post("/v1beta/models/x:noSuchMethod", json=BODY, headers=AUTH)
    client.get("/v1/models/some/odd/name", headers={"Authorization": "Bearer wrong"})
    parsed = scrape(client)
    endpoints = {dict(labels).get("endpoint") for name, labels in parsed if name == "gemgate_requests_total"}
    assert endpoints == {"/v1/models", "unmatched", "/v1beta/models/{model}:unknown", "/v1/models/{model}"}


def test_metrics_token_guards_the_endpoint_when_set(tmp_path):
    client = create_app(make_env(DATA_DIR=str(tmp_path), METRICS_TOKEN="scrape-token-123")).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=AUTH).status_code == 401  # a client key is not the token
    r = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    assert r.status_code == 200 and b"gemgate_requests_total" in r.data
    assert "scrape-token-123" not in r.get_data(as_text=True)


def test_metrics_needs_no_client_key_and_shows_no_secret(tmp_path, mocked):
    env = make_env(
        DATA_DIR=str(tmp_path),
        ADMIN_PASSWORD="admin-pass-42",
        REDIS_PREFIX="gemgate:",
        HTTPS_PROXY="http://user:proxy-pass@proxy.test:3128",
    )
    client = create_app(env).test_client()
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    client.post(GEN, json=BODY, headers=AUTH)
    client.post(GEN, json=BODY, headers={"x-goog-api-key": SEED_KEY})
    r = client.get("/metrics")
    text = r.get_data(as_text=True)
    assert r.status_code == 200
    for secret in (*SECRETS, "admin-pass-42", "proxy-pass"):
        assert secret not in text
    assert 'client="key-1"' in text and 'client="key-2"' in text  # names only


def test_every_response_carries_request_id_and_overhead(client, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    mocked.post(
        BASE + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        body=fixture_bytes("gemini/stream_text.sse"),
        content_type="text/event-stream",
    )
    answers = [
        client.post(GEN, json=BODY, headers=AUTH),
        client.post(STREAM, json=BODY, headers=AUTH),
        client.post("/v1/chat/completions", json={"model": "gemini-2.5-flash"}, headers=AUTH),  # 400
        client.post(GEN, json=BODY),  # 401
        client.get("/nowhere", headers=AUTH),  # 404
        client.get("/healthz"),
        client.get("/metrics"),
        client.get("/openapi.json"),
        client.options(
            "/v1/chat/completions",
            headers={"Origin": "https://x.test", "Access-Control-Request-Method": "POST"},
        ),
    ]
    assert [r.status_code for r in answers] == [200, 200, 400, 401, 404, 200, 200, 200, 204]
    for r in answers:
        assert r.headers["x-request-id"].startswith("req_")
        overhead = float(r.headers["x-gemgate-overhead-ms"])
        assert 0 <= overhead < 5000
    answers[1].close()


def test_overhead_excludes_the_time_waiting_for_gemini(client, mocked):
    def slow(request):
        time.sleep(0.3)
        return 200, {}, fixture_bytes("gemini/generate_text.json")

    mocked.add_callback("POST", BASE + GEN, callback=slow)
    client.post(GEN, json=BODY, headers=AUTH)  # warm: the first request builds caches
    started = time.perf_counter()
    r = client.post(GEN, json=BODY, headers=AUTH)
    elapsed = (time.perf_counter() - started) * 1000
    overhead = float(r.headers["x-gemgate-overhead-ms"])
    assert elapsed >= 300
    assert overhead < 100, overhead  # the 300 ms upstream wait is not the gateway's


# -- real gunicorn workers ---------------------------------------------------------------------


def test_workers_share_one_view_of_the_metrics(start_gateway, upstream, tmp_path):
    metrics_dir = tmp_path / "metrics"
    gateway = start_gateway(WEB_CONCURRENCY=2, PROMETHEUS_MULTIPROC_DIR=metrics_dir)

    def post(_):
        return requests.post(gateway.url(GEN), json=BODY, headers=AUTH, timeout=10).status_code

    for _ in range(5):  # until both workers have answered some (a gevent worker can take a burst alone)
        with ThreadPoolExecutor(12) as pool:
            assert set(pool.map(post, range(24))) == {200}
        pids = {name.rsplit("_", 1)[1] for name in os.listdir(metrics_dir) if name.startswith("counter_")}
        if len(pids) >= 2:
            break
    assert len(pids) >= 2, os.listdir(metrics_dir)
    served = value(
        samples(requests.get(gateway.url("/metrics"), timeout=5).text),
        "gemgate_requests_total",
        endpoint=GEN_ROUTE,
        status="200",
    )
    assert served % 24 == 0 and served >= 24
    for _ in range(6):  # whichever worker answers the scrape, it sums every worker's counts
        with requests.Session() as fresh:
            parsed = samples(fresh.get(gateway.url("/metrics"), timeout=5).text)
        assert value(parsed, "gemgate_requests_total", endpoint=GEN_ROUTE, status="200") == served
    text = requests.get(gateway.url("/metrics"), timeout=5).text
    for secret in SECRETS:
        assert secret not in text


def test_active_streams_and_stream_overhead_with_a_real_server(start_gateway, upstream):
    gateway = start_gateway()
    events = fixture_json("gemini/generate_text.json"), fixture_json("gemini/generate_text.json")
    upstream.script(
        {"match": ":streamGenerateContent", "events": list(events), "interval": 1.0, "delay": 0.4}
    )
    opened = threading.Event()
    seen = {}

    def stream():
        with requests.post(gateway.url(STREAM), json=BODY, headers=AUTH, stream=True, timeout=10) as r:
            seen["overhead"] = float(r.headers["x-gemgate-overhead-ms"])
            seen["request_id"] = r.headers["x-request-id"]
            opened.set()
            seen["body"] = r.content

    thread = threading.Thread(target=stream)
    thread.start()
    assert opened.wait(10)
    during = samples(requests.get(gateway.url("/metrics"), timeout=5).text)
    thread.join(10)
    time.sleep(0.2)
    after = samples(requests.get(gateway.url("/metrics"), timeout=5).text)
    assert value(during, "gemgate_active_streams") == 1
    assert value(after, "gemgate_active_streams") == 0
    assert seen["overhead"] < 200, seen  # the 400 ms Gemini took to answer is excluded
    assert seen["body"].count(b"data: ") == 2
    stream_route = "/v1beta/models/{model}:streamGenerateContent"
    assert value(after, "gemgate_requests_total", endpoint=stream_route, status="200") == 1
    first_byte = value(after, "gemgate_first_byte_seconds_sum", endpoint=stream_route)
    total = value(after, "gemgate_request_duration_seconds_sum", endpoint=stream_route)
    assert 0.3 < first_byte < total and total >= 1.3  # the stream lasted past its first event


def test_request_log_lines_from_a_real_server(start_gateway, upstream, tmp_path):
    log = tmp_path / "requests.log"
    gateway = start_gateway(REQUEST_LOG=log)
    r = requests.post(gateway.url(GEN), json=BODY, headers={"x-goog-api-key": CLIENT_KEY}, timeout=10)
    requests.get(gateway.url("/healthz"), timeout=5)
    time.sleep(0.2)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    api = next(line for line in lines if line["request_id"] == r.headers["x-request-id"])
    assert api["client"] == "key-1" and api["model"] == "gemini-2.5-flash" and api["status"] == 200
    assert api["route"] == GEN_ROUTE and api["key_label"].startswith("key-") and api["attempts"] == 1
    assert api["prompt_tokens"] > 0 and api["total_ms"] >= api["overhead_ms"] >= 0
    assert any(line["path"] == "/healthz" for line in lines)
    text = log.read_text()
    for secret in SECRETS:
        assert secret not in text
