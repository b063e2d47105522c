"""The admin routes through the Flask test client: login, sessions, CSRF, key buttons, what is shown."""

import io
import json
import os
import re
import stat
import time
from http.cookies import SimpleCookie

import pytest
from responses import matchers

from app import create_app
from app.admin import data as admin_data
from app.config import ADMIN_PASSWORD_FILE
from app.config.runtime import REFRESH
from app.config.settings import RUNTIME_SETTINGS
from app.state import state_of
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

PASSWORD = "correct horse battery"
GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


@pytest.fixture
def admin_env(tmp_path):
    return make_env(DATA_DIR=str(tmp_path / "data"), ADMIN_PASSWORD=PASSWORD, REQUEST_LOG="off")


@pytest.fixture
def admin_app(admin_env):
    return create_app(admin_env)


@pytest.fixture
def admin(admin_app):
    return admin_app.test_client()


def log_in(client, password=PASSWORD, **kwargs):
    return client.post("/admin/login", data={"password": password}, **kwargs)


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()


def set_cookie(response) -> SimpleCookie:
    cookie = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        cookie.load(header)
    return cookie


def admin_rules(app):
    return [
        r for r in app.url_map.iter_rules() if r.rule.startswith("/admin") and r.endpoint != "admin.static"
    ]


def test_admin_password_off_means_no_admin_at_all(tmp_path):
    client = create_app(make_env(DATA_DIR=str(tmp_path), ADMIN_PASSWORD="off")).test_client()
    for path in ("/admin", "/admin/", "/admin/login", "/admin/static/chart.js"):
        r = client.get(path)
        assert r.status_code == 404, path
    assert client.post("/admin/login", data={"password": "x"}).status_code == 404
    assert not (tmp_path / ADMIN_PASSWORD_FILE).exists()


def test_without_admin_password_a_generated_one_opens_the_page(tmp_path):
    app = create_app(make_env(DATA_DIR=str(tmp_path), REQUEST_LOG="off"))
    password = (tmp_path / ADMIN_PASSWORD_FILE).read_text().strip()
    assert len(password) >= 20 and stat.S_IMODE(os.stat(tmp_path / ADMIN_PASSWORD_FILE).st_mode) == 0o600
    assert state_of(app).config.generated_admin_password
    again = create_app(make_env(DATA_DIR=str(tmp_path), REQUEST_LOG="off"))  # another worker, a restart
    assert state_of(again).config.admin_password == password
    client = again.test_client()
    assert client.post("/admin/login", data={"password": "wrong password"}).status_code == 401
    assert client.post("/admin/login", data={"password": password}).status_code == 303
    assert client.get("/admin").status_code == 200


