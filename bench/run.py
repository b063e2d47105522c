"""The gemgate benchmark: every scenario through the gateway and straight at a fast fake Gemini.

    .venv/bin/python bench/run.py [--quick] [--duration 20] [--warmup 5] [--only a,c] ...
    make bench            # the same, installing wrk first when it is missing

Scenarios (issue 7), each measured twice in the same run, through gemgate (real gunicorn with
gevent workers, GEMINI_BASE_URL pointing at the fake) and straight at the fake (the limit):
  (a) non-streaming, upstream 0 ms, 64 connections: req/s, p50/p99, gateway CPU ms per request
  (b) non-streaming, upstream 200 ms, 256 connections: added p50/p99
  (c) 500 concurrent streams of 20 chunks at 100 ms: TTFB, added per-chunk lag, peak RSS
  (d) 2,000 streams at once: all complete, chunk lag p99, CPU per stream
  (e) (a) and (c) again for the Anthropic and the native dialects.
A dialect whose routes the gateway does not serve yet is skipped, and the report says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CLIENT_KEY = "bench-client-key"
# Shaped like real Gemini keys; the fake never checks them.
UPSTREAM_KEYS = ",".join(f"AIzaSyBENCH{i}{'x' * 27}" for i in range(3))
MODEL = "gemini-2.5-flash"
PROMPT = "What is the capital of France? One word."
NOISY_PCT = 25  # other processes' CPU, in % of one core, above which a scenario's figures are flagged
TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- what each dialect sends ----------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    name: str
    path: str
    stream_path: str
    body: dict
    stream_body: dict
    headers: dict
    answer_key: str  # a key every non-streaming answer of this dialect has
    done_marker: str | None  # what the last frame of a stream contains
    # Streamed in (c) and (d): a Responses stream repeats the whole text in its closing events, so
    # the stream client's marker count does not apply to it, and it runs (a) only.
    streams: bool = True


GEMINI_BODY = {
    "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
    "generationConfig": {"temperature": 0},
}
MESSAGES = [{"role": "user", "content": PROMPT}]
DIALECTS = {
    "openai": Dialect(
        "openai",
        "/v1/chat/completions",
        "/v1/chat/completions",
        {"model": MODEL, "messages": MESSAGES},
        {"model": MODEL, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
        {"Authorization": f"Bearer {CLIENT_KEY}"},
        "choices",
        "[DONE]",
    ),
    # The Responses API as Codex calls it (store false: no stored response per request).
    "responses": Dialect(
        "responses",
        "/v1/responses",
        "/v1/responses",
        {"model": MODEL, "input": PROMPT, "store": False},
        {"model": MODEL, "input": PROMPT, "store": False, "stream": True},
        {"Authorization": f"Bearer {CLIENT_KEY}"},
        "output",
        "response.completed",
        streams=False,
    ),
    "anthropic": Dialect(
        "anthropic",
        "/v1/messages",
        "/v1/messages",
        {"model": MODEL, "max_tokens": 1024, "messages": MESSAGES},
        {"model": MODEL, "max_tokens": 1024, "messages": MESSAGES, "stream": True},
        {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        "content",
        "message_stop",
    ),
    "gemini": Dialect(
        "gemini",
        f"/v1beta/models/{MODEL}:generateContent",
        f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
        GEMINI_BODY,
        GEMINI_BODY,
        {"x-goog-api-key": CLIENT_KEY},
        "candidates",
        '"finishReason": "STOP"',
    ),
}
# Straight at the fake: the native calls the gateway itself makes upstream.
DIRECT = DIALECTS["gemini"]


@dataclass
class Scenario:
    letter: str
    dialect: str
    streaming: bool
    title: str
    latency: int = 0
    jitter: float = 0  # ± % of latency, uniform
    connections: int = 0
    streams: int = 0
    wave: bool = False  # streams: open `streams` once (d), rather than keep them open for the duration
    targets: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.dialect != "openai" and self.letter in "ac":
            return f"(e/{self.letter}) {self.dialect}"
        return f"({self.letter}) {self.dialect}"


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 30):
    """(status, body bytes); never raises for an HTTP status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {url} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            http("GET", url, timeout=1)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(
        f"bench: {url} did not come up in {timeout}s:\n{log.read_text(errors='replace')[-3000:]}"
    )


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a child started in its own session (it and its children), by its id."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


