"""The key pool: rotation, health per key and per (key, model), probes, affinity (in memory)."""

import pytest

from app.errors import NotFound, RateLimited, UpstreamNotConfigured
from app.upstream.key_pool import (
    PROBE_WINDOW,
    KeyPool,
    ModelExhausted,
    Route,
    model_health,
    resource_name,
    session_name,
)
from app.upstream.retry import Fault, Judgement, Rest, Scope

FLASH, PRO = "gemini-2.5-flash", "gemini-2.5-pro"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def rest(rest, scope=Scope.MODEL, seconds=30.0, reason="HTTP 429 RESOURCE_EXHAUSTED", now=1000.0):
    return Judgement(Fault.QUOTA, scope, rest, now + seconds, another_key=True, reason=reason)


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
    assert err.value.retry_after == 10 and not isinstance(err.value, ModelExhausted)


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
    assert all(pool.choose(avoid={"key-1"}).secret == "b" for _ in range(4))
    single = KeyPool(["a"], clock=clock)
    assert single.choose(avoid={"key-1"}).secret == "a"


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
        "denied_until": None,
        "failures": 0,
        "last_error": None,
        "models": [],
    }
    with pytest.raises(UpstreamNotConfigured, match="GEMINI_API_KEYS"):
        KeyPool([]).choose()


def test_key_repr_hides_the_secret():
    key = KeyPool(["AIzaSECRET"]).keys[0]
    assert "SECRET" not in repr(key) and "SECRET" not in str(key)


# -- per model ------------------------------------------------------------------------------------


def test_a_model_rest_leaves_the_key_serving_other_models(clock):
    pool = KeyPool(["a", "b"], clock=clock)
    pool.judged(pool.keys[0], PRO, rest(Rest.COOL))
    assert {pool.choose(PRO).secret for _ in range(4)} == {"b"}
    assert {pool.choose(FLASH).secret for _ in range(4)} == {"a", "b"}
    (key_1, key_2) = pool.snapshot()
    assert key_1["status"] == "healthy" and key_2["models"] == []
    assert key_1["models"] == [
        {
            "model": PRO,
            "status": "cooling",
            "cooldown_until": 1030.0,
            "disabled_until": None,
            "denied_until": None,
            "failures": 0,
            "last_error": "HTTP 429 RESOURCE_EXHAUSTED",
        }
    ]
    assert model_health(pool.snapshot()) == {PRO: {"healthy": 1, "cooling": 1, "disabled": 0, "denied": 0}}


def test_every_key_resting_for_a_model_is_model_exhausted_with_the_shortest_wait(clock):
    pool = KeyPool(["a", "b"], clock=clock)
    pool.judged(pool.keys[0], PRO, rest(Rest.COOL, seconds=30))
    pool.judged(pool.keys[1], PRO, rest(Rest.DISABLE, seconds=600))
    with pytest.raises(ModelExhausted, match=f"rate limited for {PRO}; retry in 30s") as err:
        pool.choose(PRO)
    assert err.value.status == 429 and err.value.retry_after == 30 and pool.retry_after(PRO) == 30
    assert pool.choose(FLASH)  # other models are served
    pool.disable(pool.keys[0], "HTTP 400 API_KEY_INVALID")  # a refused key is not back any sooner
    assert pool.retry_after(PRO) == 600


def test_a_daily_rest_says_when_it_ends(clock):
    pool = KeyPool(["a"], clock=clock)
    pool.judged(
        pool.keys[0],
        PRO,
        rest(
            Rest.COOL,
            seconds=5000,
            reason="HTTP 429 RESOURCE_EXHAUSTED GenerateRequestsPerDayPerProjectPerModel",
        ),
    )
    with pytest.raises(
        ModelExhausted, match="daily quota for gemini-2.5-pro; it resets at midnight Pacific"
    ) as err:
        pool.choose(PRO)
    assert err.value.retry_after == 5000


def test_a_key_rest_holds_for_every_model(clock):
    pool = KeyPool(["a", "b"], clock=clock)
    pool.judged(pool.keys[0], PRO, rest(Rest.DISABLE, scope=Scope.KEY, reason="HTTP 400 API_KEY_INVALID"))
    assert {pool.choose(m).secret for m in (PRO, FLASH, None) for _ in range(2)} == {"b"}
    assert model_health(pool.snapshot()) == {}


def test_a_soft_rest_is_used_only_when_nothing_else_is_left_and_a_success_clears_it(clock):
    pool = KeyPool(["a", "b"], clock=clock)
    denied = Judgement(Fault.CALLER, Scope.MODEL, Rest.SOFT, 1600.0, another_key=True, reason="HTTP 403")
    pool.judged(pool.keys[0], PRO, denied)
    assert {pool.choose(PRO).secret for _ in range(4)} == {"b"}
    assert pool.snapshot()[0]["models"][0]["status"] == "denied"
    pool.judged(pool.keys[1], PRO, denied)
    # Both refused: the model's pool is never emptied by it, the calls still go.
    assert {pool.choose(PRO).secret for _ in range(4)} == {"a", "b"}
    key = pool.choose(PRO)
    pool.succeeded(key, PRO)
    assert [m for k in pool.snapshot() for m in k["models"] if k["label"] == key.label] == []


def test_least_recently_used_spreads_load_over_the_healthy_keys(clock):
    pool = KeyPool(["a", "b", "c", "d"], clock=clock)
    pool.cool_down(pool.keys[0], 30, "429")
    pool.cool_down(pool.keys[1], 30, "429")
    picks = [pool.choose().secret for _ in range(8)]
    assert picks.count("c") == picks.count("d") == 4


