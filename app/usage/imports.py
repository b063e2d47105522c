"""Usage import: records exported as JSON Lines (by `python -m app.usage export`, here or on another
gateway) read back into the store, each request id at most once."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .. import jsonx
from ..store import USAGE_COLUMNS, Store

BATCH = 1000  # rows per store call
MAX_PROBLEMS = 5  # lines named in a report; the rest are only counted
_INTEGER_COLUMNS = {name for name, kind in USAGE_COLUMNS if kind is int}
_FLOAT_COLUMNS = {name for name, kind in USAGE_COLUMNS if kind is float} - {"time"}


@dataclass
class ImportReport:
    added: int = 0  # rows stored
    present: int = 0  # rows whose request id the store had already
    expired: int = 0  # rows older than USAGE_RETENTION_DAYS: they would be pruned at once
    refused: int = 0  # lines that are not usage records
    problems: list[str] = field(default_factory=list)  # the first few refusals, by line

    def summary(self) -> str:
        text = f"imported {self.added} usage records; {self.present} were there already"
        if self.expired:
            text += f", {self.expired} are older than USAGE_RETENTION_DAYS"
        if self.refused:
            text += f"; {self.refused} lines refused ({'; '.join(self.problems)})"
        return text


def import_jsonl(store: Store, lines: Iterable[bytes | str], retention_days: float = 0.0) -> ImportReport:
    """Read JSON Lines of usage records into `store`, in batches; bad lines are counted, never fatal."""
    report = ImportReport()
    oldest = time.time() - retention_days * 86400 if retention_days else float("-inf")
    batch: list[dict] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = usage_row(jsonx.loads(line))
        except ValueError as exc:
            report.refused += 1
            if len(report.problems) < MAX_PROBLEMS:
                report.problems.append(f"line {number}: {exc}")
            continue
        if row["time"] < oldest:
            report.expired += 1
            continue
        batch.append(row)
        if len(batch) >= BATCH:
            _store(store, batch, report)
    if batch:
        _store(store, batch, report)
    return report


def _store(store: Store, batch: list[dict], report: ImportReport) -> None:
    added = store.import_usage(batch)
    report.added += added
    report.present += len(batch) - added
    batch.clear()


def usage_row(record: object) -> dict:
    """A usage row from an exported record; ValueError says what is wrong with it."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    request_id = record.get("request_id")
    if not isinstance(request_id, str) or not request_id or len(request_id) > 200:
        raise ValueError("no request_id")
    row: dict = {}
    for name, kind in USAGE_COLUMNS:
        value = record.get(name)
        if name == "time":
            value = _time(value)
        elif value is None:
            pass
        elif name in _INTEGER_COLUMNS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} is not a whole number")
        elif name in _FLOAT_COLUMNS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} is not a number")
            value = float(value)
        elif kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{name} is not true or false")
        elif not isinstance(value, str) or len(value) > 1000:
            raise ValueError(f"{name} is not a short text")
        row[name] = value
    return row


def _time(value: object) -> float:
    """An export's ISO 8601 time (or Unix seconds) as Unix seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if when.tzinfo is not None:
                return when.timestamp()
    raise ValueError("time is not an ISO 8601 time with its zone")
