"""Usage accounting: the sink, its failure mode, retention, and the CSV / JSONL export CLI."""

import csv
import io
import json
import logging
import sqlite3

import pytest

from app import create_app
from app.state import state_of
from app.store import USAGE_FIELDS, StoreUnavailable
from app.store.sqlite import SQLiteStore
from app.usage.export import main, parse_when
from app.usage.quotas import Quotas
from app.usage.record import RequestRecord
from app.usage.sink import UsageSink, usage_row
from tests.conftest import AUTH, BASE, fixture_bytes, make_env

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
NOW = 1_700_000_000.0


def record(started=NOW, **values) -> RequestRecord:
    rec = RequestRecord("req_x", "openai", "/v1/chat/completions", started=started, client="key-1")
    for name, value in values.items():
        setattr(rec, name, value)
    return rec


@pytest.fixture
def env(tmp_path):
    return make_env(DATA_DIR=str(tmp_path / "data"))


def run_cli(env, *argv) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), env=env, stdout=out)
    return code, out.getvalue()


def test_every_request_is_recorded_before_its_response_ends(env, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    stream = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    mocked.post(BASE + stream, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    app = create_app(env)
    client = app.test_client()
    ids = [client.post(GEN, json=BODY, headers=AUTH).headers["x-request-id"]]
    with client.post(stream + "?alt=sse", json=BODY, headers=AUTH, buffered=False) as r:
        ids.append(r.headers["x-request-id"])
        assert b"".join(r.response)
    rows = list(state_of(app).store.usage(0, 2e9))
    assert [r["request_id"] for r in rows] == ids
    unary, streamed = rows
    assert (unary["client"], unary["dialect"], unary["endpoint"], unary["model"]) == (
        "key-1",
        "gemini",
        "/v1beta/models/{model}:generateContent",  # the route, not the raw path
        "gemini-2.5-flash",
    )
    assert (unary["stream"], unary["status"], unary["attempts"], unary["key_label"]) == (
        False,
        200,
        1,
        "key-1",
    )
    assert (unary["prompt_tokens"], unary["completion_tokens"], unary["thought_tokens"]) == (11, 1, 34)
    assert 0 <= unary["first_byte_ms"] <= unary["total_ms"]
    assert streamed["stream"] is True and streamed["key_label"] == "key-2"
    assert (streamed["prompt_tokens"], streamed["completion_tokens"], streamed["thought_tokens"]) == (
        29,
        115,
        199,
    )


class BrokenStore:
    def finish(self, *args, **kwargs):
        raise StoreUnavailable("disk full")

    def prune(self, before):
        raise StoreUnavailable("disk full")


def test_a_record_the_store_refuses_goes_whole_to_the_log(caplog):
    sink = UsageSink(BrokenStore(), Quotas((), BrokenStore()), retention_days=30, clock=lambda: NOW)
    with caplog.at_level(logging.ERROR):
        sink(record(client="alice", model="gemini-2.5-flash", status=200, prompt_tokens=7))
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("usage record not stored")]
    assert len(logged) == 1
    assert json.loads(logged[0].split(": ", 1)[1]) == {
        **usage_row(record(client="alice", model="gemini-2.5-flash", status=200, prompt_tokens=7))
    }


class FlakyStore:
    """A store that is down until `up` is set, then stores through to SQLite."""

    def __init__(self, store):
        self.store, self.up = store, False

    def __getattr__(self, name):
        def call(*args, **kwargs):
            if not self.up:
                raise StoreUnavailable("connection refused")
            return getattr(self.store, name)(*args, **kwargs)

        return call


def test_records_refused_while_the_store_is_down_are_settled_once_it_is_back(tmp_path, caplog):
    from app.config import ClientKey

    store = SQLiteStore(tmp_path / "db")
    flaky = FlakyStore(store)

    def charged() -> int:
        with sqlite3.connect(tmp_path / "db") as db:
            return db.execute("SELECT COALESCE(SUM(amount), 0) FROM quota WHERE client = 'alice'").fetchone()[
                0
            ]

    alice = ClientKey(name="alice", digest=bytes(32), tokens_per_day=1000)
    quotas = Quotas((alice,), store, clock=lambda: NOW)
    sink = UsageSink(flaky, quotas, retention_days=0, clock=lambda: NOW)
    held = []
    for tokens in (100, 200):
        rec = record(client="alice", status=200, prompt_tokens=tokens)
        quotas.reserve(rec, output_tokens=300, input_bytes=0)  # 300 held against the day's 1000
        held.append(rec)
    with caplog.at_level(logging.ERROR):
        for rec in held:
            sink(rec)
    assert [r.getMessage().startswith("usage record not stored yet") for r in caplog.records].count(True) == 2
    assert list(store.usage(0, 2e9)) == []
    assert charged() == 600  # what the two reserved is still held against the day's 1000

    flaky.up = True
    sink(record(client="alice", status=200, prompt_tokens=50))
    assert sorted(r["prompt_tokens"] for r in store.usage(0, 2e9)) == [50, 100, 200]
    assert charged() == 350  # what they used, nothing held
    sink(record(client="alice", status=200))
    assert len(list(store.usage(0, 2e9))) == 4 and charged() == 350  # each stored and charged once


def test_a_long_backlog_is_stored_a_few_records_per_request(tmp_path, monkeypatch):
    monkeypatch.setattr("app.usage.sink.SETTLE_AT_ONCE", 3)
    store = SQLiteStore(tmp_path / "db")
    flaky = FlakyStore(store)
    sink = UsageSink(flaky, Quotas((), store), retention_days=0, clock=lambda: NOW)
    for _ in range(7):
        sink(record(client="alice", status=503))
    flaky.up = True
    stored = []
    for _ in range(3):
        sink(record(client="alice", status=200))
        stored.append(len(list(store.usage(0, 2e9))))
    assert stored == [4, 8, 10]  # its own and three kept ones, each time
    store.close()
    store.close()


def test_retention_prunes_at_most_hourly(tmp_path):
    store = SQLiteStore(tmp_path / "db")
    clock = [NOW - 40 * 86400]
    sink = UsageSink(store, Quotas((), store), retention_days=30, clock=lambda: clock[0])
    sink(record(started=clock[0]))  # 40 days ago
    clock[0] = NOW - 86400
    sink(record(started=clock[0]))
    clock[0] = NOW
    sink(record(started=NOW))  # an hour and more has passed: prunes what is over 30 days old
    assert [r["time"] for r in store.usage(0, 2e9)] == [NOW - 86400, NOW]
    store.close()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("24h", NOW - 86400),
        ("90m", NOW - 5400),
        ("7d", NOW - 7 * 86400),
        ("2023-11-14", 1699920000.0),
        ("2023-11-14T22:13:20Z", NOW),
        ("2023-11-14T23:13:20+01:00", NOW),
        ("2023-11-14 22:13:20", NOW),  # naive: UTC
    ],
)
def test_parse_when(text, expected):
    assert parse_when(text, NOW) == expected


