"""One suite, both backends: every test here runs against SQLite and against a real Redis."""

import time
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


def test_imported_rows_join_the_usage_once_by_request_id(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    worker_a.finish(row(NOW - 100, request_id="req_live"), "alice", [], 0, NOW - 99)
    history = [
        row(NOW - 3600, request_id="req_old", client="bob", stream=True),
        row(NOW - 100, request_id="req_live", prompt_tokens=999),  # stored by the gateway already
        row(NOW - 50, request_id="req_new", status=429, error="rate_limit", first_byte_ms=None),
    ]
    assert worker_b.import_usage(history) == 2
    assert worker_a.import_usage(history) == 0  # a second import adds nothing
    rows = list(worker_a.usage(0, NOW))
    assert [r["request_id"] for r in rows] == ["req_old", "req_live", "req_new"]
    assert rows[0] == row(NOW - 3600, request_id="req_old", client="bob", stream=True)
    assert rows[1]["prompt_tokens"] == 1  # the gateway's own row is kept
    assert rows[2]["status"] == 429 and rows[2]["first_byte_ms"] is None
    assert [r["request_id"] for r in worker_b.usage(0, NOW, client="bob")] == ["req_old"]
    assert [r["request_id"] for r in worker_b.usage(NOW - 60, NOW)] == ["req_new"]
    assert worker_b.prune(NOW - 1000) == 1  # imported rows age out like the others
    assert [r["request_id"] for r in worker_a.usage(0, NOW)] == ["req_live", "req_new"]


def test_an_import_of_many_rows_goes_in_batches(store):
    assert store.import_usage([row(NOW + i * 0.001, request_id=f"r{i}") for i in range(2500)]) == 2500
    assert len(list(store.usage(0, NOW + 10))) == 2500


# -- runtime settings and tool calls ------------------------------------------------------------


def test_runtime_settings_are_shared_and_can_be_forgotten(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    assert worker_a.settings() == {}
    worker_a.update_settings({"STREAMING_MODE": "fake", "FORCE_THINKING": "true"})
    assert worker_b.settings() == {"STREAMING_MODE": "fake", "FORCE_THINKING": "true"}
    worker_b.update_settings({"STREAMING_MODE": None, "HEARTBEAT_INTERVAL": "3"})
    assert worker_a.settings() == {"FORCE_THINKING": "true", "HEARTBEAT_INTERVAL": "3"}


def test_tool_calls_are_kept_per_client_until_they_expire(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    signature = "Cg" + "x" * 4000
    worker_a.remember_calls("alice", {"call_a": signature, "call_b": "short"}, 60, NOW)
    assert worker_b.recall_calls("alice", ["call_a", "call_b", "call_z"], NOW + 1) == {
        "call_a": signature,
        "call_b": "short",
    }
    assert worker_b.recall_calls("bob", ["call_a"], NOW + 1) == {}  # another client's ids are not his
    many = [f"call_{i}" for i in range(1200)]
    worker_a.remember_calls("alice", dict.fromkeys(many, "v"), 60, NOW)
    assert len(worker_b.recall_calls("alice", many, NOW + 1)) == 1200


def test_tool_calls_expire(store):
    store.remember_calls("alice", {"call_a": "v"}, 0.2, time.time())
    assert store.recall_calls("alice", ["call_a"], time.time()) == {"call_a": "v"}
    time.sleep(0.3)
    assert store.recall_calls("alice", ["call_a"], time.time()) == {}


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


# -- reservations and concurrency ------------------------------------------------------------------

SLOTS = Limit("concurrent", 900, 2)


def test_a_reservation_is_checked_and_held_atomically_then_settled(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    tokens = [TPM, TPD]
    assert worker_a.admit("alice", tokens, NOW, amounts={"tokens": 80}) is None  # 0 of 100 used: room
    assert worker_b.admit("alice", tokens, NOW + 1, amounts={"tokens": 80}) is None  # 80: still room
    limit, _ = worker_a.admit("alice", tokens, NOW + 2, amounts={"tokens": 80})  # 160: none
    assert limit == TPM
    # Both end: 30 and 10 tokens were real; the 160 held are given back.
    worker_a.finish(row(NOW), "alice", tokens, 30, NOW + 3, reserved=80, reserved_at=NOW)
    worker_b.finish(row(NOW + 1), "alice", tokens, 10, NOW + 4, reserved=80, reserved_at=NOW + 1)
    assert worker_a.admit("alice", tokens, NOW + 5, amounts={"tokens": 59}) is None  # 40 + 59 < 100
    assert worker_a.admit("alice", tokens, NOW + 5, amounts={"tokens": 1}) is None  # 99: room for one
    assert worker_a.admit("alice", tokens, NOW + 5, amounts={"tokens": 1}) is not None  # 100: none
    worker_b.finish(row(NOW + 5), "alice", tokens, 0, NOW + 6, reserved=60, reserved_at=NOW + 5)
    # The day limit holds only what was really used: 40 of 1000.
    assert worker_b.admit("alice", [TPD], NOW + 7, amounts={"tokens": 960}) is None
    assert worker_b.admit("alice", [TPD], NOW + 8, amounts={"tokens": 1}) is not None


def test_reservations_hold_under_concurrency(open_backend):
    workers = [open_backend() for _ in range(4)]

    def attempts(store):
        return sum(store.admit("alice", [TPM], NOW, amounts={"tokens": 30}) is None for _ in range(10))

    with ThreadPoolExecutor(4) as pool:
        admitted = sum(pool.map(attempts, workers))
    assert admitted == 4  # 0, 30, 60, 90 had room; at 120 none did


def test_a_reservation_released_late_settles_a_window_that_has_moved_on(store):
    assert store.admit("alice", [TPM], NOW, amounts={"tokens": 500}) is None
    # A long stream: it ends after its reservation's bucket has left the window.
    store.finish(row(NOW), "alice", [TPM], 40, NOW + 3600, reserved=500, reserved_at=NOW)
    assert store.admit("alice", [TPM], NOW + 3601, amounts={"tokens": 59}) is None  # 40 + 59
    assert store.admit("alice", [TPM], NOW + 3601, amounts={"tokens": 1}) is None
    assert store.admit("alice", [TPM], NOW + 3601, amounts={"tokens": 1}) is not None


def test_extra_calls_count_against_request_limits(store):
    assert store.admit("alice", [RPM], NOW) is None  # the request itself
    assert store.admit("alice", [RPM], NOW, amounts={"requests": 2}) is None  # its two more calls
    limit, _ = store.admit("alice", [RPM], NOW + 1)
    assert limit == RPM


def test_concurrency_slots_are_taken_released_and_lapse(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    assert worker_a.admit("alice", [RPM, SLOTS], NOW, holder="r1") is None
    assert worker_b.admit("alice", [SLOTS], NOW, holder="r2") is None
    limit, wait = worker_a.admit("alice", [SLOTS], NOW, holder="r3")
    assert limit == SLOTS and 0 < wait <= 1
    assert worker_a.admit("bob", [SLOTS], NOW, holder="r4") is None  # counted apart
    worker_b.finish(row(NOW), "alice", [], 0, NOW + 1, holder="r1")
    assert worker_a.admit("alice", [SLOTS], NOW + 1, holder="r3") is None
    assert worker_a.admit("alice", [SLOTS], NOW + 1, holder="r5") is not None
    # A slot whose holder never ended (its worker was killed) lapses after the lease.
    assert worker_a.admit("alice", [SLOTS], NOW + 901, holder="r5") is None
    assert worker_a.admit("alice", [SLOTS], NOW + 901, holder="r6") is None


def test_slots_are_atomic_under_concurrency(open_backend):
    workers = [open_backend() for _ in range(4)]

    def attempts(pair):
        n, store = pair
        return sum(store.admit("alice", [SLOTS], NOW, holder=f"w{n}-{i}") is None for i in range(10))

    with ThreadPoolExecutor(4) as pool:
        admitted = sum(pool.map(attempts, enumerate(workers)))
    assert admitted == 2


# -- admin logins ------------------------------------------------------------------------------------


def doubling(failures: int) -> float:
    return 0.0 if failures < 2 else 2.0 ** (failures - 2)


def test_login_attempts_back_off_atomically_and_are_forgotten(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    assert worker_a.login_attempt("10.0.0.1", NOW, doubling, 60) is None
    assert worker_b.login_attempt("10.0.0.1", NOW, doubling, 60) is None
    assert worker_a.login_attempt("10.0.0.1", NOW + 0.5, doubling, 60) == pytest.approx(0.5)
    assert worker_b.login_attempt("10.0.0.2", NOW + 0.5, doubling, 60) is None  # apart
    assert worker_b.login_attempt("10.0.0.1", NOW + 1, doubling, 60) is None  # third failure
    assert worker_a.login_attempt("10.0.0.1", NOW + 1, doubling, 60) == pytest.approx(2.0)
    worker_a.login_succeeded("10.0.0.1")
    assert worker_b.login_attempt("10.0.0.1", NOW + 1, doubling, 60) is None


def test_login_attempts_are_counted_atomically(open_backend):
    workers = [open_backend() for _ in range(4)]

    def attempts(store):
        return sum(store.login_attempt("10.0.0.1", NOW, doubling, 60) is None for _ in range(10))

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(attempts, workers)) == 2  # the free ones; then each waits


def test_revoked_sessions_are_shared_until_they_expire(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    assert not worker_b.session_revoked("s1", NOW)
    worker_a.revoke_session("s1", time.time() + 60)
    assert worker_b.session_revoked("s1", time.time()) and not worker_b.session_revoked("s2", time.time())
    worker_a.revoke_session("s3", time.time() - 1)  # already expired: nothing to remember
    assert not worker_b.session_revoked("s3", time.time())
