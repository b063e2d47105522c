"""SQLite specifics: waiting for another process's lock without stalling the worker, and bad files."""

import shutil
import sqlite3
import threading
import time

import pytest

from app import create_app
from app.config import ConfigError
from app.state import state_of
from app.store import StoreUnavailable
from app.store import sqlite as sqlite_store
from app.store.sqlite import SQLiteStore
from app.upstream.key_pool import KeyState
from tests.conftest import make_env


def hold_write_lock(path, seconds: float) -> threading.Thread:
    """Another process's long write transaction, as far as this store can tell."""
    ready = threading.Event()

    def hold():
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait()
    return thread


def test_a_write_waits_for_the_lock_with_cooperative_sleeps(tmp_path, monkeypatch):
    store = SQLiteStore(tmp_path / "gemgate.db")
    sleeps = []
    real_sleep = time.sleep
    holder = hold_write_lock(tmp_path / "gemgate.db", 0.2)
    me = threading.current_thread()
    monkeypatch.setattr(
        sqlite_store.time,
        "sleep",
        lambda s: (threading.current_thread() is me and sleeps.append(s), real_sleep(s)),
    )
    started = time.monotonic()
    store.update_key_state("k", lambda s: KeyState(failures=1))
    holder.join()
    assert time.monotonic() - started >= 0.15
    # The wait was Python sleeps (gevent's, under gunicorn), not SQLite's blocking busy handler.
    assert len(sleeps) > 5 and max(sleeps) <= 0.005
    assert store.key_states()["k"].failures == 1
    assert store.key_states() is not None  # reads never wait for a writer in WAL mode
    store.close()


def test_a_lock_held_too_long_is_store_unavailable(tmp_path, monkeypatch):
    store = SQLiteStore(tmp_path / "gemgate.db")
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT", 0.05)
    holder = hold_write_lock(tmp_path / "gemgate.db", 0.5)
    with pytest.raises(StoreUnavailable) as err:
        store.finish({"time": 1.0}, None, (), 0, 1.0)
    assert "locked" in err.value.detail
    holder.join()
    store.close()


def test_reads_go_on_while_another_process_writes(tmp_path):
    store = SQLiteStore(tmp_path / "gemgate.db")
    store.update_key_state("k", lambda s: KeyState(failures=2))
    holder = hold_write_lock(tmp_path / "gemgate.db", 0.3)
    started = time.monotonic()
    assert store.key_states()["k"].failures == 2
    assert time.monotonic() - started < 0.1
    holder.join()
    store.close()


def test_an_unusable_data_dir_stops_the_start_naming_it(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="DATA_DIR"):
        create_app(make_env(DATA_DIR=str(tmp_path / "file")))


def test_an_older_database_gains_new_columns(tmp_path):
    path = tmp_path / "gemgate.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE usage (id INTEGER PRIMARY KEY, time REAL, client TEXT)")
        db.execute("INSERT INTO usage (time, client) VALUES (5.0, 'old')")
    store = SQLiteStore(path)
    store.finish({"time": 6.0, "client": "new", "status": 200, "stream": True}, None, (), 0, 6.0)
    rows = list(store.usage(0, 10))
    assert [(r["client"], r["status"], r["stream"]) for r in rows] == [
        ("old", None, None),
        ("new", 200, True),
    ]
    store.close()


def test_an_older_key_state_table_keeps_its_rows_and_gains_the_new_columns(tmp_path):
    path = tmp_path / "gemgate.db"
    with sqlite3.connect(path) as db:  # as the first version made it
        db.execute(
            "CREATE TABLE key_state (key_id TEXT PRIMARY KEY, cooldown_until REAL NOT NULL, "
            "disabled_until REAL NOT NULL, failures INTEGER NOT NULL, last_error TEXT)"
        )
        db.execute("INSERT INTO key_state VALUES ('abc', 50.0, 0, 2, 'HTTP 429')")
    store = SQLiteStore(path)
    assert store.key_states() == {"abc": KeyState(cooldown_until=50.0, failures=2, last_error="HTTP 429")}
    store.update_key_state("abc/m", lambda s: KeyState(soft_until=9.0))
    assert store.key_states()["abc/m"].soft_until == 9.0
    store.close()


def test_healthz_says_503_when_the_store_is_away(tmp_path):
    app = create_app(make_env(DATA_DIR=str(tmp_path / "data")))
    state_of(app).store.close()
    shutil.rmtree(tmp_path / "data")  # the database and the generated secrets beside it
    (tmp_path / "data").write_text("")  # the directory is gone and a file sits in its place
    r = app.test_client().get("/healthz")
    assert r.status_code == 503 and r.json["status"] == "unavailable" and r.json["store"] == "sqlite"


def test_a_forked_child_opens_its_own_connection(tmp_path):
    import os

    store = SQLiteStore(tmp_path / "gemgate.db")
    store.update_key_state("parent", lambda s: KeyState(failures=1))
    pid = os.fork()
    if pid == 0:  # the child: as a gunicorn worker would be, had the app been preloaded
        try:
            store.update_key_state("child", lambda s: KeyState(failures=2))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert sorted(store.key_states()) == ["child", "parent"]
    store.update_key_state("parent", lambda s: KeyState(failures=3))  # the parent's is intact
    assert store.key_states()["parent"].failures == 3
    store.close()


def test_prune_deletes_in_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "_PRUNE_BATCH", 3)
    store = SQLiteStore(tmp_path / "gemgate.db")
    for t in range(12):
        store.finish({"time": float(t)}, None, (), 0, float(t))
    assert store.prune(10.0) == 10
    assert [r["time"] for r in store.usage(0, 100)] == [10.0, 11.0]
    store.close()