def test_bad_when_is_a_usage_error(env, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli(env, "export", "--since", "yesterday")
    assert exit_.value.code == 2 and "yesterday" in capsys.readouterr().err


def _seed(env):
    store = state_of(create_app(env)).store
    rows = [
        record(
            started=NOW,
            client="alice",
            model="gemini-2.5-flash",
            status=200,
            prompt_tokens=3,
            total_ms=12.345,
        ),
        record(started=NOW + 60, client="bob", model='=HYPERLINK("x")', status=400, stream=True),
        record(started=NOW + 120, client="alice", model="gemini-2.5-pro", status=200, key_label="key-2"),
    ]
    for rec in rows:
        store.finish(usage_row(rec), rec.client, (), 0, rec.started)
    return rows


def test_export_jsonl_with_a_window_and_a_client(env):
    _seed(env)
    code, out = run_cli(env, "export", "--format", "jsonl", "--client", "alice")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["model"] for line in lines] == ["gemini-2.5-flash", "gemini-2.5-pro"]
    assert lines[0]["time"] == "2023-11-14T22:13:20.000Z" and lines[0]["total_ms"] == 12.3
    assert list(lines[0]) == list(USAGE_FIELDS) and lines[0]["first_byte_ms"] is None
    code, out = run_cli(
        env,
        "export",
        "--format",
        "jsonl",
        "--since",
        "2023-11-14T22:14:00Z",
        "--until",
        "2023-11-14T22:15:20Z",
    )
    assert [json.loads(line)["client"] for line in out.splitlines()] == ["bob"]


def test_export_csv_is_spreadsheet_safe(env, tmp_path):
    _seed(env)
    target = tmp_path / "usage.csv"
    code, _ = run_cli(env, "export", "--output", str(target))
    rows = list(csv.DictReader(target.open()))
    assert code == 0 and len(rows) == 3 and list(rows[0]) == list(USAGE_FIELDS)
    assert rows[0]["stream"] == "false" and rows[1]["stream"] == "true" and rows[0]["error"] == ""
    assert rows[1]["model"] == '\'=HYPERLINK("x")'  # never a formula
    assert rows[2]["key_label"] == "key-2"


def test_prune_command(env):
    _seed(env)
    code, _ = run_cli({**env, "USAGE_RETENTION_DAYS": "1"}, "prune")
    assert code == 0
    assert run_cli(env, "export")[1].strip().splitlines() == [",".join(USAGE_FIELDS)]


def test_the_cli_never_generates_a_client_key_or_an_admin_password(tmp_path):
    data = tmp_path / "data"
    code, out = run_cli({"DATA_DIR": str(data)}, "export")
    assert code == 0 and out.strip() == ",".join(USAGE_FIELDS)
    assert not (data / "client_api_key").exists() and not (data / "admin_password").exists()


def test_the_cli_says_when_the_store_is_away(tmp_path, capsys):
    from tests.conftest import free_port

    code, _ = run_cli(
        {"DATA_DIR": str(tmp_path), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, "export"
    )
    assert code != 0 and "Redis" in capsys.readouterr().err


def test_a_kept_record_the_store_cannot_take_does_not_block_the_others(tmp_path, caplog):
    store = SQLiteStore(tmp_path / "db")
    flaky = FlakyStore(store)
    sink = UsageSink(flaky, Quotas((), store), retention_days=0, clock=lambda: NOW)
    sink(record(client="alice", status=503, request_id="bad"))
    sink(record(client="alice", status=503))
    real_finish = store.finish

    def finish(row, *args, **kwargs):
        if row["request_id"] == "bad":
            raise ValueError("cannot be stored")
        return real_finish(row, *args, **kwargs)

    store.finish = finish
    flaky.up = True
    with caplog.at_level(logging.ERROR):
        sink(record(client="alice", status=200))
    assert "could not be stored; dropped" in caplog.text
    sink(record(client="alice", status=200))
    assert sorted(r["status"] for r in store.usage(0, 2e9)) == [200, 200, 503]
    store.close()
