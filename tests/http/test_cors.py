from app import create_app
from tests.conftest import make_env

CHAT = "/v1/chat/completions"


def test_preflight_is_answered_without_a_key(client):
    r = client.options(
        CHAT,
        headers={
            "Origin": "https://chat.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Headers"] == "authorization, content-type"


def test_responses_and_errors_carry_cors_headers(client):
    r = client.get("/healthz", headers={"Origin": "https://chat.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = client.post("/v1beta/models/m:generateContent", json={}, headers={"Origin": "https://chat.example"})
    assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert "x-request-id" in r.headers["Access-Control-Expose-Headers"]


def test_admin_gets_no_cors(client):
    r = client.get("/admin", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    r = client.options(
        "/admin", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in r.headers


def test_origin_list_and_off(tmp_path):
    listed = create_app(make_env(DATA_DIR=str(tmp_path), CORS_ORIGINS="https://a.example")).test_client()
    assert (
        listed.get("/healthz", headers={"Origin": "https://a.example"}).headers["Access-Control-Allow-Origin"]
        == "https://a.example"
    )
    assert (
        "Access-Control-Allow-Origin"
        not in listed.get("/healthz", headers={"Origin": "https://b.example"}).headers
    )
    off = create_app(make_env(DATA_DIR=str(tmp_path), CORS_ORIGINS="none")).test_client()
    assert (
        "Access-Control-Allow-Origin"
        not in off.get("/healthz", headers={"Origin": "https://a.example"}).headers
    )
    r = off.options(CHAT, headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 401  # without CORS a preflight is just an unauthenticated request


def test_a_preflight_for_deleting_a_stored_response_is_allowed(client):
    r = client.options(
        "/v1/responses/resp_1",
        headers={"Origin": "https://chat.example.com", "Access-Control-Request-Method": "DELETE"},
    )
    assert r.status_code == 204 and "DELETE" in r.headers["Access-Control-Allow-Methods"]
