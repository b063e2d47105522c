"""Who gets in: client keys compared as digests against every key (no early exit, no length leak), and
client keys opening neither the admin page nor a token-protected /metrics; no CORS for /admin."""

from __future__ import annotations

import hashlib
import hmac
from unittest import mock

import pytest

from app import create_app
from app.config import ClientKey
from app.errors import AuthenticationFailed
from app.http.auth import ClientKeys
from tests.conftest import CLIENT_KEY, make_env

FLAT = ("first-key", "second-key-which-is-longer", "k3")
FILE_KEY = "from-the-keys-file"


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@pytest.fixture
def spied():
    """ClientKeys, with every hmac.compare_digest call it makes recorded."""
    keys = ClientKeys(FLAT, (ClientKey(name="filed", digest=sha(FILE_KEY)),))
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def compare(a, b):
        calls.append((a, b))
        return real(a, b)

    with mock.patch("app.http.auth.hmac.compare_digest", compare):
        yield keys, calls


EXPECTED = [sha(k) for k in FLAT] + [sha(FILE_KEY)]


@pytest.mark.parametrize(
    "presented, name",
    [
        ("first-key", "key-1"),
        ("k3", "key-3"),
        (FILE_KEY, "filed"),
        ("second-key-which-is-longer", "key-2"),
    ],
)
def test_a_good_key_is_compared_with_every_key_not_just_until_it_matches(spied, presented, name):
    keys, calls = spied
    assert keys.identify(presented) == name
    assert [expected for _, expected in calls] == EXPECTED, (
        "every configured key, in order, even after the match"
    )
    assert {given for given, _ in calls} == {sha(presented)}, (
        "the presented key is hashed once, then compared"
    )


@pytest.mark.parametrize(
    "presented", ["wrong", "first-ke", "first-key-", "x" * 10000, "k", "\u00e9", "FIRST-KEY"]
)
def test_a_wrong_key_is_compared_with_every_key_at_the_same_length(spied, presented):
    keys, calls = spied
    with pytest.raises(AuthenticationFailed) as refused:
        keys.identify(presented)
    assert refused.value.message == "Invalid API key."  # the key is not echoed
    assert [expected for _, expected in calls] == EXPECTED
    # Digests: every comparison is of 32 bytes with 32 bytes, whatever the key's length or prefix.
    assert all(len(given) == len(expected) == 32 for given, expected in calls)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    app = create_app(
        make_env(
            DATA_DIR=str(tmp_path_factory.mktemp("data")),
            REQUEST_LOG="off",
            ADMIN_PASSWORD="admin-password-1",
            METRICS_TOKEN="metrics-token-1",
        )
    )
    return app.test_client()


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {CLIENT_KEY}"}, {"x-api-key": CLIENT_KEY}, {"x-goog-api-key": CLIENT_KEY}],
)
def test_a_client_key_opens_neither_the_admin_page_nor_the_metrics(guarded, headers):
    page = guarded.get("/admin", headers=headers)
    assert page.status_code == 303 and page.headers["Location"].endswith("/admin/login")
    assert guarded.get(f"/admin?key={CLIENT_KEY}").status_code == 303
    action = guarded.post("/admin/keys/key-1/disable", headers=headers)
    assert action.status_code in (401, 403, 404)
    assert guarded.get("/metrics", headers=headers).status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer metrics-token-1"}).status_code == 200


def test_the_admin_page_answers_no_cross_origin_request(guarded):
    for path in ("/admin", "/admin/login"):
        preflight = guarded.options(
            path, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "Access-Control-Allow-Origin" not in preflight.headers
        page = guarded.get(path, headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in page.headers
    login = guarded.post(
        "/admin/login", data={"password": "admin-password-1"}, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in login.headers
    api = guarded.get("/v1/models", headers={"Origin": "https://chat.example"})
    assert api.headers["Access-Control-Allow-Origin"] == "*"  # the API routes keep CORS, as browsers need
