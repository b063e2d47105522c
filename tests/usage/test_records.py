"""What reaches the durable usage store: requests with a client, named by their route; the rest are
counted in metrics and the request log only."""

from __future__ import annotations

import json

from app import create_app
from app.state import state_of
from tests.conftest import AUTH, BASE, fixture_bytes, make_env

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


def test_requests_without_a_client_are_counted_but_never_stored(tmp_path, mocked):
    log = tmp_path / "requests.log"
    app = create_app(make_env(DATA_DIR=str(tmp_path / "data"), REQUEST_LOG=str(log)))
    client = app.test_client()
    long_path = "/v1beta/models/" + "x" * 4000 + ":generateContent"
    for _ in range(20):
        assert client.post(GEN, json=BODY).status_code == 401  # no key
        assert client.post(long_path, json=BODY, headers={"x-goog-api-key": "wrong"}).status_code == 401
        assert client.post("/v1/chat/completions?key=wrong", json={}).status_code == 401
    assert list(state_of(app).store.usage(0, 2e9)) == []
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 60 and {line["status"] for line in lines} == {401}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert (
        'gemgate_requests_total{dialect="gemini",endpoint="/v1beta/models/{model}:generateContent"' in metrics
    )
    assert 'status="401"} 40.0' in metrics


def test_usage_rows_name_the_route_never_the_raw_path(tmp_path, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    app = create_app(make_env(DATA_DIR=str(tmp_path / "data"), REQUEST_LOG="off"))
    client = app.test_client()
    assert client.post(GEN + "?key=ignored", json=BODY, headers=AUTH).status_code == 200
    odd = "/v1beta/models/" + "y" * 300 + ":frobnicate"
    assert client.post(odd, json=BODY, headers=AUTH).status_code == 404
    assert client.post("/v1/nowhere/" + "z" * 300, json=BODY, headers=AUTH).status_code == 404
    rows = list(state_of(app).store.usage(0, 2e9))
    assert [row["endpoint"] for row in rows] == [
        "/v1beta/models/{model}:generateContent",
        "/v1beta/models/{model}:unknown",
        "unmatched",
    ]