def test_without_a_session_every_admin_route_refuses_and_shows_nothing(admin_app, admin, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    r = admin.post(GEN, json=BODY, headers=AUTH)
    request_id = r.headers["x-request-id"]
    rules = admin_rules(admin_app)
    assert {r.endpoint for r in rules} == {
        "admin.login",
        "admin.logout",
        "admin.dashboard",
        "admin.key_action",
        "admin.change_settings",
        "admin.reset_settings",
        "admin.import_usage",
    }
    for rule in rules:
        if rule.endpoint == "admin.login":
            continue
        path = rule.rule.replace("<label>", "key-1").replace("<action>", "disable")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            answer = admin.open(path, method=method, data={"csrf": "guess"})
            assert answer.status_code in (303, 401), (method, path)
            if answer.status_code == 303:
                assert answer.headers["Location"].endswith("/admin/login")
            text = answer.get_data(as_text=True)
            for shown in (request_id, "gemini-2.5-flash", "healthy", "key-1", "GEMINI_API_KEYS"):
                assert shown not in text
    # A forged or tampered cookie is no session either.
    admin.set_cookie("gemgate_admin", "eyJjc3JmIjoieCJ9.forged.sig", path="/admin")
    assert admin.get("/admin").status_code == 303
    assert state_of(admin_app).store.key_states() == {}  # the disable above did nothing


def test_login_sets_a_strict_httponly_cookie_scoped_to_admin(admin):
    assert admin.get("/admin/login").status_code == 200
    r = log_in(admin, password="wrong password")
    assert r.status_code == 401 and b"Wrong password" in r.data
    assert "Set-Cookie" not in r.headers
    r = log_in(admin)
    assert r.status_code == 303 and r.headers["Location"].endswith("/admin")
    morsel = set_cookie(r)["gemgate_admin"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/admin"
    assert not morsel["secure"]  # plain http here
    page = admin.get("/admin")
    assert page.status_code == 200 and b"Upstream keys" in page.data
    assert admin.get("/admin/login").status_code == 303  # already logged in
    secure = log_in(admin, base_url="https://gateway.test")
    assert set_cookie(secure)["gemgate_admin"]["secure"]


def test_security_headers_and_no_cors_on_admin(admin):
    log_in(admin)
    r = admin.get("/admin", headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in r.headers
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Cache-Control"] == "no-store"
    assert "<script>" not in r.get_data(as_text=True)  # no inline script: the CSP would block it
    assert admin.get("/admin/static/chart.js").status_code == 200


def test_failed_logins_back_off_across_workers(admin_env):
    # Two apps on one DATA_DIR share the SQLite store, as two gunicorn workers do.
    first, second = create_app(admin_env).test_client(), create_app(admin_env).test_client()
    for i in range(5):
        assert log_in(first if i % 2 else second, password=f"guess {i}").status_code == 401
    r = log_in(first)  # even the right password waits now
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert b"Too many failed logins" in r.data
    assert log_in(second).status_code == 429
    other = log_in(first, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 303  # another address has its own count


def test_only_failures_are_counted(admin_env):
    client = create_app(admin_env).test_client()
    for _ in range(12):
        assert log_in(client).status_code == 303
    for i in range(4):
        assert log_in(client, password=f"typo {i}").status_code == 401
    assert log_in(client).status_code == 303  # a login forgets the failures before it
    for i in range(4):
        assert log_in(client, password=f"typo {i}").status_code == 401
    assert log_in(client).status_code == 303


def test_failures_are_counted_per_real_client_behind_a_trusted_proxy(admin_env):
    # Behind nginx every request comes from 127.0.0.1: the address nginx forwarded for is the client.
    client = create_app(admin_env).test_client()
    guesser = {"X-Forwarded-For": "203.0.113.5"}
    for i in range(5):
        assert log_in(client, password=f"guess {i}", headers=guesser).status_code == 401
    assert log_in(client, headers=guesser).status_code == 429
    assert log_in(client, headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 303  # the operator
    # A client cannot pick its own address: only the entry the trusted proxy added counts.
    spoofed = {"X-Forwarded-For": "198.51.100.7, 203.0.113.5"}
    assert log_in(client, headers=spoofed).status_code == 429
    # And an untrusted peer's header is not believed at all.
    outside = {"REMOTE_ADDR": "192.0.2.1"}
    for i in range(5):
        r = log_in(
            client, password=f"guess {i}", headers={"X-Forwarded-For": f"10.9.9.{i}"}, environ_base=outside
        )
        assert r.status_code == 401
    assert log_in(client, environ_base=outside).status_code == 429


def test_no_number_of_guessers_locks_the_operator_out(admin_env):
    client = create_app(admin_env).test_client()
    for n in range(60):  # many addresses, a few guesses each: there is no limit over all of them
        for i in range(3):
            log_in(client, password=f"guess {i}", environ_base={"REMOTE_ADDR": f"10.1.{n}.1"})
    assert log_in(client).status_code == 303


def test_key_buttons_need_the_csrf_token(admin_app, admin):
    log_in(admin)
    csrf = csrf_of(admin.get("/admin").data)
    store = state_of(admin_app).store
    assert admin.post("/admin/keys/key-2/disable").status_code == 403
    forged = ("y" if csrf[0] == "x" else "x") + csrf[1:]  # one character off
    assert admin.post("/admin/keys/key-2/disable", data={"csrf": forged}).status_code == 403
    assert store.key_states() == {}
    r = admin.post("/admin/keys/key-2/disable", data={"csrf": csrf})
    assert r.status_code == 303
    page = admin.get("/admin").get_data(as_text=True)
    assert "key-2: disabled until you enable it." in page
    assert re.search(r'data-key="key-2" data-status="disabled"', page)
    assert "disabled by the operator" in page
    assert "key-2: disabled" not in admin.get("/admin").get_data(as_text=True)  # a flash shows once
    assert admin.post("/admin/keys/key-2/enable", data={"csrf": csrf}).status_code == 303
    assert re.search(r'data-key="key-2" data-status="healthy"', admin.get("/admin").get_data(as_text=True))
    assert admin.post("/admin/keys/key-9/enable", data={"csrf": csrf}).status_code == 404
    assert admin.post("/admin/keys/key-1/explode", data={"csrf": csrf}).status_code == 404


def test_a_disabled_key_stays_out_of_rotation(admin, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    log_in(admin)
    csrf = csrf_of(admin.get("/admin").data)
    for label in ("key-1", "key-3"):
        admin.post(f"/admin/keys/{label}/disable", data={"csrf": csrf})
    for _ in range(4):
        assert admin.post(GEN, json=BODY, headers=AUTH).status_code == 200
    assert {call.request.headers["x-goog-api-key"] for call in mocked.calls} == {UPSTREAM_KEYS[1]}


def test_health_per_model_is_shown_under_each_key_and_enable_clears_it(admin, mocked):
    mocked.post(
        BASE + GEN,
        json=fixture_json("gemini/error_429_daily_minute_and_tokens.json"),
        status=429,
        match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[0]})],
    )
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    assert admin.post(GEN, json=BODY, headers=AUTH).status_code == 200
    log_in(admin)
    page = admin.get("/admin").get_data(as_text=True)
    assert 'data-key="key-1" data-status="healthy"' in page  # as a whole
    assert 'data-model="gemini-2.5-flash" data-status="cooling"' in page
    assert "GenerateRequestsPerDayPerProjectPerModel-FreeTier" in page and "until 20" in page
    assert 'action="/admin/keys/key-1/enable"' in page  # healthy as a whole, resting for a model
    csrf = csrf_of(page.encode())
    admin.post("/admin/keys/key-1/enable", data={"csrf": csrf})
    assert "data-model=" not in admin.get("/admin").get_data(as_text=True)


def test_recheck_makes_a_real_call_with_that_key_and_follows_the_answer(admin, mocked):
    models = BASE + "/v1beta/models"
    limited = fixture_json("gemini/error_429_resource_exhausted.json")
    mocked.get(
        models,
        json=limited,
        status=429,
        match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[0]})],
    )
    mocked.get(
        models,
        json=fixture_json("gemini/error_400_api_key_invalid.json"),
        status=400,
        match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[1]})],
    )
    mocked.get(
        models,
        body=fixture_bytes("gemini/models_list_page.json"),
        match=[matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[2]})],
    )
    log_in(admin)
    csrf = csrf_of(admin.get("/admin").data)
    admin.post("/admin/keys/key-3/disable", data={"csrf": csrf})
    for label in ("key-1", "key-2", "key-3"):
        assert admin.post(f"/admin/keys/{label}/recheck", data={"csrf": csrf}).status_code == 303
    page = admin.get("/admin").get_data(as_text=True)
    assert 'data-key="key-1" data-status="cooling"' in page
    assert 'data-key="key-2" data-status="disabled"' in page and "HTTP 400 API_KEY_INVALID" in page
    assert 'data-key="key-3" data-status="healthy"' in page  # a good answer brings a key back
    assert "key-3: healthy (HTTP 200" in page
    sent = [(c.request.headers["x-goog-api-key"], c.request.url) for c in mocked.calls]
    assert sent == [(key, models + "?pageSize=1") for key in UPSTREAM_KEYS]
    for key in UPSTREAM_KEYS:
        assert key not in page


