"""Fixtures for the shared store: a real redis-server, each backend, and multi-worker gateways."""

from __future__ import annotations

import gc
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from app.store.redis import RedisStore
from app.store.sqlite import SQLiteStore
from tests.conftest import Gateway, Process, free_port, make_env

REDIS_SERVER = shutil.which("redis-server")
NO_REDIS = "redis-server is not installed (apt-get install redis-server; .ci/run does)"
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason=NO_REDIS)
BACKENDS = ["sqlite", pytest.param("redis", marks=needs_redis)]


class RedisServer:
    def __init__(self, port: int, proc: Process):
        self.port = port
        self.proc = proc
        self.url = f"redis://127.0.0.1:{port}/0"

    def flush(self) -> None:
        with redis.Redis.from_url(self.url) as r:
            r.flushall()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A throwaway redis-server on 127.0.0.1: no persistence, stopped with the session."""
    if REDIS_SERVER is None:
        pytest.skip(NO_REDIS)
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = Process(
        [
            REDIS_SERVER,
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
        dict(os.environ),
        workdir / "redis.log",
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with redis.Redis(port=port, socket_connect_timeout=0.2) as r:
                r.ping()
            break
        except redis.ConnectionError:
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{proc.output()}") from None
            time.sleep(0.05)
    yield RedisServer(port, proc)
    proc.stop()


@pytest.fixture
def redis_url(redis_server):
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def open_backend(backend, request, tmp_path):
    """Opens a store of this test's backend; every call is another 'worker' on the same state."""
    opened = []
    url = request.getfixturevalue("redis_url") if backend == "redis" else None

    def open_one():
        store = RedisStore(url) if backend == "redis" else SQLiteStore(tmp_path / "data" / "gemgate.db")
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_backend):
    return open_backend()


@pytest.fixture
def launch(fake_upstream, tmp_path):
    """Start a gunicorn gateway with any settings (WEB_CONCURRENCY, DATA_DIR...); stopped after the test."""
    started: list[Gateway] = []

    def start(data_dir: Path | None = None, **overrides) -> Gateway:
        port = free_port()
        logs = tmp_path / f"gateway-{port}"
        logs.mkdir()
        env = dict(os.environ)
        env.update(make_env(GEMINI_BASE_URL=fake_upstream.base_url, STREAM_IDLE_TIMEOUT=5))
        env.update({"PORT": str(port), "DATA_DIR": str(data_dir or tmp_path / "data")})
        env.update({k: str(v) for k, v in overrides.items()})
        proc = Process(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            env,
            logs / "gateway.log",
        )
        gateway = Gateway(port, proc)
        started.append(gateway)
        _wait_until_up(gateway.url("/healthz"), proc)
        return gateway

    yield start
    # A finished response's socket stays open (a keep-alive the worker's graceful stop waits on)
    # until the response is collected; requests' objects form cycles, so collect them now.
    gc.collect()
    for gateway in started:
        gateway.proc.stop()


def _wait_until_up(url: str, proc: Process, timeout: float = 20.0) -> None:
    # Like conftest's, with a read timeout longer than a worker's boot: a request the kernel has
    # queued for a booting worker is then answered, never abandoned half-open (an abandoned one
    # keeps a worker busy, and its graceful stop waiting, until the socket is collected).
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=timeout).close()
            return
        except requests.ConnectionError:
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up:\n{proc.output()}") from None
            time.sleep(0.05)
