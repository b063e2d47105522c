"""The usage CLI: usage records exported as CSV or JSON Lines, imported from JSON Lines, and pruned.

    python -m app.usage export [--format csv|jsonl] [--since WHEN] [--until WHEN] [--client NAME] [--output FILE]
    python -m app.usage import FILE.jsonl      (or - for standard input; each request id is added once)
    python -m app.usage prune

WHEN is an ISO 8601 date or time (UTC unless it says otherwise) or an age such as 90m, 24h, 7d.
The store is the one the gateway's environment names (DATA_DIR, or REDIS_URL).
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO

from .. import jsonx
from ..config import Config, ConfigError
from ..store import USAGE_FIELDS, Store, StoreUnavailable, open_store
from .imports import import_jsonl

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def parse_when(text: str, now: float) -> float:
    """Unix seconds from an ISO 8601 date/time (UTC when naive) or an age like '24h'."""
    text = text.strip()
    age = _AGE.match(text)
    if age:
        return now - float(age.group(1)) * _SECONDS[age.group(2)]
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 date/time nor an age such as 90m, 24h, 7d"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def export_row(row: dict) -> dict:
    out = dict(row)
    out["time"] = iso(row["time"])
    for name in ("first_byte_ms", "total_ms"):
        if out[name] is not None:
            out[name] = round(out[name], 1)
    return out


def write_jsonl(rows: Iterable[dict], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(jsonx.dumps(export_row(row)).decode() + "\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(USAGE_FIELDS)
    count = 0
    for row in rows:
        row = export_row(row)
        writer.writerow([_csv_cell(row[name]) for name in USAGE_FIELDS])
        count += 1
    return count


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # Model names and paths come from clients: never let a spreadsheet read one as a formula.
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        text = "'" + text
    return text


WRITERS = {"csv": write_csv, "jsonl": write_jsonl}


def cli_config(env=None) -> Config:
    env = dict(os.environ if env is None else env)
    if not env.get("API_KEYS", "").strip():
        # The CLI authenticates no one: a throwaway key keeps Config from generating one on disk.
        env["API_KEYS"] = "cli-" + secrets.token_hex(16)
    env["ADMIN_PASSWORD"] = "off"  # nor does it serve the admin page: no password generated either
    return Config.from_env(env)


def main(argv: list[str] | None = None, env=None, stdout: IO[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.usage", description="gemgate usage records")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write usage records as CSV or JSON Lines")
    export.add_argument("--format", choices=sorted(WRITERS), default="csv")
    export.add_argument("--since", help="ISO 8601 date/time or age (24h, 7d); default: the oldest record")
    export.add_argument("--until", help="ISO 8601 date/time or age; default: now")
    export.add_argument("--client", help="only this client key name")
    export.add_argument("--output", help="file to write; default: standard output")
    imports = commands.add_parser(
        "import", help="add records from a JSON Lines export (each request id once)"
    )
    imports.add_argument("file", help="a file written by `export --format jsonl`, or - for standard input")
    commands.add_parser("prune", help="delete records older than USAGE_RETENTION_DAYS now")
    args = parser.parse_args(argv)
    now = time.time()
    try:
        since = parse_when(args.since, now) if getattr(args, "since", None) else 0.0
        until = parse_when(args.until, now) if getattr(args, "until", None) else now + 1
    except ValueError as exc:
        parser.error(str(exc))
    store_log = logging.getLogger("app.store")
    store_log.disabled = True  # the CLI says what failed itself, once
    try:
        return _run(args, since, until, now, env, stdout or sys.stdout)
    except StoreUnavailable as exc:
        print(f"gemgate: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        store_log.disabled = False


def _run(args, since: float, until: float, now: float, env, stdout: IO[str]) -> int:
    try:
        config = cli_config(env)
    except ConfigError as exc:
        print(f"gemgate: configuration error: {exc}", file=sys.stderr)
        return 2
    store = open_store(config)
    try:
        if args.command == "import":
            return _import(store, args.file, config.usage_retention_days)
        if args.command == "prune":
            if not config.usage_retention_days:
                print("USAGE_RETENTION_DAYS is 0: records are kept forever", file=sys.stderr)
                return 0
            deleted = store.prune(now - config.usage_retention_days * 86400)
            print(f"deleted {deleted} usage records", file=sys.stderr)
            return 0
        out = open(args.output, "w", newline="", encoding="utf-8") if args.output else stdout  # noqa: SIM115
        try:
            count = WRITERS[args.format](store.usage(since, until, args.client), out)
        finally:
            if args.output:
                out.close()
        print(f"exported {count} usage records", file=sys.stderr)
        return 0
    finally:
        store.close()


def _import(store: Store, path: str, retention_days: float) -> int:
    try:
        source = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"gemgate: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        report = import_jsonl(store, source, retention_days)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    print(report.summary(), file=sys.stderr)
    return 1 if report.refused and not report.added else 0