class Fake:
    """bench/fake_gemini.js, one Node process."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "fake.log"
        self.proc = subprocess.Popen(
            ["node", str(BENCH / "fake_gemini.js"), "--port", str(self.port)],
            stdout=open(self.log, "wb"),  # noqa: SIM115 (the child owns it)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_up(self.url + "/_config", self.proc, self.log)

    def configure(self, **values) -> None:
        status, _ = http("POST", self.url + "/_config", json.dumps(values).encode())
        assert status == 200, status

    def cpu_ms(self) -> float:
        return json.loads(http("GET", self.url + "/_stats")[1])["cpu_ms"]


class Gateway:
    """gemgate as deployed: `gunicorn -c gunicorn.conf.py wsgi:app`, gevent workers."""

    def __init__(self, workdir: Path, upstream: str, workers: int, extra_env: dict, app_dir: Path = ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"gateway-{self.port}.log"
        env = dict(os.environ)
        env.update(
            PORT=str(self.port),
            WEB_CONCURRENCY=str(workers),
            API_KEYS=CLIENT_KEY,
            GEMINI_API_KEYS=UPSTREAM_KEYS,
            GEMINI_BASE_URL=upstream,
            DATA_DIR=str(workdir / f"data-{self.port}"),
            LOG_LEVEL="warning",
        )
        env.update(extra_env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=app_dir,
            env=env,
            stdout=open(self.log, "wb"),  # noqa: SIM115 (the child owns it)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_up(self.url + "/healthz", self.proc, self.log)
        deadline = time.monotonic() + 20
        while len(self.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)

    def workers(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            return [int(p) for p in text.split()]
        except OSError:
            return [
                int(p.name)
                for p in Path("/proc").iterdir()
                if p.name.isdigit() and _ppid(int(p.name)) == self.proc.pid
            ]

    def pids(self) -> list[int]:
        return [self.proc.pid, *self.workers()]

    def cpu_ms(self) -> dict[int, float]:
        """CPU time (user + system) of master and each worker, by pid."""
        out = {}
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) * TICK_MS
        return out

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            except OSError:
                pass
        return total

    def stop(self) -> None:
        stop(self.proc)


def machine_busy_ms() -> float:
    """CPU time every core of this machine has spent busy since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) * TICK_MS


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


