"""What the shared store costs a request: in-process per-request cost, and req/s through gunicorn.

    .venv/bin/python -m tests.store.bench_store micro [--n 5000]
    .venv/bin/python -m tests.store.bench_store http [--duration 10] [--connections 64] [--rounds 1]

`micro` times, per backend, what every request does to the store: KeyPool.choose (one read),
Quotas.admit (a client key with limits: one atomic read-and-count) and the usage sink (one
insert, plus the token charge), and the same for an API_KEYS client (no limits).
`http` runs wrk against POST /v1beta/models/{m}:generateContent through real gunicorn (2 gevent
workers) and a fake Gemini (bench/fake_gemini.js when node is there, else tests.fake_upstream):
the committed tree without the store (git HEAD) as the baseline, then this tree on SQLite, on
Redis, and with a rate-limited client key. It starts its own redis-server when one is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = "gemini-2.5-flash"
USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 1, "thoughtsTokenCount": 34}
CLIENT_KEY = "bench-client-key"
LIMITED_KEY = "bench-limited-key"
UPSTREAM_KEYS = ",".join(f"AIzaSyBENCH{i}{'x' * 27}" for i in range(3))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=timeout).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_redis(workdir: Path):
    server = shutil.which("redis-server")
    if not server:
        return None, None
    port = free_port()
    proc = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis

    for _ in range(200):
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    return proc, f"redis://127.0.0.1:{port}/0"


# -- micro ----------------------------------------------------------------------------------------


def micro(n: int) -> None:
    from app.config import ClientKey
    from app.store.redis import RedisStore
    from app.store.sqlite import SQLiteStore
    from app.upstream.key_pool import KeyPool, MemoryKeyStore
    from app.usage import UsageSink
    from app.usage.quotas import Quotas
    from app.usage.record import RequestRecord

    limited = ClientKey(
        "alice",
        b"x" * 32,
        models=("gemini-*",),
        requests_per_minute=10**9,
        tokens_per_minute=10**12,
        tokens_per_day=10**13,
    )
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc, redis_url = start_redis(Path(tmp))
        backends = {"sqlite": lambda: SQLiteStore(Path(tmp) / "gemgate.db")}
        if redis_url:
            backends["redis"] = lambda: RedisStore(redis_url)
        print(f"per request, mean of {n} (µs); p99 in brackets")
        heads = ("choose", "admit", "record", "limited total", "unlimited total")
        print(f"{'backend':8} " + " ".join(f"{h:>15}" for h in heads))
        try:
            for name, opener in backends.items():
                store = opener()
                pool = KeyPool(UPSTREAM_KEYS.split(","), store)
                quotas = Quotas((limited,), store)
                sink = UsageSink(store, quotas, retention_days=90)
                timings: dict[str, list[float]] = {
                    "choose": [],
                    "admit": [],
                    "record": [],
                    "limited": [],
                    "unlimited": [],
                }
                for i in range(n + 200):
                    for client in ("alice", "key-1"):
                        t0 = time.perf_counter()
                        key = pool.choose()
                        pool.succeeded(key)
                        t1 = time.perf_counter()
                        rec = RequestRecord(f"req_{i}", "gemini", "/v1beta/models/m:generateContent")
                        rec.client = client
                        quotas.admit(rec)
                        rec.model = MODEL
                        t2 = time.perf_counter()
                        rec.set_usage(USAGE)
                        rec.status = 200
                        sink(rec)
                        t3 = time.perf_counter()
                        if i < 200:
                            continue  # warm-up
                        if client == "alice":
                            timings["choose"].append(t1 - t0)
                            timings["admit"].append(t2 - t1)
                            timings["record"].append(t3 - t2)
                            timings["limited"].append(t3 - t0)
                        else:
                            timings["unlimited"].append(t3 - t0)
                cells = [f"{statistics.fmean(v) * 1e6:7.1f} [{_p99(v) * 1e6:5.0f}]" for v in timings.values()]
                print(f"{name:8} " + " ".join(f"{c:>15}" for c in cells))
                store.close()
            pool = KeyPool(UPSTREAM_KEYS.split(","), MemoryKeyStore())
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                pool.succeeded(pool.choose())
                samples.append(time.perf_counter() - t0)
            print(
                f"{'memory':8} {statistics.fmean(samples) * 1e6:7.1f} [{_p99(samples) * 1e6:5.0f}]  (choose only: "
                f"the per-process pool before the store)"
            )
        finally:
            if redis_proc:
                redis_proc.terminate()
                redis_proc.wait()


def _p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99)]


# -- http -----------------------------------------------------------------------------------------

_LUA = """
wrk.method = "POST"
wrk.body = '{"contents":[{"role":"user","parts":[{"text":"What is the capital of France?"}]}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-goog-api-key"] = os.getenv("BENCH_KEY")
function done(summary, latency, requests)
  io.write(string.format('BENCH {"requests": %d, "seconds": %f, "non2xx": %d, "errors": %d, "p50": %d, "p99": %d}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def http(duration: float, connections: int, rounds: int = 1) -> None:
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = tmp / "post.lua"
        script.write_text(_LUA)
        keys = tmp / "keys.json"
        keys.write_text(
            json.dumps(
                {
                    "keys": [
                        {
                            "name": "limited",
                            "key": LIMITED_KEY,
                            "models": ["gemini-*"],
                            "requests_per_minute": 10**9,
                            "tokens_per_minute": 10**12,
                            "tokens_per_day": 10**13,
                        }
                    ]
                }
            )
        )
        before = tmp / "before"
        before.mkdir()
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        fake = _start_fake(tmp)
        redis_proc, redis_url = start_redis(tmp)
        runs = [
            ("before: git HEAD, no store", before, {}, CLIENT_KEY),
            ("SQLite", ROOT, {}, CLIENT_KEY),
            ("SQLite, rate-limited key", ROOT, {"CLIENT_KEYS_FILE": str(keys)}, LIMITED_KEY),
        ]
        if redis_url:
            runs += [
                ("Redis", ROOT, {"REDIS_URL": redis_url}, CLIENT_KEY),
                (
                    "Redis, rate-limited key",
                    ROOT,
                    {"REDIS_URL": redis_url, "CLIENT_KEYS_FILE": str(keys)},
                    LIMITED_KEY,
                ),
            ]
        print(
            f"wrk, {connections} connections, {duration:g} s each, 2 gevent workers, {os.cpu_count()} CPUs; "
            f"fake upstream: {fake[1]}"
        )
        try:
            for label, tree, env, key in runs * rounds:
                result = _measure(tree, tmp, fake[2], env, key, script, duration, connections)
                rate = result["requests"] / result["seconds"]
                print(
                    f"{label:28} {rate:8.0f} req/s   p50 {result['p50'] / 1000:6.1f} ms"
                    f"   p99 {result['p99'] / 1000:6.1f} ms   non-2xx {result['non2xx']}  errors {result['errors']}"
                    f"  (healthz store: {result['store']})"
                )
        finally:
            fake[0].terminate()
            fake[0].wait()
            if redis_proc:
                redis_proc.terminate()
                redis_proc.wait()


def _start_fake(tmp: Path):
    port = free_port()
    if shutil.which("node") and (ROOT / "bench" / "fake_gemini.js").exists():
        cmd, name = (
            ["node", str(ROOT / "bench" / "fake_gemini.js"), "--port", str(port)],
            "bench/fake_gemini.js",
        )
    else:
        cmd, name = [sys.executable, "-m", "tests.fake_upstream", "--port", str(port)], "tests.fake_upstream"
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/v1beta/models")
    return proc, name, f"http://127.0.0.1:{port}"


def _measure(
    tree: Path,
    tmp: Path,
    upstream: str,
    extra: dict,
    key: str,
    script: Path,
    duration: float,
    connections: int,
) -> dict:
    port = free_port()
    data = Path(tempfile.mkdtemp(dir=tmp))
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "API_KEYS": CLIENT_KEY,
        "GEMINI_API_KEYS": UPSTREAM_KEYS,
        "GEMINI_BASE_URL": upstream,
        "DATA_DIR": str(data),
        "LOG_LEVEL": "warning",
        **extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as health:
            store = json.loads(health.read()).get("store", "none")  # proves which tree is running
        url = f"http://127.0.0.1:{port}/v1beta/models/{MODEL}:generateContent"
        wrk = ["wrk", "-t", "2", "-c", str(connections), "-s", str(script), url]
        subprocess.run(
            wrk + ["-d", "2s"], env={**os.environ, "BENCH_KEY": key}, capture_output=True
        )  # warm-up
        out = subprocess.run(
            wrk + ["-d", f"{duration:g}s"],
            env={**os.environ, "BENCH_KEY": key},
            capture_output=True,
            text=True,
        ).stdout
        return {**json.loads(re.search(r"BENCH (\{.*\})", out).group(1)), "store": store}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.store.bench_store")
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("micro").add_argument("--n", type=int, default=5000)
    h = sub.add_parser("http")
    h.add_argument("--duration", type=float, default=10)
    h.add_argument("--connections", type=int, default=64)
    h.add_argument("--rounds", type=int, default=1, help="run every variant this many times, interleaved")
    args = parser.parse_args()
    if args.mode == "micro":
        micro(args.n)
    else:
        http(args.duration, args.connections, args.rounds)


if __name__ == "__main__":
    main()
