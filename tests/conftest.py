"""Shared fixtures: the app for unit tests, and real processes (gunicorn + fake Gemini) for e2e."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import responses as responses_lib

from app import create_app

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
CLIENT_KEY = "test-client-key"
SEED_KEY = "your-api-key-1"  # the key the README's and the seed's curl examples use
# Look like real Gemini keys, so the scrubber's pattern is exercised too.
UPSTREAM_KEYS = (
    "AIzaSyTESTkey1-canary-000000000000000000"[:39],
    "AIzaSyTESTkey2-canary-111111111111111111"[:39],
    "AIzaSyTESTkey3-canary-222222222222222222"[:39],
)
BASE = "http://gemini.test"
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


# Fixtures that start real processes (gunicorn, the fake Gemini, redis-server): a test that uses one
# is an end-to-end test (marker `e2e`); `make test-fast` runs the rest.
_PROCESS_FIXTURES = frozenset(
    {"fake_upstream", "upstream", "gateway", "start_gateway", "redis_server", "redis_url", "launch"}
)


def pytest_collection_modifyitems(items):
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        redis_param = callspec is not None and "redis" in callspec.params.values()
        if uses & _PROCESS_FIXTURES or redis_param:
            item.add_marker(pytest.mark.e2e)


def make_env(**overrides) -> dict:
    env = {
        "API_KEYS": f"{CLIENT_KEY},{SEED_KEY}",
        "GEMINI_API_KEYS": ",".join(UPSTREAM_KEYS),
        "GEMINI_BASE_URL": BASE,
        "UPSTREAM_BACKOFF": "0.001",
        "UPSTREAM_BACKOFF_MAX": "0.01",
        "HEARTBEAT_INTERVAL": "0",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@pytest.fixture
def app_env(tmp_path):
    return make_env(DATA_DIR=str(tmp_path / "data"))


@pytest.fixture
def app(app_env):
    return create_app(app_env)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def mocked():
    """`responses`, with call order enforced where a test registers a sequence; a mock that is
    never called fails the test."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str):
    import json

    return json.loads(fixture_bytes(name))


# -- real processes ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process in its own session, so it and its children stop together by PID."""

    def __init__(self, cmd: list[str], env: dict, log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Connections the tests dropped but still hold (unread streams, unclosed SDK clients)
            # would keep the graceful shutdown waiting: collecting them closes their sockets.
            gc.collect()
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self.log.close()


def wait_until_up(url: str, proc: Process, timeout: float = 20.0, verify: str | bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{proc.output()}")
        try:
            requests.get(url, timeout=1, verify=verify)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout}s:\n{proc.output()}")


class FakeUpstream:
    """tests/fake_upstream.py, over HTTP, or HTTPS with a certificate `verify` (a CA file) trusts."""

    def __init__(self, port: int, proc: Process, scheme: str = "http", verify: str | bool = True):
        self.base_url = f"{scheme}://127.0.0.1:{port}"
        self.proc = proc
        self.verify = verify

    def script(self, *items: dict) -> None:
        requests.post(
            self.base_url + "/_script", json=list(items), timeout=5, verify=self.verify
        ).raise_for_status()

    def calls(self) -> list[dict]:
        return requests.get(self.base_url + "/_calls", timeout=5, verify=self.verify).json()

    def reset(self) -> None:
        requests.post(self.base_url + "/_reset", timeout=5, verify=self.verify).raise_for_status()

    def connections(self) -> int:
        """TCP connections the fake has accepted since it started."""
        return requests.get(self.base_url + "/_stats", timeout=5, verify=self.verify).json()["connections"]


class Gateway:
    def __init__(self, port: int, proc: Process):
        self.base_url = f"http://127.0.0.1:{port}"
        self.port = port
        self.proc = proc
        self.env: dict = {}

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="session")
def fake_upstream(tmp_path_factory):
    port = free_port()
    proc = Process(
        [sys.executable, "-m", "tests.fake_upstream", "--port", str(port)],
        dict(os.environ),
        tmp_path_factory.mktemp("fake") / "fake.log",
    )
    wait_until_up(f"http://127.0.0.1:{port}/_calls", proc)
    yield FakeUpstream(port, proc)
    proc.stop()


@pytest.fixture
def upstream(fake_upstream):
    """The fake upstream with no script and no recorded calls."""
    fake_upstream.reset()
    yield fake_upstream
    fake_upstream.reset()


@pytest.fixture(scope="session")
def start_gateway(fake_upstream, tmp_path_factory):
    """Start a real gunicorn + gevent gateway against the fake upstream; stopped at the end."""
    started: list[Gateway] = []

    def start(**overrides) -> Gateway:
        """`overrides` may replace any variable, the ones set here included ("" unsets one)."""
        port = free_port()
        workdir = tmp_path_factory.mktemp("gateway")
        settings = {
            "GEMINI_BASE_URL": fake_upstream.base_url,
            "PORT": port,
            "WEB_CONCURRENCY": 1,
            "DATA_DIR": workdir / "data",
            "STREAM_IDLE_TIMEOUT": 5,
        }
        settings.update(overrides)
        port = int(settings["PORT"])
        env = dict(os.environ)
        env.update(make_env(**settings))
        env = {k: v for k, v in env.items() if v != ""}
        proc = Process(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            env,
            workdir / "gateway.log",
        )
        gateway = Gateway(port, proc)
        gateway.env = env  # what it was started with: DATA_DIR for `app.usage export`, the keys
        wait_until_up(gateway.url("/healthz"), proc)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.proc.stop()


@pytest.fixture(scope="session")
def gateway(start_gateway):
    """One shared gateway for tests that leave no key state behind."""
    return start_gateway()
