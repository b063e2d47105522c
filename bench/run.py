"""The gemgate benchmark: every scenario through the gateway, through a bare pass-through, and straight
at a fast fake Gemini.

    .venv/bin/python bench/run.py [--quick] [--duration 20] [--warmup 5] [--only a,c] ...
    make bench            # the same, installing wrk first when it is missing

Each scenario is measured three times in the same run: straight at the fake (the limit), through a
bare Flask + gevent + requests pass-through under the same gunicorn settings (bench/passthrough.py:
what the stack alone costs), and through gemgate as deployed (real gunicorn with gevent workers,
GEMINI_BASE_URL pointing at the fake).
  (a) non-streaming, upstream 0 ms, 64 connections: req/s, p50/p99, CPU ms per request
  (b) non-streaming, upstream 200 ms, 256 connections: added p50/p99
  (c) 500 concurrent streams of 20 chunks at 100 ms: TTFB, chunk lag, peak RSS
  (d) 2,000 streams opened within 2 s: all complete, TTFB, chunk lag, CPU per stream (setup and
      per chunk)
  (e) (a) and (c) again for the Responses, Anthropic and native dialects (a Responses stream's
      chunks are counted on its delta events)
  (a-tls), (d-tls) (a) and (d) with the fake behind TLS (a CA of the run's own): TLS handshakes and
      upstream connections per 1,000 requests or streams, CPU per request or stream
  (s/a), (s/c) scale-out: (a) and (c) through nginx to two gemgate instances sharing one Redis,
      beside one instance behind the same nginx and Redis
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
import ssl
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
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server")


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
    streams: bool = True  # streamed in (c) and (d)
    # Only stream lines holding this carry chunk markers: a Responses stream repeats the whole text in
    # its closing events, so only its delta events are counted.
    marker_lines: str | None = None


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
        marker_lines="output_text.delta",
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
    letter: str  # a, b, c, d, a-tls, d-tls, s/a, s/c
    dialect: str
    streaming: bool
    title: str
    latency: int = 0
    jitter: float = 0  # ± % of latency, uniform
    connections: int = 0
    streams: int = 0
    wave: bool = False  # streams: open `streams` once (d), rather than keep them open for the duration
    ramp: float = 1.0  # seconds over which the first streams open
    tls: bool = False  # the fake upstream behind TLS
    scale_out: bool = False  # two instances behind nginx, beside one
    targets: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.dialect != "openai" and self.letter in ("a", "c"):
            return f"(e/{self.letter}) {self.dialect}"
        return f"({self.letter}) {self.dialect}"

    @property
    def columns(self) -> tuple[str, ...]:
        """The result columns, gemgate's first: the second is what its ratios are taken against."""
        if self.scale_out:
            return ("gateway", "single", "direct")
        return ("gateway", "passthrough", "direct")


COLUMN_NAMES = {
    "gateway": "gemgate",
    "passthrough": "pass-thru",
    "direct": "direct",
    "single": "1 instance",
}
SCALE_OUT_NAMES = {"gateway": "2 instances"}


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 30,
    context: ssl.SSLContext | None = None,
):
    """(status, body bytes); never raises for an HTTP status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30, context=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {url} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            http("GET", url, timeout=1, context=context)
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


def start(cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=open(log, "wb"),  # the child owns it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@dataclass(frozen=True)
class TLSFiles:
    """A CA of this run's own and a certificate it signed for 127.0.0.1 (trustme)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> TLSFiles:
        import trustme

        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1", "localhost")
        files = cls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
        ca.cert_pem.write_to_path(str(files.ca))
        files.cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        issued.private_key_pem.write_to_path(str(files.key))
        return files


class Fake:
    """bench/fake_gemini.js, one Node process; behind TLS when given certificate files."""

    def __init__(self, workdir: Path, tls: TLSFiles | None = None):
        self.port = free_port()
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.log = workdir / f"fake-{self.port}.log"
        cmd = ["node", str(BENCH / "fake_gemini.js"), "--port", str(self.port)]
        self.context = None
        if tls:
            cmd += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
            self.context = ssl.create_default_context(cafile=str(tls.ca))
        self.proc = start(cmd, self.log)
        wait_up(self.url + "/_config", self.proc, self.log, context=self.context)

    def configure(self, **values) -> None:
        status, _ = http("POST", self.url + "/_config", json.dumps(values).encode(), context=self.context)
        assert status == 200, status

    def stats(self) -> dict:
        return json.loads(http("GET", self.url + "/_stats", context=self.context)[1])

    def cpu_ms(self) -> float:
        return self.stats()["cpu_ms"]


