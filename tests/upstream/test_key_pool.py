import pytest

from app.errors import RateLimited, UpstreamNotConfigured
from app.upstream.key_pool import KeyPool


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_rotates_across_keys(clock):
    pool = KeyPool(["a", "b", "c"], clock=clock)
    assert [pool.choose().secret for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_cooling_key_is_skipped_until_cooldown_ends(clock):
    pool = KeyPool(["a", "b"], clock=clock)
    pool.cool_down(pool.keys[0], 30, "HTTP 429")
    assert {pool.choose().secret for _ in range(4)} == {"b"}
    clock.now += 31
    assert {pool.choose().secret for _ in range(4)} == {"a", "b"}


def test_all_cooling_raises_rate_limited_with_retry_after(clock):
    pool = KeyPool(["a", "b"], clock=clock)
    pool.cool_down(pool.keys[0], 30, "429")
    pool.cool_down(pool.keys[1], 10, "429")
    with pytest.raises(RateLimited) as err:
        pool.choose()
    assert err.value.retry_after == 10


def test_disabled_keys_come_back_for_a_recheck(clock):
    pool = KeyPool(["a", "b"], clock=clock, recheck_after=600)
    pool.disable(pool.keys[0], "HTTP 400 INVALID_ARGUMENT")
    pool.disable(pool.keys[1], "HTTP 403")
    with pytest.raises(UpstreamNotConfigured, match="GEMINI_API_KEYS"):
        pool.choose()
    assert [k["status"] for k in pool.snapshot()] == ["disabled", "disabled"]
    clock.now += 601
    assert pool.choose().secret in {"a", "b"}


def test_avoid_prefers_another_key_but_falls_back(clock):
    pool = KeyPool(["a", "b"], clock=clock)
    assert all(pool.choose(avoid="key-1").secret == "b" for _ in range(4))
    single = KeyPool(["a"], clock=clock)
    assert single.choose(avoid="key-1").secret == "a"


def test_success_clears_state_and_no_keys_is_unconfigured(clock):
    pool = KeyPool(["a"], clock=clock)
    pool.failed(pool.keys[0], "timeout")
    assert pool.snapshot()[0]["failures"] == 1
    pool.succeeded(pool.keys[0])
    assert pool.snapshot()[0] == {
        "label": "key-1",
        "status": "healthy",
        "cooldown_until": None,
        "disabled_until": None,
        "failures": 0,
        "last_error": None,
    }
    with pytest.raises(UpstreamNotConfigured, match="GEMINI_API_KEYS"):
        KeyPool([]).choose()


def test_key_repr_hides_the_secret():
    key = KeyPool(["AIzaSECRET"]).keys[0]
    assert "SECRET" not in repr(key) and "SECRET" not in str(key)
