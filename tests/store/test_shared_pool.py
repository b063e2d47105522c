"""The key pool over the shared store: what one worker learns about a key, every worker knows."""

import pytest

from app.errors import RateLimited
from app.upstream.key_pool import KeyPool, Route, resource_name, session_name

SECRETS = ["AIzaFIRST", "AIzaSECOND", "AIzaTHIRD"]


class Clock:
    now = 1_700_000_000.0

    def __call__(self):
        return self.now


class Spy:
    """Counts the store calls a pool makes."""

    def __init__(self, store):
        self.store = store
        self.reads = self.writes = 0

    def key_states(self):
        self.reads += 1
        return self.store.key_states()

    def key_states_with(self, names, now):
        self.reads += 1
        return self.store.key_states_with(names, now)

    def update_key_state(self, key_id, change):
        self.writes += 1
        return self.store.update_key_state(key_id, change)

    def remember(self, name, affinity, now):
        self.writes += 1
        return self.store.remember(name, affinity, now)


@pytest.fixture
def clock():
    return Clock()


def test_a_cooldown_seen_by_one_worker_holds_for_every_worker(open_backend, clock):
    worker_a = KeyPool(SECRETS, open_backend(), clock=clock)
    worker_b = KeyPool(SECRETS, open_backend(), clock=clock)
    assert worker_b.choose().label == "key-1"  # both rotations start at key-1
    worker_a.cool_down(worker_a.choose(), 30, "HTTP 429 RESOURCE_EXHAUSTED")
    assert {worker_b.choose().label for _ in range(6)} == {"key-2", "key-3"}
    assert worker_b.snapshot()[0]["status"] == "cooling"
    assert worker_b.snapshot()[0]["last_error"] == "HTTP 429 RESOURCE_EXHAUSTED"
    clock.now += 31
    assert "key-1" in {worker_b.choose().label for _ in range(3)}


def test_every_key_cooling_anywhere_is_a_429_with_the_shortest_wait(open_backend, clock):
    worker_a = KeyPool(SECRETS, open_backend(), clock=clock)
    worker_b = KeyPool(SECRETS, open_backend(), clock=clock)
    for key, seconds in zip(worker_a.keys, (30, 12, 50), strict=False):
        worker_a.cool_down(key, seconds, "429")
    with pytest.raises(RateLimited) as err:
        worker_b.choose()
    assert err.value.retry_after == 12 and worker_b.retry_after() == 12


def test_choose_is_one_read_and_the_happy_path_writes_nothing(store, clock):
    spy = Spy(store)
    pool = KeyPool(SECRETS, spy, clock=clock)
    for _ in range(5):
        pool.succeeded(pool.choose())
    assert (spy.reads, spy.writes) == (5, 0)


def test_choose_is_one_read_with_affinity_and_a_session_writes_once(store, clock):
    spy = Spy(store)
    pool = KeyPool(SECRETS, spy, clock=clock)
    pool.record_owner("files/abc", pool.keys[1], "alice", ttl=3600)
    for _ in range(5):
        route = Route(
            client="alice", session=session_name("alice", "chat-1"), resources=(resource_name("files/abc"),)
        )
        key = pool.choose("gemini-2.5-flash", route=route)
        pool.succeeded(key, "gemini-2.5-flash", route)
        assert key.label == "key-2"
    assert (spy.reads, spy.writes) == (5, 2)  # the owner, and the session's key once


def test_a_model_rest_seen_by_one_worker_holds_for_every_worker_and_survives_a_restart(open_backend, clock):
    worker_a = KeyPool(SECRETS, open_backend(), clock=clock)
    worker_a.cool_down(worker_a.keys[0], 30, "HTTP 429", model="gemini-2.5-pro")
    restarted = KeyPool(SECRETS, open_backend(), clock=clock)
    assert {restarted.choose("gemini-2.5-pro").label for _ in range(4)} == {"key-2", "key-3"}
    assert "key-1" in {restarted.choose("gemini-2.5-flash").label for _ in range(3)}


def test_one_probe_across_workers(open_backend, clock):
    worker_a = KeyPool(SECRETS[:1], open_backend(), clock=clock)
    worker_b = KeyPool(SECRETS[:1], open_backend(), clock=clock)
    worker_a.cool_down(worker_a.keys[0], 30, "HTTP 429")
    clock.now += 31
    assert worker_a.choose(route=Route()).label == "key-1"
    with pytest.raises(RateLimited):
        worker_b.choose(route=Route())  # the other worker's probe is under way


def test_success_resets_a_failing_key_but_not_a_newer_cooldown(open_backend, clock):
    worker_a = KeyPool(SECRETS, open_backend(), clock=clock)
    worker_b = KeyPool(SECRETS, open_backend(), clock=clock)
    key = worker_a.keys[0]
    worker_a.failed(key, "timeout")
    chosen = worker_a.choose()
    assert chosen is key and worker_b.snapshot()[0]["failures"] == 1
    worker_a.succeeded(chosen)
    assert worker_b.snapshot()[0]["failures"] == 0


@pytest.mark.parametrize("read_since", [False, True])
def test_a_late_success_keeps_a_newer_cooldown(open_backend, clock, read_since):
    # A call sent before another worker saw the key return 429 succeeds afterwards.
    worker_a = KeyPool(SECRETS[:1], open_backend(), clock=clock)
    worker_b = KeyPool(SECRETS[:1], open_backend(), clock=clock)
    in_flight = worker_a.choose()
    worker_b.cool_down(worker_b.keys[0], 30, "429")
    if read_since:
        with pytest.raises(RateLimited):
            worker_a.choose()  # another request on worker A reads the new state
    worker_a.succeeded(in_flight)
    assert worker_b.snapshot()[0]["status"] == "cooling"


def test_state_follows_the_key_not_its_position(open_backend, clock):
    worker_a = KeyPool(SECRETS, open_backend(), clock=clock)
    reordered = KeyPool(list(reversed(SECRETS)), open_backend(), clock=clock)
    worker_a.disable(worker_a.keys[0], "HTTP 400 API_KEY_INVALID")  # AIzaFIRST
    statuses = {k["label"]: k["status"] for k in reordered.snapshot()}
    assert statuses == {"key-1": "healthy", "key-2": "healthy", "key-3": "disabled"}


def test_the_store_holds_no_secret(store, clock):
    pool = KeyPool(SECRETS, store, clock=clock)
    for key in pool.keys:
        pool.cool_down(key, 30, "429")
    assert len(store.key_states()) == 3
    if store.backend == "sqlite":
        raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir())
    else:
        raw = b"".join(
            k + b"".join(store.r.hgetall(k).keys()) + b"".join(store.r.hgetall(k).values())
            for k in store.r.keys("*")
        )
    assert raw and not any(secret.encode() in raw for secret in SECRETS)