class Server:
    """A process started in its own session, with its children (gunicorn's workers, nginx's)."""

    name = "server"

    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc = proc
        self.log = log

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
        """CPU time (user + system) of the process and each child, by pid."""
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

    def wait_workers(self, count: int) -> None:
        deadline = time.monotonic() + 20
        while len(self.workers()) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        stop(self.proc)


class Gateway(Server):
    """gemgate as deployed: `gunicorn -c gunicorn.conf.py wsgi:app`, gevent workers."""

    name = "gemgate"

    def __init__(
        self,
        workdir: Path,
        upstream: str,
        workers: int,
        extra_env: dict,
        app_dir: Path = ROOT,
        port: int | None = None,
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = workdir / f"gateway-{self.port}.log"
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
        cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
        super().__init__(start(cmd, log, env, app_dir), log)
        wait_up(self.url + "/healthz", self.proc, self.log)
        self.wait_workers(workers)


class PassThrough(Server):
    """bench/passthrough.py under gunicorn with gemgate's worker settings (gevent, worker connections)."""

    name = "pass-through"

    def __init__(self, workdir: Path, upstream: str, workers: int, ca: Path | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = workdir / f"passthrough-{self.port}.log"
        env = dict(os.environ, PASSTHROUGH_UPSTREAM=upstream, PASSTHROUGH_KEY=UPSTREAM_KEYS.split(",")[0])
        if ca is not None:
            env["REQUESTS_CA_BUNDLE"] = str(ca)  # as an operator points requests at a private CA
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            "gevent",
            "-w",
            str(workers),
            "--worker-connections",
            "4000",
            "--keep-alive",
            "75",
            "--log-level",
            "warning",
            "-b",
            f"127.0.0.1:{self.port}",
            "passthrough:app",
        ]
        # Started in bench/, where no gunicorn.conf.py is: gemgate's settings and hooks stay out of it.
        super().__init__(start(cmd, log, env, BENCH), log)
        wait_up(self.url + "/healthz", self.proc, self.log)
        self.wait_workers(workers)


class Redis(Server):
    name = "redis"

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        log = workdir / f"redis-{self.port}.log"
        folder = workdir / f"redis-{self.port}"
        folder.mkdir()
        cmd = [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(folder), "--maxclients", "10000"]
        super().__init__(start(cmd, log), log)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: redis-server did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)


