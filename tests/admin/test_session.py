"""Admin sessions: signed cookies that expire, end with a password change, and a secret every worker shares."""

import os
import stat

import pytest

from app.admin import session as session_module
from app.admin.session import LIFETIME, Sessions, csrf_ok
from app.config import SESSION_SECRET_FILE, Config, ConfigError
from app.store.sqlite import SQLiteStore
from tests.conftest import make_env


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "state.db")
    yield s
    s.close()


def test_a_session_round_trips_and_a_forgery_does_not(store):
    sessions = Sessions(b"s" * 32, "the password", store)
    issued = sessions.new()
    cookie = sessions._serializer.dumps(issued)
    assert sessions.load(cookie) == issued
    assert sessions.load(None) is None and sessions.load("") is None
    payload, rest = cookie.split(".", 1)
    assert sessions.load(payload[:-2] + "xx." + rest) is None
    other = Sessions(b"t" * 32, "the password", store)  # another secret
    assert other.load(cookie) is None
    renamed = Sessions(b"s" * 32, "a new password", store)  # same secret, new password
    assert renamed.load(cookie) is None


def test_a_session_expires_even_when_re_signed(store):
    sessions = Sessions(b"s" * 32, "the password", store)
    issued = sessions.new()
    old = dict(issued, iat=issued["iat"] - LIFETIME - 1)
    assert sessions.load(sessions._serializer.dumps(old)) is None  # a fresh signature, an old login
    assert sessions.load(sessions._serializer.dumps({"fp": issued["fp"], "iat": issued["iat"]})) is None


def test_csrf_comparison():
    assert csrf_ok({"csrf": "abc"}, "abc")
    assert not csrf_ok({"csrf": "abc"}, "abd") and not csrf_ok({"csrf": "abc"}, None)


def test_the_password_check(store):
    sessions = Sessions(b"s" * 32, "the password", store)
    assert sessions.password_ok("the password")
    assert not sessions.password_ok("the password ") and not sessions.password_ok("")


def test_login_limits_per_address_and_overall(store):
    sessions = Sessions(b"s" * 32, "the password", store)
    for _ in range(5):
        assert sessions.admit_login("10.0.0.1", 1000.0) is None
    wait = sessions.admit_login("10.0.0.1", 1000.0)
    assert wait is not None and 0 < wait <= 61
    assert sessions.admit_login("10.0.0.1", 1062.0) is None  # the window has passed
    for i in range(30):  # 30 in all across addresses, per minute
        assert sessions.admit_login(f"10.0.1.{i}", 2000.0) is None
    assert sessions.admit_login("10.0.2.1", 2000.0) is not None


def test_the_session_secret_is_generated_once_and_shared(tmp_path):
    env = make_env(DATA_DIR=str(tmp_path), ADMIN_PASSWORD="long enough")
    first, second = Config.from_env(env), Config.from_env(env)
    assert first.session_secret == second.session_secret and len(first.session_secret) == 64
    path = tmp_path / SESSION_SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.session_secret.decode() not in repr(first) and "long enough" not in repr(first)
    chosen = Config.from_env({**env, "SESSION_SECRET": "x" * 32})
    assert chosen.session_secret == b"x" * 32
    with pytest.raises(ConfigError, match="SESSION_SECRET must be at least 16"):
        Config.from_env({**env, "SESSION_SECRET": "short"})
    off = make_env(DATA_DIR=str(tmp_path / "none"), ADMIN_PASSWORD="off")
    assert Config.from_env(off).session_secret is None
    assert not (tmp_path / "none" / SESSION_SECRET_FILE).exists()  # no admin, no secret


def test_login_limit_names_cannot_be_client_key_names():
    from app.config.client_keys import _CLIENT_KEY_NAME

    for name, _ in session_module.LOGIN_LIMITS:
        assert not _CLIENT_KEY_NAME.match(name.format(address="127.0.0.1"))
