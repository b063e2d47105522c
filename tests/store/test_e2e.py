"""Shared state end to end: two gunicorn workers behind one port, on SQLite and on Redis."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.conftest import CLIENT_KEY, ROOT, SEED_KEY, UPSTREAM_KEYS, fixture_json

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
AUTH = {"x-goog-api-key": CLIENT_KEY}
ALICE = "alice-key-0123456789"
TICK = {
    "candidates": [{"content": {"parts": [{"text": "tick"}], "role": "model"}, "index": 0}],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
}


@pytest.fixture
def shared(backend, request, tmp_path):
    """Settings for a gateway on this backend, with an access log that names each worker."""
    env = {
        "WEB_CONCURRENCY": 2,
        "ACCESS_LOG": tmp_path / "access.log",
        "GUNICORN_CMD_ARGS": "--access-logformat '%(p)s %(U)s %(s)s'",
    }
    if backend == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


def workers_that_served(access_log: Path, path: str) -> set[str]:
    time.sleep(0.2)  # access lines are written after the response
    return {line.split()[0] for line in access_log.read_text().splitlines() if path in line}


def post_many(url: str, count: int, headers=AUTH, threads: int = 8) -> list[requests.Response]:
    def one(_):
        return requests.post(url, json=BODY, headers=headers, timeout=10)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def test_a_key_that_answers_429_to_one_worker_is_rested_by_both(launch, upstream, shared, tmp_path):
    gateway = launch(**shared)
    upstream.script(
        {
            "status": 429,
            "body": fixture_json("gemini/error_429_resource_exhausted.json"),
            "key": UPSTREAM_KEYS[0],
            "repeat": -1,
        }
    )
    # Each worker's rotation starts at key-1: whichever serves this first meets the 429.
    assert requests.post(gateway.url(GEN), json=BODY, headers=AUTH, timeout=10).status_code == 200
    assert [c["key"] for c in upstream.calls()] == [UPSTREAM_KEYS[0], UPSTREAM_KEYS[1]]
    answers = post_many(gateway.url(GEN), 40)
    assert [r.status_code for r in answers] == [200] * 40
    used = [c["key"] for c in upstream.calls()]
    assert used.count(UPSTREAM_KEYS[0]) == 1  # no worker sent it again during its 26 s cooldown
    assert len(used) == 42 and set(used[2:]) == {UPSTREAM_KEYS[1], UPSTREAM_KEYS[2]}
    assert len(workers_that_served(shared["ACCESS_LOG"], GEN)) == 2
    health = requests.get(gateway.url("/healthz"), timeout=5).json()
    assert health["upstream_keys"]["models"]["gemini-2.5-flash"]["cooling"] == 1  # the model's quota
    assert health["store"] == ("redis" if "REDIS_URL" in shared else "sqlite")


def test_quotas_hold_across_workers(launch, upstream, shared, tmp_path):
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        f"keys:\n  - name: alice\n    key: {ALICE}\n    requests_per_minute: 5\n"
        f"  - name: bob\n    key: bob-key-0123456789\n    tokens_per_minute: 92\n"
    )
    gateway = launch(CLIENT_KEYS_FILE=keys, **shared)
    answers: list[requests.Response] = []
    for _ in range(10):  # until both workers have had some: a gevent worker can take a burst alone
        answers += post_many(gateway.url(GEN), 16, headers={"x-goog-api-key": ALICE}, threads=16)
        if len(workers_that_served(shared["ACCESS_LOG"], GEN)) == 2:
            break
    assert len(workers_that_served(shared["ACCESS_LOG"], GEN)) == 2
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 5 + [429] * (len(answers) - 5)  # five in all, not five a worker
    refused = next(r for r in answers if r.status_code == 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert (
        refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED" and refused.json()["error"]["code"] == 429
    )
    r = requests.post(
        gateway.url("/v1/chat/completions"), json={}, headers={"Authorization": f"Bearer {ALICE}"}, timeout=5
    )
    assert (
        r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error" and r.headers["Retry-After"]
    )
    r = requests.post(
        gateway.url("/v1/messages"),
        json={},
        headers={"x-api-key": ALICE, "anthropic-version": "2023-06-01"},
        timeout=5,
    )
    assert (
        r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error" and r.headers["Retry-After"]
    )
    assert len(upstream.calls()) == 5

    # bob's tokens: Gemini reports 46 a call (generate_text.json); 92 a minute allows two.
    bob = {"x-goog-api-key": "bob-key-0123456789"}
    statuses = [
        requests.post(gateway.url(GEN), json=BODY, headers=bob, timeout=5).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_kill_9_loses_no_completed_request(launch, upstream, shared, tmp_path):
    data = tmp_path / "data"
    gateway = launch(data_dir=data, **shared)
    # Streams that take a while, so some are in flight whenever a worker dies.
    upstream.script({"match": ":streamGenerateContent", "events": [TICK] * 5, "interval": 0.02, "repeat": -1})
    completed: list[str] = []
    stop = threading.Event()

    def client(n: int) -> None:
        session = requests.Session()
        while not stop.is_set():
            url = gateway.url(STREAM if n % 2 else GEN)
            try:
                r = session.post(url, json=BODY, headers=AUTH, timeout=10)
                body = r.content  # raises if the connection broke before the end
            except requests.RequestException:
                session = requests.Session()
                continue
            if r.status_code == 200 and (url == gateway.url(GEN) or body.count(b"data: ") == 5):
                completed.append(r.headers["x-request-id"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.7)
        master = gateway.proc.pid
        victim = _children(master)[0]
        os.kill(victim, signal.SIGKILL)  # mid-traffic: mid-request, and likely mid-write
        deadline = time.monotonic() + 15
        while len([p for p in _children(master) if p != victim]) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # gunicorn starts a new worker
        time.sleep(0.7)
        os.killpg(master, signal.SIGKILL)  # then the whole gateway, master and all
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(completed) > 20

    restarted = launch(data_dir=data, **shared)
    health = requests.get(restarted.url("/healthz"), timeout=5)
    assert health.status_code == 200
    env = {
        **os.environ,
        "DATA_DIR": str(data),
        "API_KEYS": CLIENT_KEY,
        **{k: str(v) for k, v in shared.items()},
    }
    export = subprocess.run(
        [sys.executable, "-m", "app.usage", "export", "--format", "jsonl"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert export.returncode == 0, export.stderr
    stored = {json.loads(line)["request_id"] for line in export.stdout.splitlines()}
    missing = set(completed) - stored
    assert not missing, f"{len(missing)} of {len(completed)} completed requests have no usage record"
    if "REDIS_URL" not in shared:
        with sqlite3.connect(data / "gemgate.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_upload_started_on_one_gateway_finishes_on_another_and_its_file_is_its_creators_on_both(
    launch, upstream, shared, tmp_path
):
    """Two gateways on one store (two hosts on Redis; two on one DATA_DIR with SQLite)."""
    settings = {k: v for k, v in shared.items() if k == "REDIS_URL"}
    first = launch(tmp_path / "data", **settings)
    second = launch(tmp_path / "data", **settings)
    started = requests.post(
        first.url("/upload/v1beta/files"),
        headers={
            **AUTH,
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": "5",
            "X-Goog-Upload-Header-Content-Type": "text/plain",
        },
        json={"file": {"displayName": "hello.txt"}},
        timeout=10,
    )
    target = started.headers["X-Goog-Upload-URL"].split(str(first.port), 1)[1]
    done = requests.post(
        second.url(target),
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
        data=b"hello",
        timeout=10,
    )
    assert done.status_code == 200, done.text
    name = done.json()["file"]["name"]
    for gateway in (first, second):
        assert requests.get(gateway.url(f"/v1beta/{name}"), headers=AUTH, timeout=10).ok
        other = requests.get(gateway.url(f"/v1beta/{name}"), headers={"x-goog-api-key": SEED_KEY}, timeout=10)
        assert other.status_code == 404
    listed = requests.get(second.url("/v1beta/files"), headers=AUTH, timeout=10).json()
    assert [f["name"] for f in listed["files"]] == [name]
