"""One suite, both backends: every test here runs against SQLite and against a real Redis."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from app.store import USAGE_FIELDS, StoreUnavailable
from app.store.redis import RedisStore
from app.store.sqlite import SQLiteStore
from app.upstream.key_pool import Affinity, KeyState
from app.usage.limits import Limit

NOW = 1_700_000_000.0
RPM = Limit("requests", 60, 3)
TPM = Limit("tokens", 60, 100)
TPD = Limit("tokens", 86400, 1000)


def row(t: float, **values) -> dict:
    base = dict.fromkeys(USAGE_FIELDS)
    base.update(
        time=t,
        request_id=f"req_{t}",
        client="alice",
        dialect="gemini",
        endpoint="/v1beta/models/m:x",
        model="gemini-2.5-flash",
        stream=False,
        status=200,
        prompt_tokens=1,
        completion_tokens=2,
        thought_tokens=0,
        first_byte_ms=1.5,
        total_ms=2.5,
        attempts=1,
        key_label="key-1",
    )
    base.update(values)
    return base


# -- key health ------------------------------------------------------------------------------


def test_key_states_are_shared_and_fresh_states_are_forgotten(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    assert worker_a.key_states() == {}
    cooled = worker_a.update_key_state(
        "abc", lambda s: replace(s, cooldown_until=NOW + 30, last_error="HTTP 429")
    )
    assert cooled == KeyState(cooldown_until=NOW + 30, last_error="HTTP 429")
    assert worker_b.key_states() == {"abc": cooled}
    worker_b.update_key_state("abc", lambda s: KeyState())
    assert worker_a.key_states() == {}


def test_key_state_updates_are_atomic(open_backend):
    workers = [open_backend() for _ in range(4)]

    def bump(store):
        for _ in range(25):
            store.update_key_state("k", lambda s: replace(s, failures=s.failures + 1))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(bump, workers))
    assert workers[0].key_states()["k"].failures == 100


def test_pair_states_live_beside_key_states_and_carry_probes_and_soft_rests(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    worker_a.update_key_state("abc", lambda s: replace(s, failures=1))
    pair = worker_a.update_key_state(
        "abc/gemini-2.5-pro",
        lambda s: replace(
            s, cooldown_until=NOW + 60, probe_until=NOW + 5, soft_until=NOW + 9, last_error="429"
        ),
    )
    assert worker_b.key_states() == {"abc": KeyState(failures=1), "abc/gemini-2.5-pro": pair}
    assert pair.probe_until == NOW + 5 and pair.soft_until == NOW + 9


def test_affinities_come_with_the_states_in_one_read_and_expire(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    worker_a.update_key_state("abc/m", lambda s: replace(s, cooldown_until=NOW + 60))
    far = NOW + 3600
    worker_a.remember("r:files/one", Affinity("abc", "alice", far), NOW)
    worker_a.remember("s:hint", Affinity("def", None, far), NOW)
    worker_a.remember("s:gone", Affinity("def", None, NOW - 1), NOW)
    states, found = worker_b.key_states_with(["r:files/one", "s:hint", "s:gone", "s:never"], NOW)
    assert list(states) == ["abc/m"]
    assert found == {"r:files/one": Affinity("abc", "alice", far), "s:hint": Affinity("def", None, far)}
    worker_b.remember("s:hint", Affinity("xyz", "bob", far), NOW)  # the latest choice wins
    assert worker_a.key_states_with(["s:hint"], NOW)[1]["s:hint"].key_id == "xyz"


def test_resources_are_listed_per_client_and_family_with_their_notes_and_forgotten(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    far = NOW + 3600
    worker_a.remember("r:files/one", Affinity("k1", "alice", far, "user_data"), NOW)
    worker_a.remember("r:files/two", Affinity("k2", "alice", far), NOW)
    worker_a.remember("r:files/old", Affinity("k2", "alice", NOW - 1), NOW)
    worker_a.remember("r:files/bobs", Affinity("k1", "bob", far), NOW)
    worker_a.remember("r:cachedContents/c", Affinity("k3", "alice", far), NOW)
    worker_a.remember("s:session", Affinity("k3", "alice", far), NOW)
    assert worker_b.owned("alice", "r:files/", NOW) == {
        "r:files/one": Affinity("k1", "alice", far, "user_data"),
        "r:files/two": Affinity("k2", "alice", far),
    }
    assert list(worker_b.owned("alice", "r:cachedContents/", NOW)) == ["r:cachedContents/c"]
    assert list(worker_b.owned("bob", "r:", NOW)) == ["r:files/bobs"]
    assert worker_b.owned("carol", "r:", NOW) == {}
    assert worker_b.key_states_with(["r:files/one"], NOW)[1]["r:files/one"].note == "user_data"
    worker_b.forget("r:files/one")
    worker_b.forget("r:files/never")  # nothing to forget: no error
    assert list(worker_a.owned("alice", "r:files/", NOW)) == ["r:files/two"]
    assert worker_a.key_states_with(["r:files/one"], NOW)[1] == {}
    # A name recorded again for another client moves to that client.
    worker_a.remember("r:files/two", Affinity("k2", "bob", far), NOW)
    assert worker_b.owned("alice", "r:files/", NOW) == {}
    assert sorted(worker_b.owned("bob", "r:files/", NOW)) == ["r:files/bobs", "r:files/two"]


def test_remember_once_is_won_by_exactly_one_worker_until_it_expires(open_backend):
    workers = [open_backend() for _ in range(4)]
    claim = Affinity("k1", "alice", NOW + 60)
    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(lambda store: store.remember_once("u:batches/b1", claim, NOW), workers * 5))
    assert won.count(True) == 1
    later = Affinity("k1", "alice", NOW + 200)
    assert workers[0].remember_once("u:batches/b1", later, NOW + 61)  # expired: claimed anew
    assert not workers[1].remember_once("u:batches/b1", later, NOW + 62)


def test_prune_forgets_long_ended_pair_states_and_keeps_the_rest(store):
    import time

    now = time.time()
    store.update_key_state("abc", lambda s: replace(s, cooldown_until=now - 5 * 86400, failures=3))
    store.update_key_state("abc/old", lambda s: replace(s, cooldown_until=now - 2 * 86400))
    store.update_key_state("abc/recent", lambda s: replace(s, cooldown_until=now - 3600))
    store.update_key_state("abc/daily", lambda s: replace(s, cooldown_until=now + 3600))
    store.prune(now - 86400)
    assert sorted(store.key_states()) == ["abc", "abc/daily", "abc/recent"]


# -- client limits ----------------------------------------------------------------------------


def test_requests_per_minute_across_workers_with_exact_retry_after(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    assert worker_a.admit("alice", [RPM], NOW + 0.2) is None
    assert worker_b.admit("alice", [RPM], NOW + 10.5) is None
    assert worker_a.admit("alice", [RPM], NOW + 20.5) is None
    limit, wait = worker_b.admit("alice", [RPM], NOW + 30.0)
    # The first request's 1-second bucket stops counting 61 buckets after it began.
    assert limit == RPM and wait == pytest.approx(61 - 30.0)
    assert worker_a.admit("bob", [RPM], NOW + 30.0) is None  # other clients are counted apart
    assert worker_a.admit("alice", [RPM], NOW + 61.0) is None  # the first has left the window
    assert worker_a.admit("alice", [RPM], NOW + 62.0)[1] == pytest.approx(71 - 62.0)


def test_a_rejected_request_is_not_counted(store):
    for t in range(3):
        assert store.admit("alice", [RPM], NOW + t) is None
    for t in range(10):
        assert store.admit("alice", [RPM], NOW + 3 + t) is not None
    assert store.admit("alice", [RPM], NOW + 61) is None  # only the first has expired: one slot
    assert store.admit("alice", [RPM], NOW + 61) is not None


def test_admission_is_atomic_under_concurrency(open_backend):
    limit = Limit("requests", 60, 20)
    workers = [open_backend() for _ in range(4)]

    def attempts(store):
        return sum(store.admit("alice", [limit], NOW) is None for _ in range(15))

    with ThreadPoolExecutor(4) as pool:
        admitted = sum(pool.map(attempts, workers))
    assert admitted == 20


def test_tokens_are_charged_after_the_fact_and_checked_before(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    assert worker_a.admit("alice", [RPM, TPM, TPD], NOW) is None
    worker_a.finish(row(NOW, prompt_tokens=90), "alice", [TPM, TPD], 99, NOW + 1)
    assert worker_b.admit("alice", [TPM], NOW + 2) is None  # 99 of 100: room left
    worker_b.finish(row(NOW + 2), "alice", [TPM, TPD], 50, NOW + 3)
    limit, wait = worker_a.admit("alice", [RPM, TPM, TPD], NOW + 4)
    assert limit == TPM and wait == pytest.approx(62 - 4)  # when the 99 have aged out
    assert worker_a.admit("alice", [RPM, TPM, TPD], NOW + 62) is None
    # The day limit still holds the 149 tokens: 851 more and it is full.
    worker_a.finish(row(NOW + 62), "alice", [TPM, TPD], 851, NOW + 62)
    limit, wait = worker_b.admit("alice", [TPD], NOW + 200)
    # Every charge fell in one 24-minute bucket: it stops counting 61 buckets after it began.
    assert limit == TPD and wait == pytest.approx(TPD.expires(TPD.bucket(NOW)) - (NOW + 200))


def test_requests_limits_ignore_tokens_and_token_limits_ignore_requests(store):
    for t in range(50):
        assert store.admit("alice", [TPM], NOW + t * 0.01) is None  # no requests limit: no count
    store.finish(row(NOW), "alice", [TPM], 10_000, NOW)
    assert store.admit("alice", [RPM], NOW + 1) is None


# -- usage ------------------------------------------------------------------------------------


def test_usage_rows_round_trip_typed_in_time_order(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    # A long stream that started first ends last: exports still list by start time.
    worker_a.finish(
        row(NOW + 5, client="bob", stream=True, error=None, key_label=None), "bob", [], 0, NOW + 6
    )
    worker_b.finish(row(NOW + 1, model=None, first_byte_ms=None), "alice", [], 0, NOW + 9)
    worker_a.finish(
        row(NOW + 9, status=429, error="rate_limit", served_model="gemini-2.5-flash-lite"),
        "alice",
        [],
        0,
        NOW + 9,
    )
    rows = list(worker_b.usage(NOW, NOW + 100))
    assert [r["time"] for r in rows] == [NOW + 1, NOW + 5, NOW + 9]
    assert rows[0] == row(NOW + 1, model=None, first_byte_ms=None)
    assert rows[1]["stream"] is True and rows[1]["client"] == "bob" and rows[1]["key_label"] is None
    assert rows[2]["status"] == 429 and rows[2]["error"] == "rate_limit"
    assert rows[2]["served_model"] == "gemini-2.5-flash-lite" and rows[0]["served_model"] is None
    assert list(rows[0]) == list(USAGE_FIELDS)
    assert [r["time"] for r in worker_a.usage(NOW + 1, NOW + 9)] == [NOW + 1, NOW + 5]  # [since, until)
    assert [r["client"] for r in worker_a.usage(0, NOW + 100, client="bob")] == ["bob"]


def test_usage_pages_through_many_rows(store):
    for i in range(2500):
        store.finish(row(NOW + i * 0.001, request_id=f"r{i}"), "alice", [], 0, NOW)
    ids = [r["request_id"] for r in store.usage(0, NOW + 10)]
    assert ids == [f"r{i}" for i in range(2500)]


def test_prune_deletes_only_old_rows(store):
    for t in (NOW - 3 * 86400, NOW - 2 * 86400, NOW - 10, NOW):
        store.finish(row(t), "alice", [], 0, t)
    deleted = store.prune(NOW - 86400)
    assert deleted == 2
    assert [r["time"] for r in store.usage(0, NOW + 1)] == [NOW - 10, NOW]


# -- failures -----------------------------------------------------------------------------------


def test_an_unreachable_store_raises_store_unavailable(tmp_path, caplog):
    closed_port = f"redis://127.0.0.1:{_closed_port()}/0"
    store = RedisStore(closed_port)
    with pytest.raises(StoreUnavailable) as err:
        store.key_states()
    assert err.value.status == 503 and "unavailable" in err.value.message
    assert "Redis" in caplog.text  # the detail is for the operator's log
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreUnavailable):
        SQLiteStore(tmp_path / "file" / "gemgate.db")  # its directory is a file


def test_a_corrupt_sqlite_file_is_store_unavailable(tmp_path):
    path = tmp_path / "gemgate.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable, match="unavailable"):
        SQLiteStore(path)


def _closed_port() -> int:
    from tests.conftest import free_port

    return free_port()
