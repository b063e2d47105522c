import pytest

from app.errors import AuthenticationFailed
from app.http.auth import ClientKeys, presented_key


@pytest.mark.parametrize(
    "headers, args",
    [
        ({"Authorization": "Bearer k2"}, {}),
        ({"authorization": "bearer k2"}, {}),
        ({"x-api-key": "k2"}, {}),
        ({"x-goog-api-key": "k2"}, {}),
        ({}, {"key": "k2"}),
    ],
)
def test_key_sources(headers, args):
    from werkzeug.datastructures import Headers

    assert ClientKeys(("k1", "k2")).identify(presented_key(Headers(headers), args)) == "key-2"


@pytest.mark.parametrize("presented", [None, "", "k3", "k", "k1 ", "K1"])
def test_wrong_or_missing_key(presented):
    with pytest.raises(AuthenticationFailed):
        ClientKeys(("k1", "k2")).identify(presented)


def test_every_dialect_answers_401_in_its_shape(client):
    r = client.post("/v1beta/models/m:generateContent", json={})
    assert r.status_code == 401 and r.json["error"]["status"] == "UNAUTHENTICATED"
    r = client.post("/v1/chat/completions", json={}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json["error"]["code"] == "invalid_api_key"
    r = client.post("/v1/messages", json={}, headers={"x-api-key": "nope", "anthropic-version": "2023-06-01"})
    assert r.status_code == 401 and r.json["type"] == "error"
    assert r.json["error"]["type"] == "authentication_error" and r.json["request_id"].startswith("req_")


def test_healthz_needs_no_key(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json["upstream_keys"]["total"] == 3
