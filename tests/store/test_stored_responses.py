"""Stored responses in the shared store, both backends: owners apart, lifetimes, the per-owner bound."""

import os
import time

from app.store.sqlite import SQLiteStore

NOW = 1_700_000_000.0
DAY = 86400.0
LIMIT = 1 << 20


def put(store, owner: str, response_id: str, data: bytes, *, now: float = NOW, limit: int = LIMIT):
    store.put_response(owner, response_id, data, now=now, expires=now + DAY, owner_bytes=limit)


def test_a_response_is_read_back_by_its_owner_only_and_by_every_worker(open_backend):
    worker_a, worker_b = open_backend(), open_backend()
    blob = os.urandom(2000)  # bytes of any value survive
    put(worker_a, "owner-1", "resp_1", blob)
    assert worker_b.get_response("owner-1", "resp_1", NOW) == blob
    assert worker_b.get_response("owner-2", "resp_1", NOW) is None
    assert worker_b.get_response("owner-1", "resp_2", NOW) is None


def test_a_response_expires(store):
    put(store, "o", "resp_1", b"x")
    assert store.get_response("o", "resp_1", NOW + DAY - 1) == b"x"
    assert store.get_response("o", "resp_1", NOW + DAY) is None


def test_delete_removes_only_the_owners_response(store):
    put(store, "o", "resp_1", b"one")
    assert store.delete_response("other", "resp_1") is False
    assert store.get_response("o", "resp_1", NOW) == b"one"
    assert store.delete_response("o", "resp_1") is True
    assert store.get_response("o", "resp_1", NOW) is None
    assert store.delete_response("o", "resp_1") is False


def test_an_owner_over_its_bound_loses_its_oldest_responses_first(store):
    for i in range(5):
        put(store, "o", f"resp_{i}", b"x" * 400, now=NOW + i, limit=1000)
    put(store, "other", "resp_x", b"y" * 900, now=NOW, limit=1000)
    kept = [i for i in range(5) if store.get_response("o", f"resp_{i}", NOW + 10)]
    assert kept == [3, 4]  # 2 x 400 fit in 1000; a third would not
    assert store.get_response("other", "resp_x", NOW + 10) == b"y" * 900  # another owner is untouched


def test_replacing_a_response_counts_its_bytes_once(store):
    for _ in range(3):
        put(store, "o", "resp_1", b"x" * 600, limit=1000)
    put(store, "o", "resp_2", b"y" * 300, now=NOW + 1, limit=1000)
    assert store.get_response("o", "resp_1", NOW + 2) == b"x" * 600
    assert store.get_response("o", "resp_2", NOW + 2) == b"y" * 300


def test_expired_responses_free_their_owners_room(store):
    put(store, "o", "resp_old", b"x" * 900, limit=1000)
    put(store, "o", "resp_new", b"y" * 900, now=NOW + DAY + 1, limit=1000)
    assert store.get_response("o", "resp_new", NOW + DAY + 2) == b"y" * 900
    put(store, "o", "resp_newer", b"z" * 50, now=NOW + DAY + 3, limit=1000)
    assert store.get_response("o", "resp_new", NOW + DAY + 4) == b"y" * 900  # the old one's room was freed


def test_sqlite_prune_deletes_expired_responses(tmp_path):
    # Redis needs no pruning: each entry's expiry is checked on read, and an owner's keys carry a TTL.
    store = SQLiteStore(tmp_path / "gemgate.db")
    store.put_response("o", "resp_1", b"x", now=0.0, expires=1.0, owner_bytes=LIMIT)
    store.put_response("o", "resp_2", b"y", now=0.0, expires=time.time() + DAY, owner_bytes=LIMIT)
    store.prune(0.0)
    ids = store._run(lambda db: db.execute("SELECT id FROM stored_response").fetchall())
    assert ids == [("resp_2",)]
    store.close()
