"""Admin sessions: signed cookies that expire, end with a password change, and a secret every worker shares."""

import os
import stat

import pytest

from app.admin.session import (
    BACKOFF_MAX,
    FORGET_FAILURES,
    FREE_FAILURES,
    LIFETIME,
    Sessions,
    backoff,
    csrf_ok,
)
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


def test_failed_logins_back_off_per_address_and_a_login_forgets_them(store):
    sessions = Sessions(b"s" * 32, "the password", store)
    now = 1000.0
    for _ in range(FREE_FAILURES):  # each attempt is a failure until a login clears it
        assert sessions.login_attempt("10.0.0.1", now) is None
    assert sessions.login_attempt("10.0.0.1", now) == pytest.approx(1.0)  # then it waits 1 s
    assert sessions.login_attempt("10.0.0.1", now + 1.0) is None  # a sixth failure
    assert sessions.login_attempt("10.0.0.1", now + 1.5) == pytest.approx(1.5)  # 2 s after it
    assert sessions.login_attempt("10.0.0.9", now + 1.5) is None  # another address waits for nothing
    sessions.logged_in("10.0.0.1")
    assert sessions.login_attempt("10.0.0.1", now + 1.5) is None


def test_backoff_doubles_to_a_cap_and_failures_are_forgotten(store):
    assert [backoff(n) for n in range(FREE_FAILURES)] == [0.0] * FREE_FAILURES
    assert [backoff(FREE_FAILURES + n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(100) == BACKOFF_MAX
    sessions = Sessions(b"s" * 32, "the password", store)
    for i in range(FREE_FAILURES + 1):
        assert sessions.login_attempt("10.0.0.1", 1000.0 + i * 1000) is None
    assert sessions.login_attempt("10.0.0.1", 6000.0 + FORGET_FAILURES - 1) is None  # 7th, 2 s after
    assert sessions.login_attempt("10.0.0.1", 6000.0 + FORGET_FAILURES - 1) is not None
    assert sessions.login_attempt("10.0.0.1", 6000.0 + 2 * FORGET_FAILURES) is None  # forgotten


def test_a_logged_out_session_is_refused_everywhere(store, tmp_path):
    sessions = Sessions(b"s" * 32, "the password", store)
    issued = sessions.new()
    cookie = sessions._serializer.dumps(issued)
    other_worker = Sessions(b"s" * 32, "the password", SQLiteStore(tmp_path / "state.db"))
    assert other_worker.load(cookie) == issued
    sessions.revoke(issued)
    assert sessions.load(cookie) is None and other_worker.load(cookie) is None
    assert sessions.load(sessions._serializer.dumps(sessions.new())) is not None  # a new login works


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