# -- probes ------------------------------------------------------------------------------------------


def test_a_key_back_from_a_cooldown_is_probed_by_one_request(clock):
    pool = KeyPool(["a", "b"], clock=clock)
    pool.judged(pool.keys[0], PRO, rest(Rest.COOL, seconds=30))
    clock.now += 31
    probe = Route()
    assert pool.choose(PRO, route=probe).secret == "a"  # least recently used: it gets the probe
    assert probe.probing == [f"{pool.keys[0].id}/{PRO}"]
    # While the probe is out, every other call goes elsewhere.
    assert {pool.choose(PRO, route=Route()).secret for _ in range(5)} == {"b"}
    pool.succeeded(pool.keys[0], PRO, probe)
    assert pool.snapshot()[0]["models"] == [] and probe.probing == []
    assert "a" in {pool.choose(PRO).secret for _ in range(2)}


def test_a_single_key_being_probed_answers_429_not_the_whole_queue(clock):
    pool = KeyPool(["a"], clock=clock)
    pool.cool_down(pool.keys[0], 30, "429")
    clock.now += 31
    assert pool.choose(route=Route()).secret == "a"
    with pytest.raises(RateLimited) as err:
        pool.choose(route=Route())
    assert err.value.retry_after == 1


def test_a_failed_probe_rests_the_key_again_and_a_lapsed_probe_is_taken_over(clock):
    pool = KeyPool(["a"], clock=clock)
    pool.cool_down(pool.keys[0], 30, "429")
    clock.now += 31
    probe = Route()
    pool.choose(route=probe)
    pool.judged(pool.keys[0], None, rest(Rest.COOL, scope=Scope.KEY, seconds=10, now=clock.now), probe)
    with pytest.raises(RateLimited):
        pool.choose(route=Route())
    clock.now += 11
    stuck = Route()
    pool.choose(route=stuck)  # a probe that never reports back...
    clock.now += PROBE_WINDOW + 1
    assert pool.choose(route=Route()).secret == "a"  # ...is taken over after its window


def test_a_probe_that_proves_nothing_is_released(clock):
    pool = KeyPool(["a"], clock=clock)
    pool.cool_down(pool.keys[0], 30, "429")
    clock.now += 31
    probe = Route()
    pool.choose(route=probe)
    pool.judged(pool.keys[0], None, Judgement(Fault.CALLER, reason="HTTP 400"), probe)
    assert pool.choose(route=Route()).secret == "a"


# -- affinity ----------------------------------------------------------------------------------------


def test_a_call_naming_a_resource_goes_to_the_key_that_holds_it(clock):
    pool = KeyPool(["a", "b", "c"], clock=clock)
    pool.record_owner("files/abc", pool.keys[2], "alice", ttl=100)
    for _ in range(3):
        route = Route(client="alice", resources=(resource_name("files/abc"),))
        assert pool.choose(FLASH, route=route).secret == "c"
    # Its key resting: a 429 that names the resource, not another key (which could not read it).
    pool.judged(pool.keys[2], FLASH, rest(Rest.COOL, seconds=20))
    with pytest.raises(RateLimited, match="holds files/abc is resting; retry in 20s"):
        pool.choose(FLASH, route=Route(client="alice", resources=(resource_name("files/abc"),)))
    clock.now += 101  # forgotten after its lifetime
    assert (
        pool.choose(PRO, route=Route(client="alice", resources=(resource_name("files/abc"),))).secret == "a"
    )


def test_another_clients_resource_is_not_found(clock):
    pool = KeyPool(["a", "b"], clock=clock)
    pool.record_owner("cachedContents/xyz", pool.keys[1], "alice", ttl=100)
    with pytest.raises(NotFound, match="cachedContents/xyz was not found"):
        pool.choose(FLASH, route=Route(client="bob", resources=(resource_name("cachedContents/xyz"),)))


def test_a_session_prefers_its_last_key_while_it_is_healthy(clock):
    pool = KeyPool(["a", "b", "c"], clock=clock, session_ttl=600)
    hint = session_name("alice", "conversation-1")

    def call():
        route = Route(client="alice", session=hint)
        key = pool.choose(FLASH, route=route)
        pool.succeeded(key, FLASH, route)
        return key.secret

    first = call()
    assert [call() for _ in range(4)] == [first] * 4
    pool.judged(pool.keys[ord(first) - ord("a")], FLASH, rest(Rest.COOL))
    moved = call()
    assert moved != first and call() == moved  # and the session follows it


def test_session_hints_are_scoped_by_client():
    assert session_name("alice", "u1") != session_name("bob", "u1")
    assert session_name("alice", "u1") == session_name("alice", "u1")
    assert "u1" not in session_name("alice", "u1")


def test_a_session_mapping_is_written_when_it_changes_not_per_call(clock):
    writes = []

    class Counting(KeyPool):
        pass

    pool = Counting(["a", "b"], clock=clock, session_ttl=600)
    real = pool.store.remember
    pool.store.remember = lambda name, affinity, now: (writes.append(name), real(name, affinity, now))
    hint = session_name("alice", "s")
    for _ in range(5):
        route = Route(client="alice", session=hint)
        pool.succeeded(pool.choose(FLASH, route=route), FLASH, route)
    assert len(writes) == 1
    clock.now += 301  # past half its lifetime: refreshed once
    for _ in range(3):
        route = Route(client="alice", session=hint)
        pool.succeeded(pool.choose(FLASH, route=route), FLASH, route)
    assert len(writes) == 2