class PeakRSS:
    """Samples the gateway's total RSS every 50 ms while in use."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.peak = gateway.rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.gateway.rss_bytes())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# -- load tools ---------------------------------------------------------------------------------


def run_wrk(url: str, dialect: Dialect, connections: int, duration: float, workdir: Path) -> dict:
    body = workdir / f"body-{dialect.name}.json"
    body.write_bytes(json.dumps(dialect.body).encode())
    env = dict(
        os.environ,
        BENCH_BODY_FILE=str(body),
        BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in dialect.headers.items()),
    )
    threads = max(1, min(2, connections))
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / "post.lua"),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    raw = json.loads(line[len("BENCH_JSON ") :])
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": raw["requests"],
        "seconds": seconds,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "error_detail": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]},
        "load_cpu_ms": ((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) * 1000,
    }


def run_streams(
    url: str,
    dialect: Dialect,
    concurrency: int,
    chunks: int,
    interval: int,
    duration: float | None,
    total: int | None,
    ramp: float,
    workdir: Path,
) -> dict:
    body = workdir / f"stream-body-{dialect.name}.json"
    body.write_bytes(json.dumps(dialect.stream_body).encode())
    cmd = [
        "node",
        str(BENCH / "sse_load.js"),
        "--url",
        url,
        "--body-file",
        str(body),
        "--concurrency",
        str(concurrency),
        "--chunks",
        str(chunks),
        "--ramp",
        str(ramp),
        "--timeout",
        str(max(30, chunks * interval / 1000 * 5)),
    ]
    for k, v in dialect.headers.items():
        cmd += ["--header", f"{k}: {v}"]
    if dialect.done_marker:
        cmd += ["--done-marker", dialect.done_marker]
    if total is not None:
        cmd += ["--total", str(total)]
    else:
        cmd += ["--duration", str(duration)]
    limit = (duration or 0) + ramp + chunks * interval / 1000 * 5 + 120
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"sse_load failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["load_cpu_ms"] = out.pop("client_cpu_ms")
    return out


# -- probing which dialects the gateway serves -----------------------------------------------------


def probe(gateway: Gateway, dialect: Dialect) -> str | None:
    """None when the dialect answers properly; else why it is skipped."""
    status, body = http(
        "POST",
        gateway.url + dialect.path,
        json.dumps(dialect.body).encode(),
        {"Content-Type": "application/json", **dialect.headers},
    )
    if status in (404, 405):
        return f"POST {dialect.path} answers {status}: the {dialect.name} dialect is not served yet"
    if status != 200:
        return f"POST {dialect.path} answers {status}: {body[:300]!r}"
    try:
        answer = json.loads(body)
    except ValueError:
        return f"POST {dialect.path} answers non-JSON: {body[:200]!r}"
    if dialect.answer_key not in answer:
        return f"POST {dialect.path} answers without {dialect.answer_key!r}: {body[:300]!r}"
    if not dialect.streams:
        return None
    status, body = http(
        "POST",
        gateway.url + dialect.stream_path,
        json.dumps(dialect.stream_body).encode(),
        {"Content-Type": "application/json", **dialect.headers},
    )
    text = body.decode(errors="replace")
    if status != 200:
        return f"POST {dialect.stream_path} (stream) answers {status}: {text[:300]!r}"
    markers = re.findall(r"#(\d+):\d+#", text)
    if markers != [str(i) for i in range(len(markers))] or not markers:
        return f"stream from {dialect.stream_path} lost the chunk markers: {text[:300]!r}"
    if dialect.done_marker and dialect.done_marker not in text:
        return f"stream from {dialect.stream_path} does not end with {dialect.done_marker!r}"
    return None


# -- one scenario -------------------------------------------------------------------------------


class Runner:
    def __init__(self, args, workdir: Path, fake: Fake):
        self.args = args
        self.workdir = workdir
        self.fake = fake
        self.extra_env = dict(kv.split("=", 1) for kv in args.gateway_env)

    def gateway(self) -> Gateway:
        return Gateway(self.workdir, self.fake.url, self.args.workers, self.extra_env, self.args.app_dir)

    def load(self, sc: Scenario, base: str, dialect: Dialect, duration: float) -> dict:
        a = self.args
        if not sc.streaming:
            return run_wrk(base + dialect.path, dialect, sc.connections, duration, self.workdir)
        return run_streams(
            base + dialect.stream_path,
            dialect,
            sc.streams,
            a.chunks,
            a.interval,
            None if sc.wave else duration,
            sc.streams if sc.wave else None,
            a.ramp,
            self.workdir,
        )

    def measure(self, sc: Scenario, base: str, dialect: Dialect, gateway: Gateway | None) -> dict:
        """Warm up, then one measured run; gateway CPU and RSS when it goes through the gateway."""
        a = self.args
        if a.warmup > 0:
            self.load(sc, base, dialect, a.warmup)
        fake0, cpu0, wall0 = self.fake.cpu_ms(), gateway.cpu_ms() if gateway else {}, time.monotonic()
        busy0 = machine_busy_ms()
        if gateway:
            with PeakRSS(gateway) as rss:
                out = self.load(sc, base, dialect, a.duration)
            out["peak_rss_mb"] = rss.peak / 1e6
            cpu1 = gateway.cpu_ms()
            if set(cpu1) != set(cpu0):
                out["warning"] = "a gateway worker restarted during the run: CPU figures are incomplete"
            used = sum(cpu1.get(pid, 0.0) - t for pid, t in cpu0.items())
            count = out.get("completed", out.get("requests", 0))
            out["gateway_cpu_ms"] = used
            out["gateway_cpu_ms_per"] = used / count if count else None
        else:
            out = self.load(sc, base, dialect, a.duration)
        wall = (time.monotonic() - wall0) * 1000
        fake_ms = self.fake.cpu_ms() - fake0
        out["wall_ms"] = wall
        out["fake_cpu_pct"] = 100 * fake_ms / wall
        out["load_cpu_pct"] = 100 * out["load_cpu_ms"] / wall
        # Everything else this machine ran meanwhile (other jobs share it): in % of one core.
        ours = fake_ms + out["load_cpu_ms"] + out.get("gateway_cpu_ms", 0.0)
        out["other_cpu_pct"] = max(0.0, 100 * (machine_busy_ms() - busy0 - ours) / wall)
        return out

    def run(self, sc: Scenario) -> dict:
        dialect = DIALECTS[sc.dialect]
        self.fake.configure(
            latency=sc.latency, jitter=sc.jitter, chunks=self.args.chunks, interval=self.args.interval
        )
        direct = self.measure(sc, self.fake.url, DIRECT, None)
        gateway = self.gateway()
        try:
            through = self.measure(sc, gateway.url, dialect, gateway)
        finally:
            gateway.stop()
        return {"gateway": through, "direct": direct}


# -- report -------------------------------------------------------------------------------------


def fmt(value, digits=1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def ratio(gw, direct) -> str:
    if gw is None or not direct:
        return "-"
    return f"{gw / direct:.2f}x"


def check(name: str, value, limit, higher_is_better=False, unit="") -> dict:
    if value is None:
        return {"target": name, "met": False, "value": None, "limit": limit, "note": "not measured"}
    met = value >= limit if higher_is_better else value <= limit
    if met:
        note = "met"
    else:
        miss = (limit - value) / limit if higher_is_better else (value - limit) / (limit or 1)
        note = f"MISSED by {fmt(abs(value - limit))}{unit}" + (f" ({miss:.0%})" if limit else "")
    return {"target": name, "met": met, "value": value, "limit": limit, "note": note}


def report(sc: Scenario, result: dict) -> tuple[list[str], list[dict]]:
    gw, direct = result["gateway"], result["direct"]
    lines = [f"{sc.label}: {sc.title}", f"  {'':26}{'gateway':>12}{'direct':>12}{'ratio':>9}{'added':>10}"]

    def row(name, key_path, digits=1, added=True):
        g, d = _get(gw, key_path), _get(direct, key_path)
        extra = fmt(g - d, digits) if added and g is not None and d is not None else ""
        lines.append(f"  {name:26}{fmt(g, digits):>12}{fmt(d, digits):>12}{ratio(g, d):>9}{extra:>10}")

    checks = []
    if not sc.streaming:
        row("requests/s", "rps", 0, added=False)
        row("latency p50 ms", "p50_ms", 2)
        row("latency p99 ms", "p99_ms", 2)
        row("errors", "errors", added=False)
        for side, out in (("gateway", gw), ("direct", direct)):
            if out.get("error_detail"):
                lines.append(f"  {side} errors: {out['error_detail']}")
        lines.append(
            f"  gateway CPU per request: {fmt(gw.get('gateway_cpu_ms_per'), 3)} ms; "
            f"peak RSS {fmt(gw.get('peak_rss_mb'))} MB"
        )
        added_p50 = gw["p50_ms"] - direct["p50_ms"]
        added_p99 = gw["p99_ms"] - direct["p99_ms"]
        t = sc.targets
        if "rps" in t:
            checks.append(check(f"req/s >= {t['rps']:,}", gw["rps"], t["rps"], True))
        if "cpu" in t:
            checks.append(
                check(f"CPU <= {t['cpu']} ms/request", gw.get("gateway_cpu_ms_per"), t["cpu"], unit=" ms")
            )
        if "added_p50" in t:
            checks.append(check(f"added p50 <= {t['added_p50']} ms", added_p50, t["added_p50"], unit=" ms"))
        if "added_p99" in t:
            checks.append(check(f"added p99 <= {t['added_p99']} ms", added_p99, t["added_p99"], unit=" ms"))
        checks.append(check("no errors", gw["errors"], 0))
    else:
        row("streams completed", "completed", added=False)
        row("streams failed", "failed", added=False)
        row("streams/s", "streams_per_s", added=False)
        row("most streams open at once", "peak_open", added=False)
        row("TTFB p50 ms", "ttfb_ms.p50", 2)
        row("TTFB p99 ms", "ttfb_ms.p99", 2)
        row("chunk lag p50 ms", "lag_ms.p50", 2)
        row("chunk lag p99 ms", "lag_ms.p99", 2)
        for side, out in (("gateway", gw), ("direct", direct)):
            if out.get("errors"):
                lines.append(f"  {side} stream errors: {out['errors']}")
        lines.append(
            f"  gateway CPU per stream: {fmt(gw.get('gateway_cpu_ms_per'), 2)} ms; "
            f"peak RSS {fmt(gw.get('peak_rss_mb'))} MB"
        )
        added_lag = _sub(_get(gw, "lag_ms.p99"), _get(direct, "lag_ms.p99"))
        t = sc.targets
        if "ttfb_p99" in t:
            checks.append(
                check(f"TTFB p99 <= {t['ttfb_p99']} ms", _get(gw, "ttfb_ms.p99"), t["ttfb_p99"], unit=" ms")
            )
        if "added_lag_p99" in t:
            checks.append(
                check(
                    f"added chunk lag p99 <= {t['added_lag_p99']} ms",
                    added_lag,
                    t["added_lag_p99"],
                    unit=" ms",
                )
            )
        if "lag_p99" in t:
            checks.append(
                check(f"chunk lag p99 <= {t['lag_p99']} ms", _get(gw, "lag_ms.p99"), t["lag_p99"], unit=" ms")
            )
        if "rss" in t:
            checks.append(check(f"peak RSS <= {t['rss']} MB", gw.get("peak_rss_mb"), t["rss"], unit=" MB"))
        if "cpu_stream" in t:
            checks.append(
                check(
                    f"CPU <= {t['cpu_stream']} ms/stream",
                    gw.get("gateway_cpu_ms_per"),
                    t["cpu_stream"],
                    unit=" ms",
                )
            )
        checks.append(check(f"all {fmt(gw['streams'])} streams complete", gw["failed"], 0))
    lines.append(
        f"  fake upstream CPU: {fmt(gw['fake_cpu_pct'], 0)}% of a core through the gateway, "
        f"{fmt(direct['fake_cpu_pct'], 0)}% direct; load tool {fmt(gw['load_cpu_pct'], 0)}% / "
        f"{fmt(direct['load_cpu_pct'], 0)}%; other processes {fmt(gw['other_cpu_pct'], 0)}% / "
        f"{fmt(direct['other_cpu_pct'], 0)}%"
    )
    noisy = max(gw["other_cpu_pct"], direct["other_cpu_pct"])
    if noisy > NOISY_PCT:
        lines.append(
            f"  NOISY: other processes used up to {noisy:.0f}% of a core during this scenario; "
            "its latencies say more about them than about the gateway (rerun when the machine is quiet)"
        )
    for side in ("gateway", "direct"):
        if result[side].get("warning"):
            lines.append(f"  warning ({side}): {result[side]['warning']}")
    for c in checks:
        lines.append(f"  target {c['target']}: {fmt(c['value'], 2)} -> {c['note']}")
    return lines, checks


def _get(d: dict, path: str):
    for part in path.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


def _sub(a, b):
    return None if a is None or b is None else a - b


# -- main ---------------------------------------------------------------------------------------


def scenarios(args, dialects: list[str]) -> list[Scenario]:
    out = []
    everywhere = args.all_dialects
    for name in dialects:
        main = name == "openai"
        out.append(
            Scenario(
                "a",
                name,
                False,
                f"non-streaming, upstream 0 ms, {args.conns_a} connections",
                latency=0,
                connections=args.conns_a,
                targets={"rps": 1400, "cpu": 1.0},
            )
        )
        if main or everywhere:
            out.append(
                Scenario(
                    "b",
                    name,
                    False,
                    f"non-streaming, upstream {args.latency_b} ms"
                    f"{f' ± {args.jitter_b:g} %' if args.jitter_b else ''}, {args.conns_b} connections",
                    latency=args.latency_b,
                    jitter=args.jitter_b,
                    connections=args.conns_b,
                    targets={"added_p50": 10, "added_p99": 40},
                )
            )
        if not DIALECTS[name].streams:
            continue
        out.append(
            Scenario(
                "c",
                name,
                True,
                f"{args.streams_c} concurrent streams of {args.chunks} chunks at {args.interval} ms",
                streams=args.streams_c,
                targets={"ttfb_p99": 25, "added_lag_p99": 10, "rss": 160},
            )
        )
        if main or everywhere:
            out.append(
                Scenario(
                    "d",
                    name,
                    True,
                    f"{args.streams_d} streams at once, {args.chunks} chunks at {args.interval} ms",
                    streams=args.streams_d,
                    wave=True,
                    targets={"lag_p99": 100, "cpu_stream": 2.0},
                )
            )
    only = set(args.only.split(",")) if args.only else None
    return [
        s
        for s in out
        if only is None or s.letter in only or (s.letter in "ac" and "e" in only and s.dialect != "openai")
    ]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5 s per measurement, 2 s warm-up")
    p.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 20)")
    p.add_argument("--warmup", type=float, default=None, help="seconds of warm-up before each (default 5)")
    p.add_argument("--only", default="", help="scenario letters to run, e.g. a,c (default: all)")
    p.add_argument(
        "--dialects", default="openai,responses,anthropic,gemini", help="dialects to try, in order"
    )
    p.add_argument(
        "--all-dialects", action="store_true", help="run (b) and (d) for every dialect, not only OpenAI"
    )
    p.add_argument("--workers", type=int, default=2, help="gunicorn gevent workers (default 2)")
    p.add_argument("--conns-a", type=int, default=64)
    p.add_argument("--conns-b", type=int, default=256)
    p.add_argument("--latency-b", type=int, default=200, help="upstream latency in (b), ms")
    p.add_argument(
        "--jitter-b",
        type=float,
        default=0,
        metavar="PCT",
        help="spread the upstream latency of (b) uniformly by ± this %% (default 0: constant)",
    )
    p.add_argument("--streams-c", type=int, default=500)
    p.add_argument("--streams-d", type=int, default=2000)
    p.add_argument("--chunks", type=int, default=20, help="chunks per stream")
    p.add_argument("--interval", type=int, default=100, help="ms between chunks")
    p.add_argument("--ramp", type=float, default=1.0, help="seconds over which the first streams open")
    p.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the gateway (repeatable)",
    )
    p.add_argument("--json", type=Path, help="also write every figure to this file")
    p.add_argument(
        "--app-dir",
        type=Path,
        default=ROOT,
        help="the gemgate checkout to start (default: this one); compare two trees with it",
    )
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 5.0 if args.quick else 20.0
    if args.warmup is None:
        args.warmup = 2.0 if args.quick else 5.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not shutil.which("node"):
        print("bench: node is not installed (the fake upstream and the stream client need Node.js 18+)")
        return 2
    have_wrk = shutil.which("wrk") is not None
    workdir = Path(tempfile.mkdtemp(prefix="gemgate-bench-"))
    fake = Fake(workdir)
    results: list[dict] = []
    all_checks: list[dict] = []
    try:
        runner = Runner(args, workdir, fake)
        # Which dialects does this gateway serve? Probed once, with short streams.
        fake.configure(latency=0, chunks=3, interval=5)
        probe_gw = runner.gateway()
        try:
            skipped = {name: probe(probe_gw, DIALECTS[name]) for name in args.dialects.split(",")}
        finally:
            probe_gw.stop()
        served = [name for name, why in skipped.items() if why is None]
        print(
            f"gemgate benchmark: {args.workers} gevent workers, {args.duration:g} s per measurement after "
            f"{args.warmup:g} s warm-up, {os.cpu_count()} CPUs; fake upstream: bench/fake_gemini.js"
        )
        for name, why in skipped.items():
            if why:
                print(f"SKIPPED {name}: {why}")
        print()
        for sc in scenarios(args, served):
            if not sc.streaming and not have_wrk:
                print(f"{sc.label}: SKIPPED, wrk is not installed (apt-get install wrk; `make bench` does)\n")
                results.append({"scenario": sc.label, "skipped": "wrk is not installed"})
                continue
            result = runner.run(sc)
            lines, checks = report(sc, result)
            print("\n".join(lines) + "\n", flush=True)
            for c in checks:
                c["scenario"] = sc.label
            all_checks += checks
            results.append(
                {
                    "scenario": sc.label,
                    "letter": sc.letter,
                    "dialect": sc.dialect,
                    "title": sc.title,
                    **result,
                    "checks": checks,
                }
            )
        missed = [c for c in all_checks if not c["met"]]
        print(f"targets: {len(all_checks) - len(missed)} met, {len(missed)} missed")
        for c in missed:
            print(f"  {c['scenario']}: {c['target']}: {c['note']}")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "args": {k: str(v) for k, v in vars(args).items()},
                        "skipped": {k: v for k, v in skipped.items() if v},
                        "results": results,
                    },
                    indent=2,
                )
            )
    finally:
        stop(fake.proc)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
