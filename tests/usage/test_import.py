"""Usage import: an export's JSON Lines read back, each request id once, bad lines counted, never fatal."""

import io
import json
import time

import pytest

from app.store import USAGE_FIELDS
from app.store.sqlite import SQLiteStore
from app.usage.export import main
from app.usage.imports import import_jsonl, usage_row
from tests.conftest import make_env

NOW = time.time()


def record(request_id: str, t: float = NOW - 60, **values) -> dict:
    """A record as `export --format jsonl` writes it."""
    row = dict.fromkeys(USAGE_FIELDS)
    row.update(
        time=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z",
        request_id=request_id,
        client="alice",
        dialect="openai",
        endpoint="/v1/chat/completions",
        model="gemini-2.5-flash",
        stream=True,
        status=200,
        prompt_tokens=10,
        completion_tokens=5,
        thought_tokens=0,
        first_byte_ms=12.5,
        total_ms=80.0,
        attempts=1,
        key_label="key-1",
    )
    row.update(values)
    return row


def jsonl(*records) -> list[bytes]:
    return [json.dumps(r).encode() + b"\n" for r in records]


@pytest.fixture
def store(tmp_path):
    opened = SQLiteStore(tmp_path / "data" / "gemgate.db")
    yield opened
    opened.close()


def test_an_export_reads_back_typed_and_a_second_import_adds_nothing(store):
    lines = jsonl(record("req_a"), record("req_b", status=429, error="rate_limit", first_byte_ms=None))
    report = import_jsonl(store, lines)
    assert (report.added, report.present, report.refused) == (2, 0, 0)
    assert import_jsonl(store, lines).present == 2
    a, b = store.usage(0, NOW + 10)
    assert (
        a["request_id"] == "req_a" and a["stream"] is True and a["time"] == pytest.approx(NOW - 60, abs=0.001)
    )
    assert (b["status"], b["error"], b["first_byte_ms"]) == (429, "rate_limit", None)


@pytest.mark.parametrize(
    "line, problem",
    [
        (b"not json", "line 1:"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps(record("")).encode(), "no request_id"),
        (json.dumps(record("r", time="yesterday")).encode(), "time"),
        (json.dumps(record("r", time="2026-01-01T00:00:00")).encode(), "time"),  # no zone: ambiguous
        (json.dumps(record("r", status="200")).encode(), "status"),
        (json.dumps(record("r", stream="yes")).encode(), "stream"),
        (json.dumps(record("r", total_ms="fast")).encode(), "total_ms"),
        (json.dumps(record("r", model=["x"])).encode(), "model"),
    ],
)
def test_bad_lines_are_refused_by_line_and_the_rest_goes_in(store, line, problem):
    report = import_jsonl(store, [line, b"\n", *jsonl(record("req_ok"))])
    assert (report.added, report.refused) == (1, 1)
    assert problem in report.summary() and report.problems[0].startswith("line 1:")


def test_records_past_the_retention_are_skipped(store):
    report = import_jsonl(store, jsonl(record("old", t=NOW - 40 * 86400), record("new")), retention_days=30)
    assert (report.added, report.expired) == (1, 1)
    assert "older than USAGE_RETENTION_DAYS" in report.summary()


def test_unknown_fields_are_ignored_and_unix_times_taken():
    row = usage_row({**record("r"), "time": 1700000000, "a_newer_field": 1})
    assert row["time"] == 1700000000.0 and set(row) == set(USAGE_FIELDS)


def test_the_cli_imports_a_file_or_standard_input(tmp_path, monkeypatch, capsys):
    env = make_env(DATA_DIR=str(tmp_path / "data"))
    path = tmp_path / "usage.jsonl"
    path.write_bytes(b"".join(jsonl(record("req_1"), record("req_2"))))
    assert main(["import", str(path)], env=env) == 0
    assert "imported 2 usage records; 0 were there already" in capsys.readouterr().err
    monkeypatch.setattr(
        "sys.stdin", io.TextIOWrapper(io.BytesIO(b"".join(jsonl(record("req_2"), record("req_3")))))
    )
    assert main(["import", "-"], env=env) == 0
    assert "imported 1 usage records; 1 were there already" in capsys.readouterr().err
    out = io.StringIO()
    assert main(["export", "--format", "jsonl"], env=env, stdout=out) == 0
    assert [json.loads(line)["request_id"] for line in out.getvalue().splitlines()] == [
        "req_1",
        "req_2",
        "req_3",
    ]
    assert main(["import", str(tmp_path / "missing.jsonl")], env=env) == 2
    (tmp_path / "bad.jsonl").write_text("nonsense\n")
    assert main(["import", str(tmp_path / "bad.jsonl")], env=env) == 1


def test_an_export_round_trips_through_the_cli(tmp_path):
    source = make_env(DATA_DIR=str(tmp_path / "a"))
    target = make_env(DATA_DIR=str(tmp_path / "b"))
    first = SQLiteStore(tmp_path / "a" / "gemgate.db")
    row = usage_row(record("req_rt", client="bob", key_label=None, error="overloaded"))
    first.finish(row, "bob", [], 0, NOW)
    first.close()
    out = io.StringIO()
    main(["export", "--format", "jsonl"], env=source, stdout=out)
    (tmp_path / "x.jsonl").write_text(out.getvalue())
    assert main(["import", str(tmp_path / "x.jsonl")], env=target) == 0
    second = SQLiteStore(tmp_path / "b" / "gemgate.db")
    [back] = second.usage(0, NOW + 10)
    second.close()
    assert back == {**row, "time": pytest.approx(row["time"], abs=0.001)}