def test_dashboard_shows_usage_requests_and_filters(admin, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    mocked.post(
        BASE + "/v1beta/models/gemini-2.5-pro:generateContent",
        body=fixture_bytes("gemini/generate_text.json"),
    )
    ids = [admin.post(GEN, json=BODY, headers=AUTH).headers["x-request-id"] for _ in range(2)]
    ids.append(
        admin.post(
            "/v1beta/models/gemini-2.5-pro:generateContent", json=BODY, headers={"x-goog-api-key": SEED_KEY}
        ).headers["x-request-id"]
    )
    failed = admin.post(GEN, json={"contents": []}, headers=AUTH).headers["x-request-id"]
    log_in(admin)
    page = admin.get("/admin").get_data(as_text=True)
    for request_id in (*ids, failed):
        assert f'data-request-id="{request_id}"' in page
    assert page.index(failed) < page.index(ids[0])  # newest first
    assert "<strong>4</strong> requests" in page
    only_pro = admin.get("/admin?model=gemini-2.5-pro").get_data(as_text=True)
    assert ids[2] in only_pro and ids[0] not in only_pro
    only_key2 = admin.get("/admin?client=key-2").get_data(as_text=True)
    assert ids[2] in only_key2 and ids[0] not in only_key2
    errors = admin.get("/admin?status=4xx&window=1h").get_data(as_text=True)
    assert failed in errors and ids[0] not in errors
    data = re.search(r'<script type="application/json" id="usage-data">(.*?)</script>', page, re.S).group(1)
    assert '"model_requests"' in data and '"gemini-2.5-pro"' in data


def test_settings_are_shown_with_every_secret_masked(tmp_path):
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  - name: alice\n    key: alice-secret-key-123\n    requests_per_minute: 5\n")
    env = make_env(
        DATA_DIR=str(tmp_path / "data"),
        ADMIN_PASSWORD=PASSWORD,
        CLIENT_KEYS_FILE=str(keys),
        REDIS_URL="",
        METRICS_TOKEN="metrics-token-xyz",
        HTTPS_PROXY="http://proxyuser:proxy-pw@proxy.test:3128",
        SESSION_SECRET="session-secret-0123456789",
        GEMINI_BASE_URL="http://gemini.test",
    )
    client = create_app(env).test_client()
    log_in(client)
    page = client.get("/admin").get_data(as_text=True)
    for secret in (
        *UPSTREAM_KEYS,
        CLIENT_KEY,
        SEED_KEY,
        PASSWORD,
        "alice-secret-key-123",
        "metrics-token-xyz",
        "proxy-pw",
        "proxyuser",
        "session-secret-0123456789",
    ):
        assert secret not in page, secret
    assert "http://****@proxy.test:3128" in page
    assert "alice (5 requests/min)" in page
    assert "3 keys: key-1, key-2, key-3" in page


def test_logout_ends_the_session(admin):
    log_in(admin)
    csrf = csrf_of(admin.get("/admin").data)
    assert admin.post("/admin/logout", data={"csrf": "nope"}).status_code == 403
    r = admin.post("/admin/logout", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["Location"].endswith("/admin/login")
    assert admin.get("/admin").status_code == 303


def test_logout_revokes_every_copy_of_the_cookie_on_every_worker(admin_env):
    browser = create_app(admin_env).test_client()
    log_in(browser)
    cookie = browser.get_cookie("gemgate_admin", path="/admin").value
    stolen = create_app(admin_env).test_client()  # another worker, with a copy of the cookie
    stolen.set_cookie("gemgate_admin", cookie, path="/admin")
    assert stolen.get("/admin").status_code == 200
    browser.post("/admin/logout", data={"csrf": csrf_of(browser.get("/admin").data)})
    assert stolen.get("/admin").status_code == 303
    assert stolen.post("/admin/keys/key-1/disable", data={"csrf": "x"}).status_code == 401


def test_changing_the_password_ends_every_session(admin_env):
    old = create_app(admin_env).test_client()
    log_in(old)
    cookie = old.get_cookie("gemgate_admin", path="/admin").value
    new = create_app({**admin_env, "ADMIN_PASSWORD": "another long password"}).test_client()
    new.set_cookie("gemgate_admin", cookie, path="/admin")
    assert new.get("/admin").status_code == 303
    same = create_app(admin_env).test_client()  # same password and DATA_DIR: the session holds
    same.set_cookie("gemgate_admin", cookie, path="/admin")
    assert same.get("/admin").status_code == 200


def test_a_short_admin_password_is_refused(tmp_path):
    from app.config import ConfigError

    with pytest.raises(ConfigError, match="ADMIN_PASSWORD must be at least 8 characters"):
        create_app(make_env(DATA_DIR=str(tmp_path), ADMIN_PASSWORD="short"))


# -- runtime settings and usage import -----------------------------------------------------------


def runtime_form(page: str) -> dict:
    """The runtime settings form as the browser would submit it unchanged."""
    form = {"csrf": csrf_of(page.encode())}
    for name, value in re.findall(r'data-setting="([A-Z_]+)" data-value="([^"]*)"', page):
        if value != "false":
            form[name] = value
    return form


def test_runtime_settings_change_for_every_worker_and_are_logged_with_who(admin_env, tmp_path, mocked):
    log_path = tmp_path / "requests.log"
    env = {**admin_env, "REQUEST_LOG": str(log_path)}
    admin, other_worker = create_app(env).test_client(), create_app(env)
    log_in(admin)
    page = admin.get("/admin").get_data(as_text=True)
    form = runtime_form(page)
    assert form["STREAMING_MODE"] == "real" and "FORCE_THINKING" not in form
    assert (
        admin.post("/admin/settings", data={k: v for k, v in form.items() if k != "csrf"}).status_code == 403
    )
    r = admin.post("/admin/settings", data={**form, "STREAMING_MODE": "fake", "FORCE_THINKING": "true"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/admin#runtime")
    page = admin.get("/admin").get_data(as_text=True)
    assert "Saved: STREAMING_MODE: real → fake; FORCE_THINKING: false → true." in page
    assert 'data-setting="STREAMING_MODE" data-value="fake" data-changed="yes"' in page
    time.sleep(REFRESH + 0.1)
    current = state_of(other_worker).settings.current()
    assert current.streaming_mode == "fake" and current.force_thinking
    [entry] = [json.loads(line) for line in log_path.read_text().splitlines() if '"event"' in line]
    assert entry["event"] == "settings_changed" and entry["by"] == "admin from 127.0.0.1"
    assert len(entry["admin_session"]) == 12 and PASSWORD not in log_path.read_text()
    assert entry["changes"] == {
        "STREAMING_MODE": {"from": "real", "to": "fake"},
        "FORCE_THINKING": {"from": "false", "to": "true"},
    }
    # Saving the form unchanged changes nothing; a bad value changes nothing and says why.
    admin.post("/admin/settings", data=runtime_form(page))
    assert "Nothing changed." in admin.get("/admin").get_data(as_text=True)
    admin.post("/admin/settings", data={**runtime_form(page), "HEARTBEAT_INTERVAL": "-3"})
    assert "Nothing changed: HEARTBEAT_INTERVAL must be a finite number" in admin.get("/admin").get_data(
        as_text=True
    )
    # Back to the environment: the stored changes are forgotten.
    assert admin.post("/admin/settings/reset", data={"csrf": form["csrf"]}).status_code == 303
    page = admin.get("/admin").get_data(as_text=True)
    assert 'data-setting="STREAMING_MODE" data-value="real" data-changed="no"' in page
    assert state_of(other_worker).store.settings() == {}
    assert len([line for line in log_path.read_text().splitlines() if '"settings_changed"' in line]) == 2


def test_a_value_set_back_to_the_environment_s_is_forgotten(admin_app, admin):
    log_in(admin)
    form = runtime_form(admin.get("/admin").get_data(as_text=True))
    admin.post("/admin/settings", data={**form, "HEARTBEAT_INTERVAL": "3"})
    assert state_of(admin_app).store.settings() == {"HEARTBEAT_INTERVAL": "3"}
    admin.post(
        "/admin/settings", data={**form, "HEARTBEAT_INTERVAL": "0.0"}
    )  # the environment's, typed otherwise
    assert state_of(admin_app).store.settings() == {}


def test_the_form_offers_every_runtime_setting():
    assert {f.name for f in admin_data.RUNTIME_FORM} == set(RUNTIME_SETTINGS)


def test_usage_import_upload(admin_app, admin):
    log_in(admin)
    csrf = csrf_of(admin.get("/admin").data)
    now = time.time()
    lines = [
        {
            "time": now - 60,
            "request_id": "req_imported_1",
            "client": "bob",
            "model": "gemini-2.5-pro",
            "status": 200,
        },
        {
            "time": now - 30,
            "request_id": "req_imported_2",
            "client": "bob",
            "model": "gemini-2.5-pro",
            "status": 500,
        },
    ]
    body = ("\n".join(json.dumps(line) for line in lines) + "\nnot json\n").encode()
    upload = {"csrf": csrf, "usage": (io.BytesIO(body), "usage.jsonl")}
    r = admin.post("/admin/usage/import", data=upload, content_type="multipart/form-data")
    assert r.status_code == 303 and r.headers["Location"].endswith("/admin#import")
    page = admin.get("/admin").get_data(as_text=True)
    assert "Imported 2 usage records; 0 were there already; 1 lines refused (line 3:" in page
    assert 'data-request-id="req_imported_2"' in page  # among the latest requests
    again = {"csrf": csrf, "usage": (io.BytesIO(body), "usage.jsonl")}
    admin.post("/admin/usage/import", data=again, content_type="multipart/form-data")
    assert "Imported 0 usage records; 2 were there already" in admin.get("/admin").get_data(as_text=True)
    assert [r["request_id"] for r in state_of(admin_app).store.usage(0, now + 1)] == [
        "req_imported_1",
        "req_imported_2",
    ]
    no_csrf = {"usage": (io.BytesIO(body), "usage.jsonl")}
    assert (
        admin.post("/admin/usage/import", data=no_csrf, content_type="multipart/form-data").status_code == 403
    )
    admin.post("/admin/usage/import", data={"csrf": csrf}, content_type="multipart/form-data")
    assert "Choose a JSON Lines file" in admin.get("/admin").get_data(as_text=True)
