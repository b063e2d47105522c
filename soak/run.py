"""The soak test: mixed traffic through a real gateway while the fake Gemini fails now and then.

    .venv/bin/python soak/run.py                 # 10 minutes, 64 clients, 5 % upstream faults
    .venv/bin/python soak/run.py --duration 60   # a short run
    .venv/bin/python soak/run.py --help

It starts the fake Gemini (tests/fake_upstream.py) and gemgate (gunicorn, gevent workers) on loopback,
scripts the fake to fail a share of calls (HTTP 429/500/503, resets and stalls before the answer, and
resets and stalls in the middle of a stream), and keeps `--concurrency` clients busy with every dialect,
whole and streamed, plus some bad requests. Then it checks, and exits 1 if any check fails:

  - no client saw a 5xx that the gateway made itself (an internal error, a store failure): only 5xx
    mapped from Gemini's own failures after the retries, in the dialect's shape;
  - no stream ended early without an error event, and none carried an internal error;
  - no usage record was lost: every request id a client with a valid key saw is in
    `python -m app.usage export`, once (a 401 has no client and is not stored);
  - memory stayed flat: each worker's RSS at the end is within `--max-growth-mib` of its RSS after
    the warm-up, and no worker died or was replaced;
  - the gateway logged no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
CLIENT_KEY = "soak-client-key"
UPSTREAM_KEYS = ",".join(f"AIzaSySOAK{i}{'x' * 28}" for i in range(8))
MODEL = "gemini-2.5-flash"
INTERNAL = ("The gateway hit an internal error", "state store is unavailable")

# -- the traffic ----------------------------------------------------------------------------------------

TEXT = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}]}
MESSAGE = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": "Hello"}]}
GOOGLE = {"x-goog-api-key": CLIENT_KEY}
OPENAI = {"Authorization": f"Bearer {CLIENT_KEY}"}
ANTHROPIC = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int
    method: str
    path: str
    headers: dict
    body: dict | bytes | None = None
    stream: str | None = None  # how its stream ends: "gemini", "openai", "anthropic"
    expect: int = 200  # the status it gets when nothing fails


KINDS = (
    Kind("gemini", 14, "POST", f"/v1beta/models/{MODEL}:generateContent", GOOGLE, TEXT),
    Kind(
        "gemini-sse",
        10,
        "POST",
        f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
        GOOGLE,
        TEXT,
        "gemini",
    ),
    Kind("openai", 14, "POST", "/v1/chat/completions", OPENAI, CHAT),
    Kind(
        "openai-stream",
        14,
        "POST",
        "/v1/chat/completions",
        OPENAI,
        {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
        "openai",
    ),
    Kind("anthropic", 10, "POST", "/v1/messages", ANTHROPIC, MESSAGE),
    Kind("anthropic-stream", 10, "POST", "/v1/messages", ANTHROPIC, {**MESSAGE, "stream": True}, "anthropic"),
    Kind(
        "embeddings",
        5,
        "POST",
        "/v1/embeddings",
        OPENAI,
        {"model": "gemini-embedding-001", "input": ["a", "b"]},
    ),
    Kind("count-tokens", 4, "POST", f"/v1beta/models/{MODEL}:countTokens", GOOGLE, TEXT),
    Kind(
        "anthropic-count",
        3,
        "POST",
        "/v1/messages/count_tokens",
        ANTHROPIC,
        {"model": MODEL, "messages": CHAT["messages"]},
    ),
    Kind("models", 4, "GET", "/v1/models", OPENAI),
    Kind("bad-json", 3, "POST", "/v1/chat/completions", OPENAI, b'{"model": ', expect=400),
    Kind("wrong-key", 2, "POST", "/v1/messages", {**ANTHROPIC, "x-api-key": "wrong"}, MESSAGE, expect=401),
    Kind(
        "unknown-model", 2, "POST", "/v1beta/models/unknown-model:generateContent", GOOGLE, TEXT, expect=404
    ),
)


def fault_script(rate: float) -> list[dict]:
    """Scripted answers for the fake: each call fails with probability `rate`, streams in mid-flight too."""
    before = [  # (share, answer): before the first byte, retried on another key
        (
            0.25,
            {
                "status": 503,
                "body": {
                    "error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
                },
            },
        ),
        (
            0.15,
            {
                "status": 429,
                "body": {
                    "error": {
                        "code": 429,
                        "message": "Quota exceeded.",
                        "status": "RESOURCE_EXHAUSTED",
                        "details": [
                            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.2s"}
                        ],
                    }
                },
            },
        ),
        (
            0.10,
            {
                "status": 500,
                "body": {"error": {"code": 500, "message": "Internal error.", "status": "INTERNAL"}},
            },
        ),
        (0.15, {"fault": "reset"}),
        (0.05, {"fault": "stall"}),
    ]
    during = [  # stream calls only: after the first event, the client gets an in-stream error
        (0.20, {"fault": "reset_after", "after": 2}),
        (0.10, {"fault": "stall_after", "after": 2}),
    ]
    stream_events = [
        json.loads(line[6:])
        for line in (ROOT / "tests/fixtures/gemini/stream_text.sse").read_text().splitlines()
        if line.startswith("data: ")
    ]
    script: list[dict] = []
    # Stream calls: their own faults, then the normal stream, so they never fall through to the others.
    script += _chances(
        [
            (rate * share, {"match": ":streamGenerateContent", "events": stream_events, **answer})
            for share, answer in before + during
        ]
    )
    script.append({"match": ":streamGenerateContent", "events": stream_events, "repeat": -1})
    scale = 1 / sum(share for share, _ in before)  # the other calls get the whole rate from `before`
    script += _chances([(rate * share * scale, answer) for share, answer in before])
    return script


def _chances(items: list[tuple[float, dict]]) -> list[dict]:
    """Items tried in order, each with the chance that makes its overall probability the one given."""
    out, taken = [], 0.0
    for probability, answer in items:
        out.append({**answer, "chance": probability / (1 - taken), "repeat": -1})
        taken += probability
    return out


# -- the processes --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"soak: {url} exited early (code {proc.returncode})")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"soak: {url} did not come up in {timeout}s")


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=35)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return sorted(found)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- the clients ------------------------------------------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)  # (kind, status)
    seen_ids: list[str] = field(default_factory=list)
    mapped_5xx: Counter = field(default_factory=Counter)  # (status, error type/message head)
    violations: list[str] = field(default_factory=list)
    stream_errors: Counter = field(default_factory=Counter)
    client_errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def violation(self, text: str) -> None:
        with self.lock:
            if len(self.violations) < 1000:
                self.violations.append(text)


def stream_outcome(kind: Kind, body: bytes) -> tuple[bool, bool]:
    """(the stream carried an error event, it ended normally)."""
    if kind.stream == "anthropic":
        return b"event: error" in body, b"event: message_stop" in body
    if kind.stream == "openai":
        return b'data: {"error"' in body, body.rstrip().endswith(b"data: [DONE]")
    return b'data: {"error"' in body, b'"finishReason"' in body


def client_loop(base: str, deadline: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    kinds, weights = list(KINDS), [k.weight for k in KINDS]
    with requests.Session() as session:
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            data = (
                kind.body
                if isinstance(kind.body, bytes)
                else (json.dumps(kind.body).encode() if kind.body else None)
            )
            headers = (
                {**kind.headers, "Content-Type": "application/json"} if data is not None else kind.headers
            )
            started = time.monotonic()
            try:
                response = session.request(
                    kind.method, base + kind.path, data=data, headers=headers, timeout=60
                )
                body = response.content
            except requests.RequestException as exc:
                with tally.lock:
                    tally.client_errors[type(exc).__name__] += 1
                tally.violation(f"{kind.name}: the connection failed: {exc!r}"[:300])
                continue
            elapsed = time.monotonic() - started
            status = response.status_code
            request_id = response.headers.get("x-request-id")
            with tally.lock:
                tally.statuses[(kind.name, status)] += 1
                tally.latencies.append(elapsed)
                if request_id and status != 401:  # a request without a client is not stored
                    tally.seen_ids.append(request_id)
            text = body[:2000].decode("utf-8", "replace")
            if not request_id:
                tally.violation(f"{kind.name}: no x-request-id (status {status})")
            if status >= 500:
                if any(marker in text for marker in INTERNAL):
                    tally.violation(f"{kind.name}: {status} made by the gateway: {text[:200]}")
                else:
                    with tally.lock:
                        tally.mapped_5xx[(kind.name, status)] += 1
            elif status != kind.expect and not (status == 429 and kind.expect in (200, 404)):
                # (a 429 is right when every key is cooling down after Gemini's own 429s)
                tally.violation(f"{kind.name}: expected {kind.expect}, got {status}: {text[:200]}")
            if kind.stream and status == 200:
                errored, ended = stream_outcome(kind, body)
                if errored:
                    with tally.lock:
                        tally.stream_errors[kind.name] += 1
                    if any(marker.encode() in body for marker in INTERNAL):
                        tally.violation(f"{kind.name}: an internal error inside the stream")
                elif not ended:
                    tally.violation(f"{kind.name}: the stream ended early without an error event")


# -- the run ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of traffic (default 600)")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="clients at once (default 64, as the benchmark)"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.05, help="share of upstream calls that fail (0.05)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers, WEB_CONCURRENCY (default 2)"
    )
    parser.add_argument(
        "--stream-interval", type=float, default=0.02, help="seconds between the fake's events"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds before the memory baseline (default: a fifth of the run, at most 60)",
    )
    parser.add_argument("--max-growth-mib", type=float, default=24, help="allowed RSS growth per worker (24)")
    parser.add_argument("--report", help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(60.0, args.duration / 5)

    workdir = Path(tempfile.mkdtemp(prefix="gemgate-soak-"))
    fake_port, port = free_port(), free_port()
    # Only what a Python process needs: none of the caller's gateway settings leak into the run.
    env = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SSL_CERT_FILE")
    }
    fake = start(
        [
            sys.executable,
            "-m",
            "tests.fake_upstream",
            "--port",
            str(fake_port),
            "--stream-interval",
            str(args.stream_interval),
            "--max-calls",
            "2000",
        ],
        env,
        workdir / "fake.log",
    )
    gateway_env = {
        **env,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(args.workers),
        "DATA_DIR": str(workdir / "data"),
        "API_KEYS": CLIENT_KEY,
        "GEMINI_API_KEYS": UPSTREAM_KEYS,
        "GEMINI_BASE_URL": f"http://127.0.0.1:{fake_port}",
        "UPSTREAM_TIMEOUT": "3",
        "STREAM_IDLE_TIMEOUT": "3",
        "UPSTREAM_CONNECT_TIMEOUT": "2",
        "UPSTREAM_BACKOFF": "0.05",
        "UPSTREAM_BACKOFF_MAX": "0.5",
        "KEY_COOLDOWN": "1",
        "HEARTBEAT_INTERVAL": "1",
        "REQUEST_LOG": "off",
    }
    gateway = start(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        gateway_env,
        workdir / "gateway.log",
    )
    try:
        wait_up(f"http://127.0.0.1:{fake_port}/_calls", fake)
        wait_up(f"http://127.0.0.1:{port}/healthz", gateway)
        requests.post(
            f"http://127.0.0.1:{fake_port}/_script", json=fault_script(args.fault_rate), timeout=5
        ).raise_for_status()
        print(
            f"soak: {args.duration:g} s, {args.concurrency} clients, {args.fault_rate:.0%} upstream faults, "
            f"{args.workers} workers; logs in {workdir}",
            flush=True,
        )
        report = run(args, warmup, f"http://127.0.0.1:{port}", gateway, gateway_env)
    finally:
        stop(gateway)
        stop(fake)
    report["gateway_tracebacks"] = (workdir / "gateway.log").read_text(errors="replace").count("Traceback")
    if report["gateway_tracebacks"]:
        report["failures"].append(f"the gateway logged {report['gateway_tracebacks']} traceback(s)")
    print_report(report)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    return 1 if report["failures"] else 0


def run(args, warmup: float, base: str, gateway: subprocess.Popen, gateway_env: dict) -> dict:
    tally = Tally()
    started = time.monotonic()
    deadline = started + args.duration
    workers = children(gateway.pid)
    threads = [
        threading.Thread(target=client_loop, args=(base, deadline, tally, i), daemon=True)
        for i in range(args.concurrency)
    ]
    for thread in threads:
        thread.start()
    samples: list[tuple[float, dict[int, float]]] = []
    while time.monotonic() < deadline:
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        now = children(gateway.pid)
        if now != workers:
            tally.violation(f"the workers changed from {workers} to {now}: one died or was replaced")
            workers = now
        samples.append((time.monotonic() - started, {pid: rss_mib(pid) for pid in now}))
    for thread in threads:
        thread.join(timeout=90)
    time.sleep(1)

    failures = list(tally.violations)
    memory = memory_figures(samples, warmup)
    for pid, figures in memory.items():
        if figures["growth_mib"] > args.max_growth_mib:
            failures.append(
                f"worker {pid} grew {figures['growth_mib']:.1f} MiB after the warm-up "
                f"(more than {args.max_growth_mib:g})"
            )
    exported = export_ids(gateway_env)
    seen = set(tally.seen_ids)
    lost = seen - set(exported)
    duplicates = len(exported) - len(set(exported))
    if lost:
        failures.append(f"{len(lost)} usage records lost, e.g. {sorted(lost)[:3]}")
    if duplicates:
        failures.append(f"{duplicates} usage records stored twice")
    total = sum(tally.statuses.values())
    streams = sum(
        n
        for (kind, status), n in tally.statuses.items()
        if status == 200 and kind.endswith(("-sse", "-stream"))
    )
    return {
        "duration_s": round(time.monotonic() - started, 1),
        "requests": total,
        "requests_per_s": round(total / args.duration, 1),
        "latency_p50_ms": round(1000 * statistics.median(tally.latencies), 1) if tally.latencies else None,
        "latency_p99_ms": round(1000 * statistics.quantiles(tally.latencies, n=100)[98], 1)
        if len(tally.latencies) > 100
        else None,
        "statuses": {f"{kind} {status}": n for (kind, status), n in sorted(tally.statuses.items())},
        "mapped_upstream_5xx": {
            f"{kind} {status}": n for (kind, status), n in sorted(tally.mapped_5xx.items())
        },
        "streams_ok": streams,
        "in_stream_errors": dict(tally.stream_errors),
        "client_connection_errors": dict(tally.client_errors),
        "usage_records": {
            "seen_by_clients": len(seen),
            "exported": len(exported),
            "lost": len(lost),
            "duplicates": duplicates,
        },
        "memory_mib": memory,
        "failures": failures,
    }


def memory_figures(samples: list[tuple[float, dict[int, float]]], warmup: float) -> dict:
    """Per worker: RSS after the warm-up and at the end (medians of three samples), and the growth."""
    out = {}
    pids = {pid for _, rss in samples for pid in rss}
    for pid in sorted(pids):
        series = [(t, rss[pid]) for t, rss in samples if pid in rss and t >= warmup]
        if len(series) < 2:
            continue
        head = statistics.median(v for _, v in series[:3])
        tail = statistics.median(v for _, v in series[-3:])
        out[pid] = {
            "after_warmup": round(head, 1),
            "end": round(tail, 1),
            "peak": round(max(v for _, v in series), 1),
            "growth_mib": round(tail - head, 1),
        }
    return out


def export_ids(gateway_env: dict) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "app.usage", "export", "--format", "jsonl"],
        cwd=ROOT,
        env=gateway_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"soak: usage export failed: {done.stderr}")
    return [json.loads(line)["request_id"] for line in done.stdout.splitlines() if line.strip()]


def print_report(report: dict) -> None:
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}, indent=2))
    if report["failures"]:
        print(f"soak: FAILED ({len(report['failures'])}):")
        for failure in report["failures"][:30]:
            print("  -", failure)
    else:
        print("soak: passed: no gateway-made 5xx, no silent truncation, no lost usage record, flat memory")


if __name__ == "__main__":
    sys.exit(main())