class Nginx(Server):
    """nginx in front of gateways, with the settings of deploy/nginx.conf that matter for load (keep-alive
    to the gateways, no buffering), in plain HTTP: its TLS is not what the scale-out scenario measures."""

    name = "nginx"

    def __init__(self, workdir: Path, ports: list[int]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder = workdir / f"nginx-{self.port}"
        folder.mkdir()
        servers = "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
        temp = "".join(
            f"  {kind}_temp_path {folder / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf = folder / "nginx.conf"
        conf.write_text(
            f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log stderr warn;\n"
            f"worker_rlimit_nofile 20000;\n{'user root;' if os.geteuid() == 0 else ''}\n"
            "events { worker_connections 10000; }\n"
            f"http {{\n  access_log off;\n{temp}"
            f"  upstream gemgate {{\n{servers}    keepalive 256;\n  }}\n"
            f"  server {{\n    listen 127.0.0.1:{self.port} backlog=4096;\n"
            "    location / {\n"
            "      proxy_pass http://gemgate;\n      proxy_http_version 1.1;\n"
            '      proxy_set_header Connection "";\n      proxy_set_header Host $host;\n'
            "      proxy_buffering off;\n      proxy_request_buffering off;\n"
            "      proxy_read_timeout 300s;\n    }\n  }\n}\n"
        )
        log = workdir / f"nginx-{self.port}.log"
        super().__init__(start([NGINX, "-p", str(folder), "-c", str(conf), "-e", "stderr"], log), log)
        wait_up(self.url + "/healthz", self.proc, self.log)


class Group:
    """Several servers measured as one (two gateway instances), and helpers whose CPU is said apart."""

    def __init__(self, servers: list[Server], helpers: list[Server] = ()):  # type: ignore[assignment]
        self.servers = servers
        self.helpers = list(helpers)

    def cpu_ms(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for server in self.servers:
            out.update(server.cpu_ms())
        return out

    def helper_cpu_ms(self) -> dict[str, float]:
        return {h.name: sum(h.cpu_ms().values()) for h in self.helpers}

    def rss_bytes(self) -> int:
        return sum(server.rss_bytes() for server in self.servers)

    def stop(self) -> None:
        for server in self.helpers[:1] + self.servers + self.helpers[1:]:  # nginx first, redis last
            server.stop()


def machine_busy_ms() -> float:
    """CPU time every core of this machine has spent busy since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) * TICK_MS


def tcp_counters() -> dict[str, int]:
    """The kernel's counters of connections refused by a full listen queue and SYNs sent again: when a
    server accepts too slowly, clients wait for a SYN retransmit (1 s, then 3 s, 7 s...)."""
    wanted = {
        "ListenOverflows": "listen_overflows",
        "ListenDrops": "listen_drops",
        "TCPSynRetrans": "syn_retransmits",
    }
    out: dict[str, int] = {}
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return out
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        for name, value in zip(names.split()[1:], values.split()[1:], strict=True):
            if name in wanted:
                out[wanted[name]] = int(value)
    return out


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


class PeakRSS:
    """Samples the measured servers' total RSS every 50 ms while in use."""

    def __init__(self, target: Group):
        self.target = target
        self.peak = target.rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.target.rss_bytes())

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
    ca: Path | None = None,
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
    if dialect.marker_lines:
        cmd += ["--marker-lines", dialect.marker_lines]
    if ca is not None:
        cmd += ["--ca", str(ca)]
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
    scanned = text
    if dialect.marker_lines:
        scanned = "\n".join(line for line in text.splitlines() if dialect.marker_lines in line)
    markers = re.findall(r"#(\d+):\d+#", scanned)
    if markers != [str(i) for i in range(len(markers))] or not markers:
        return f"stream from {dialect.stream_path} lost the chunk markers: {text[:300]!r}"
    if dialect.done_marker and dialect.done_marker not in text:
        return f"stream from {dialect.stream_path} does not end with {dialect.done_marker!r}"
    return None


# -- one scenario -------------------------------------------------------------------------------


class Runner:
    def __init__(self, args, workdir: Path, fake: Fake, tls_fake: Fake | None):
        self.args = args
        self.workdir = workdir
        self.fake = fake
        self.tls_fake = tls_fake
        self.extra_env = dict(kv.split("=", 1) for kv in args.gateway_env)

    def fake_for(self, sc: Scenario) -> Fake:
        if sc.tls:
            assert self.tls_fake is not None
            return self.tls_fake
        return self.fake

    def gateway(self, fake: Fake | None = None, workers: int | None = None, **env: str) -> Gateway:
        fake = fake or self.fake
        extra = dict(self.extra_env)
        if fake.tls:
            extra["GEMINI_CA_BUNDLE"] = str(fake.tls.ca)  # the operator's setting for a private CA
        extra.update(env)
        return Gateway(self.workdir, fake.url, workers or self.args.workers, extra, self.args.app_dir)

    def load(self, sc: Scenario, base: str, dialect: Dialect, duration: float, chunks: int, ca=None) -> dict:
        a = self.args
        if not sc.streaming:
            return run_wrk(base + dialect.path, dialect, sc.connections, duration, self.workdir)
        return run_streams(
            base + dialect.stream_path,
            dialect,
            sc.streams,
            chunks,
            a.interval,
            None if sc.wave else duration,
            sc.streams if sc.wave else None,
            sc.ramp,
            self.workdir,
            ca,
        )

    def measure(self, sc: Scenario, base: str, dialect: Dialect, target: Group | None) -> dict:
        """Warm up, then one measured run: the load tool's figures, the fake's connections and TLS
        handshakes, and the CPU and peak RSS of `target` (None: straight at the fake)."""
        a = self.args
        fake = self.fake_for(sc)
        # Straight at a TLS fake the load tool itself speaks TLS; through a server, the server does.
        ca = fake.tls.ca if fake.tls and target is None else None
        if a.warmup > 0:
            self.load(sc, base, dialect, a.warmup, a.chunks, ca)
        stats0, wall0 = fake.stats(), time.monotonic()
        cpu0 = target.cpu_ms() if target else {}
        helpers0 = target.helper_cpu_ms() if target else {}
        busy0, tcp0 = machine_busy_ms(), tcp_counters()
        if target:
            with PeakRSS(target) as rss:
                out = self.load(sc, base, dialect, a.duration, a.chunks, ca)
            out["peak_rss_mb"] = rss.peak / 1e6
            cpu1 = target.cpu_ms()
            if set(cpu1) != set(cpu0):
                out["warning"] = "a worker restarted during the run: CPU figures are incomplete"
            used = sum(cpu1.get(pid, 0.0) - t for pid, t in cpu0.items())
            helpers = {name: ms - helpers0[name] for name, ms in target.helper_cpu_ms().items()}
        else:
            out = self.load(sc, base, dialect, a.duration, a.chunks, ca)
            used, helpers = 0.0, {}
        wall = (time.monotonic() - wall0) * 1000
        tcp1 = tcp_counters()
        out["tcp"] = {name: tcp1[name] - tcp0.get(name, 0) for name in tcp1}
        stats1 = fake.stats()
        count = out.get("completed", out.get("requests", 0))
        per_1000 = 1000 / count if count else 0.0
        out["upstream_connections"] = stats1["connections"] - stats0["connections"]
        out["upstream_connections_per_1000"] = out["upstream_connections"] * per_1000
        if fake.tls:
            out["tls_handshakes"] = stats1["tls_handshakes"] - stats0["tls_handshakes"]
            out["tls_handshakes_per_1000"] = out["tls_handshakes"] * per_1000
        fake_ms = stats1["cpu_ms"] - stats0["cpu_ms"]
        if target:
            out["server_cpu_ms"] = used
            out["server_cpu_ms_per"] = used / count if count else None
            out["helper_cpu_pct"] = {name: 100 * ms / wall for name, ms in helpers.items()}
        out["wall_ms"] = wall
        out["fake_cpu_pct"] = 100 * fake_ms / wall
        out["load_cpu_pct"] = 100 * out["load_cpu_ms"] / wall
        # Everything else this machine ran meanwhile (other jobs share it): in % of one core.
        ours = fake_ms + out["load_cpu_ms"] + used + sum(helpers.values())
        out["other_cpu_pct"] = max(0.0, 100 * (machine_busy_ms() - busy0 - ours) / wall)
        if target and sc.wave:
            out["setup"] = self.setup_cost(sc, base, dialect, target, out)
        return out

    def setup_cost(self, sc: Scenario, base: str, dialect: Dialect, target: Group, full: dict) -> dict:
        """The same wave once more with one chunk per stream: CPU per stream is then the setup and one
        chunk, so the CPU of a chunk is (full - one) / (chunks - 1), and the setup the rest."""
        fake = self.fake_for(sc)
        fake.configure(chunks=1)
        try:
            cpu0 = target.cpu_ms()
            out = self.load(sc, base, dialect, self.args.duration, 1)
            cpu1 = target.cpu_ms()
        finally:
            fake.configure(chunks=self.args.chunks)
        used = sum(cpu1.get(pid, 0.0) - t for pid, t in cpu0.items())
        one = used / out["completed"] if out["completed"] else None
        per_stream = full.get("server_cpu_ms_per")
        chunks = self.args.chunks
        if one is None or per_stream is None or chunks < 2:
            return {"one_chunk_cpu_ms": one}
        per_chunk = max(0.0, (per_stream - one) / (chunks - 1))
        return {
            "one_chunk_cpu_ms": one,
            "per_chunk_cpu_ms": per_chunk,
            "setup_cpu_ms": max(0.0, one - per_chunk),
            "failed": out["failed"],
        }

    def run(self, sc: Scenario) -> dict:
        dialect = DIALECTS[sc.dialect]
        fake = self.fake_for(sc)
        fake.configure(
            latency=sc.latency, jitter=sc.jitter, chunks=self.args.chunks, interval=self.args.interval
        )
        result = {"direct": self.measure(sc, fake.url, DIRECT, None)}
        if sc.scale_out:
            result["single"] = self.scaled(sc, dialect, instances=1)
            result["gateway"] = self.scaled(sc, dialect, instances=2)
            return result
        passthrough = PassThrough(
            self.workdir, fake.url, self.args.workers, fake.tls.ca if fake.tls else None
        )
        try:
            result["passthrough"] = self.measure(sc, passthrough.url, DIRECT, Group([passthrough]))
        finally:
            passthrough.stop()
        gateway = self.gateway(fake)
        try:
            result["gateway"] = self.measure(sc, gateway.url, dialect, Group([gateway]))
        finally:
            gateway.stop()
        return result

    def scaled(self, sc: Scenario, dialect: Dialect, instances: int) -> dict:
        """`instances` gateways behind nginx, sharing one fresh Redis; the workers split between them."""
        redis = Redis(self.workdir)
        gateways: list[Server] = []
        group = Group(gateways, [redis])
        try:
            workers = max(1, self.args.workers // instances)
            for _ in range(instances):
                gateways.append(self.gateway(workers=workers, REDIS_URL=redis.url))
            nginx = Nginx(self.workdir, [g.port for g in gateways])  # type: ignore[attr-defined]
            group.helpers.insert(0, nginx)
            out = self.measure(sc, nginx.url, dialect, group)
            out["instances"] = instances
            out["workers_per_instance"] = workers
            return out
        finally:
            group.stop()


# -- report -------------------------------------------------------------------------------------


def fmt(value, digits=1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def ratio(gw, base) -> str:
    if gw is None or not base:
        return "-"
    return f"{gw / base:.2f}x"


def check(name: str, value, limit, higher_is_better=False, unit="") -> dict:
    if value is None or limit is None:
        return {"target": name, "met": False, "value": value, "limit": limit, "note": "not measured"}
    met = value >= limit if higher_is_better else value <= limit
    if met:
        note = "met"
    else:
        miss = (limit - value) / limit if higher_is_better else (value - limit) / (limit or 1)
        note = f"MISSED by {fmt(abs(value - limit), 2)}{unit}" + (f" ({miss:.0%})" if limit else "")
    return {"target": name, "met": met, "value": value, "limit": limit, "note": note}


def column_name(sc: Scenario, column: str) -> str:
    if sc.scale_out and column in SCALE_OUT_NAMES:
        return SCALE_OUT_NAMES[column]
    return COLUMN_NAMES[column]


def report(sc: Scenario, result: dict) -> tuple[list[str], list[dict]]:
    gw_key, base_key, _ = sc.columns
    gw, base, direct = (result[c] for c in sc.columns)
    names = [column_name(sc, c) for c in sc.columns]
    lines = [
        f"{sc.label}: {sc.title}",
        f"  {'':28}{names[0]:>12}{names[1]:>12}{names[2]:>12}"
        f"{'/' + names[1][:9]:>11}{'/direct':>9}{'added':>10}",
    ]

    def row(name, key_path, digits=1, added=True):
        values = [_get(result[c], key_path) for c in sc.columns]
        g, b, d = values
        extra = fmt(g - d, digits) if added and g is not None and d is not None else ""
        lines.append(
            f"  {name:28}{fmt(g, digits):>12}{fmt(b, digits):>12}{fmt(d, digits):>12}"
            f"{ratio(g, b):>11}{ratio(g, d):>9}{extra:>10}"
        )

    checks = []
    t = sc.targets
    if not sc.streaming:
        row("requests/s", "rps", 0, added=False)
        row("latency p50 ms", "p50_ms", 2)
        row("latency p99 ms", "p99_ms", 2)
        row("errors", "errors", added=False)
        row("CPU ms per request", "server_cpu_ms_per", 3, added=False)
    else:
        row("streams completed", "completed", added=False)
        row("streams failed", "failed", added=False)
        row("most streams open at once", "peak_open", added=False)
        row("TTFB p50 ms", "ttfb_ms.p50", 2)
        row("TTFB p99 ms", "ttfb_ms.p99", 2)
        row("chunk lag p50 ms", "lag_ms.p50", 2)
        row("chunk lag p99 ms", "lag_ms.p99", 2)
        row("CPU ms per stream", "server_cpu_ms_per", 3, added=False)
        if sc.wave:
            row("  setup CPU ms per stream", "setup.setup_cpu_ms", 3, added=False)
            row("  CPU ms per chunk", "setup.per_chunk_cpu_ms", 4, added=False)
    row("peak RSS MB", "peak_rss_mb", added=False)
    row("upstream conns per 1,000", "upstream_connections_per_1000", 2, added=False)
    if sc.tls:
        row("TLS handshakes per 1,000", "tls_handshakes_per_1000", 2, added=False)
    if sc.streaming:
        row("listen queue overflows", "tcp.listen_overflows", added=False)
        row("SYN retransmits", "tcp.syn_retransmits", added=False)
    for c in sc.columns:
        out = result[c]
        if out.get("error_detail"):
            lines.append(f"  {column_name(sc, c)} errors: {out['error_detail']}")
        if sc.streaming and out.get("errors"):
            lines.append(f"  {column_name(sc, c)} stream errors: {out['errors']}")

    gw_cpu = gw.get("server_cpu_ms_per")
    if not sc.streaming:
        if "cpu_vs_base" in t:
            limit = t["cpu_vs_base"] * base["server_cpu_ms_per"] if base.get("server_cpu_ms_per") else None
            checks.append(
                check(
                    f"CPU <= {t['cpu_vs_base']}x {names[1]}'s ({fmt(limit, 3)} ms)", gw_cpu, limit, unit=" ms"
                )
            )
        if "added_p50" in t:
            added = gw["p50_ms"] - direct["p50_ms"]
            checks.append(check(f"added p50 <= {t['added_p50']} ms", added, t["added_p50"], unit=" ms"))
        if "added_p99" in t:
            added = gw["p99_ms"] - direct["p99_ms"]
            checks.append(check(f"added p99 <= {t['added_p99']} ms", added, t["added_p99"], unit=" ms"))
        if "handshakes" in t:
            checks.append(
                check(
                    f"TLS handshakes < {t['handshakes']} per 1,000",
                    gw.get("tls_handshakes_per_1000"),
                    t["handshakes"] - 1e-9,
                )
            )
        checks.append(check("no errors", gw["errors"], 0))
    else:
        for what, path in (("TTFB", "ttfb_ms.p99"), ("chunk lag", "lag_ms.p99")):
            key = "ttfb" if what == "TTFB" else "lag"
            if f"{key}_vs_direct" in t:
                factor, plus = t[f"{key}_vs_direct"]
                d = _get(direct, path)
                limit = None if d is None else factor * d + plus
                checks.append(
                    check(
                        f"{what} p99 <= {factor}x direct + {plus} ms ({fmt(limit, 1)} ms)",
                        _get(gw, path),
                        limit,
                        unit=" ms",
                    )
                )
            if f"{key}_p99" in t:
                checks.append(
                    check(f"{what} p99 <= {t[f'{key}_p99']} ms", _get(gw, path), t[f"{key}_p99"], unit=" ms")
                )
        if "rss" in t:
            checks.append(check(f"peak RSS <= {t['rss']} MB", gw.get("peak_rss_mb"), t["rss"], unit=" MB"))
        if "cpu_stream" in t:
            checks.append(check(f"CPU <= {t['cpu_stream']} ms/stream", gw_cpu, t["cpu_stream"], unit=" ms"))
        if "setup" in t:
            checks.append(
                check(
                    f"setup CPU <= {t['setup']} ms/stream",
                    _get(gw, "setup.setup_cpu_ms"),
                    t["setup"],
                    unit=" ms",
                )
            )
        checks.append(check(f"all {fmt(gw['streams'])} streams complete", gw["failed"], 0))
    if "cpu_vs_base" in t and sc.streaming:
        limit = t["cpu_vs_base"] * base["server_cpu_ms_per"] if base.get("server_cpu_ms_per") else None
        checks.append(check(f"CPU <= {t['cpu_vs_base']}x {names[1]}'s", gw_cpu, limit, unit=" ms"))

    def usage(c: str) -> str:
        out = result[c]
        helpers = "".join(
            f", {name} {fmt(pct, 0)}%" for name, pct in (out.get("helper_cpu_pct") or {}).items()
        )
        return (
            f"{column_name(sc, c)}: fake {fmt(out['fake_cpu_pct'], 0)}%, load tool "
            f"{fmt(out['load_cpu_pct'], 0)}%{helpers}, other {fmt(out['other_cpu_pct'], 0)}%"
        )

    lines.append("  CPU, % of a core: " + "; ".join(usage(c) for c in sc.columns))
    noisy = max(result[c]["other_cpu_pct"] for c in sc.columns)
    if noisy > NOISY_PCT:
        lines.append(
            f"  NOISY: other processes used up to {noisy:.0f}% of a core during this scenario; "
            "its latencies say more about them than about the gateway (rerun when the machine is quiet)"
        )
    for c in sc.columns:
        if result[c].get("warning"):
            lines.append(f"  warning ({column_name(sc, c)}): {result[c]['warning']}")
    for c in checks:
        lines.append(f"  target {c['target']}: {fmt(c['value'], 2)} -> {c['note']}")
    return lines, checks


def across(results: dict[str, dict]) -> list[dict]:
    """The targets that compare two scenarios of the same run."""
    checks = []

    def cpu(label: str):
        result = results.get(label)
        return None if result is None else result["gateway"].get("server_cpu_ms_per")

    for letter, per in (("a", "request"), ("d", "stream")):
        plain, tls = cpu(f"({letter}) openai"), cpu(f"({letter}-tls) openai")
        if tls is not None:
            limit = None if plain is None else 1.3 * plain
            c = check(f"({letter}-tls) CPU per {per} <= 1.3x ({letter})'s", tls, limit, unit=" ms")
            c["scenario"] = f"({letter}-tls) openai"
            checks.append(c)
    chat, responses = cpu("(a) openai"), cpu("(e/a) responses")
    if responses is not None:
        limit = None if chat is None else 1.1 * chat
        c = check("(e/a) Responses CPU per request <= 1.1x chat completions'", responses, limit, unit=" ms")
        c["scenario"] = "(e/a) responses"
        checks.append(c)
    return checks


def _get(d: dict, path: str):
    for part in path.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


# -- main ---------------------------------------------------------------------------------------

# The goals, scenario by scenario (bench/README.md explains each).
TARGETS_A = {"cpu_vs_base": 0.7}
TARGETS_B = {"added_p50": 10, "added_p99": 40}
TARGETS_C = {"ttfb_vs_direct": (1.2, 10), "lag_vs_direct": (1.2, 10), "rss": 160}
TARGETS_D = {"ttfb_p99": 1000, "lag_p99": 100, "cpu_stream": 1.5, "setup": 0.5}


def scenarios(args, dialects: list[str]) -> list[Scenario]:
    out = []
    everywhere = args.all_dialects
    for name in dialects:
        main = name == "openai"
        a = Scenario(
            "a",
            name,
            False,
            f"non-streaming, upstream 0 ms, {args.conns_a} connections",
            connections=args.conns_a,
            targets=TARGETS_A,
        )
        out.append(a)
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
                    targets=TARGETS_B,
                )
            )
        streams = DIALECTS[name].streams
        c = Scenario(
            "c",
            name,
            True,
            f"{args.streams_c} concurrent streams of {args.chunks} chunks at {args.interval} ms",
            streams=args.streams_c,
            ramp=args.ramp,
            targets=TARGETS_C,
        )
        d = Scenario(
            "d",
            name,
            True,
            f"{args.streams_d} streams opened within {args.ramp_d:g} s, {args.chunks} chunks at {args.interval} ms",
            streams=args.streams_d,
            wave=True,
            ramp=args.ramp_d,
            targets=TARGETS_D,
        )
        if streams:
            out.append(c)
            if main or everywhere:
                out.append(d)
        if main:
            out.append(
                Scenario(
                    "a-tls",
                    name,
                    False,
                    a.title + ", upstream over TLS",
                    connections=args.conns_a,
                    tls=True,
                    targets={"handshakes": 1},
                )
            )
            out.append(
                Scenario(
                    "d-tls",
                    name,
                    True,
                    d.title + ", upstream over TLS",
                    streams=d.streams,
                    wave=True,
                    ramp=d.ramp,
                    tls=True,
                )
            )
            scale = "two instances (1 worker each) behind nginx sharing one Redis, beside one (2 workers)"
            out.append(
                Scenario(
                    "s/a",
                    name,
                    False,
                    f"{a.title}: {scale}",
                    connections=args.conns_a,
                    scale_out=True,
                    targets={"cpu_vs_base": 1.1},
                )
            )
            out.append(
                Scenario(
                    "s/c",
                    name,
                    True,
                    f"{c.title}: {scale}",
                    streams=args.streams_c,
                    ramp=args.ramp,
                    scale_out=True,
                    targets={"cpu_vs_base": 1.1},
                )
            )
    only = set(args.only.split(",")) if args.only else None

    def chosen(s: Scenario) -> bool:
        if only is None or s.letter in only:
            return True
        if s.letter in ("a", "c") and s.dialect != "openai" and "e" in only:
            return True
        return (s.tls and "tls" in only) or (s.scale_out and "s" in only)

    return [s for s in out if chosen(s)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5 s per measurement, 2 s warm-up")
    p.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 20)")
    p.add_argument("--warmup", type=float, default=None, help="seconds of warm-up before each (default 5)")
    p.add_argument(
        "--only",
        default="",
        help="scenarios to run, e.g. a,c (e: the other dialects' a and c; tls: a-tls,d-tls; s: s/a,s/c)",
    )
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
    p.add_argument("--ramp", type=float, default=1.0, help="seconds over which the first streams of (c) open")
    p.add_argument("--ramp-d", type=float, default=2.0, help="seconds over which the streams of (d) open")
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
    have_scale_out = os.access(NGINX, os.X_OK) and REDIS_SERVER is not None
    workdir = Path(tempfile.mkdtemp(prefix="gemgate-bench-"))
    fake = Fake(workdir)
    tls_fake: Fake | None = None
    results: list[dict] = []
    compared: list[dict] = []
    by_label: dict[str, dict] = {}
    all_checks: list[dict] = []
    try:
        runner = Runner(args, workdir, fake, None)
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
            f"{args.warmup:g} s warm-up, {os.cpu_count()} CPUs; fake upstream: bench/fake_gemini.js; "
            "columns: gemgate, a bare Flask + gevent + requests pass-through (bench/passthrough.py), "
            "straight at the fake"
        )
        for name, why in skipped.items():
            if why:
                print(f"SKIPPED {name}: {why}")
        print()
        for sc in scenarios(args, served):
            why_not = None
            if not sc.streaming and not have_wrk:
                why_not = "wrk is not installed (apt-get install wrk; `make bench` does)"
            elif sc.scale_out and not have_scale_out:
                why_not = "nginx and redis-server are needed (apt-get install nginx redis-server)"
            if why_not:
                print(f"{sc.label}: SKIPPED, {why_not}\n")
                results.append({"scenario": sc.label, "skipped": why_not})
                continue
            if sc.tls and runner.tls_fake is None:
                tls_fake = runner.tls_fake = Fake(workdir, TLSFiles.make(workdir))
            result = runner.run(sc)
            lines, checks = report(sc, result)
            print("\n".join(lines) + "\n", flush=True)
            for c in checks:
                c["scenario"] = sc.label
            all_checks += checks
            by_label[sc.label] = result
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
        compared = across(by_label)
        for c in compared:
            print(f"{c['scenario']}: target {c['target']}: {fmt(c['value'], 3)} -> {c['note']}")
        all_checks += compared
        missed = [c for c in all_checks if not c["met"]]
        print(f"\ntargets: {len(all_checks) - len(missed)} met, {len(missed)} missed")
        for c in missed:
            print(f"  {c['scenario']}: {c['target']}: {c['note']}")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "args": {k: str(v) for k, v in vars(args).items()},
                        "skipped": {k: v for k, v in skipped.items() if v},
                        "results": results,
                        "across": compared,
                    },
                    indent=2,
                )
            )
    finally:
        stop(fake.proc)
        if tls_fake is not None:
            stop(tls_fake.proc)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
