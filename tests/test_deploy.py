"""The deployment samples: deploy/nginx.conf checked by nginx and proven not to buffer streams through a
real nginx; deploy/gemgate.service checked by systemd-analyze; the Procfile runs what the unit runs."""

import configparser
import os
import re
import shlex
import shutil
import subprocess
import time

import pytest
import requests

from tests.conftest import AUTH, CLIENT_KEY, ROOT
from tests.nginx import Nginx, needs_nginx

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
TICK = {"candidates": [{"content": {"parts": [{"text": "tick"}], "role": "model"}, "index": 0}]}
LAST = {"candidates": [{**TICK["candidates"][0], "finishReason": "STOP"}]}
pytestmark = pytest.mark.e2e  # nginx, systemd-analyze and real processes


@needs_nginx
def test_nginx_accepts_the_sample_config(tmp_path):
    done = Nginx(tmp_path, [7860]).check()
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


@needs_nginx
def test_streams_pass_through_nginx_event_by_event(start_gateway, upstream, tmp_path):
    gateway = start_gateway(ADMIN_PASSWORD="nginx test password")
    nginx = Nginx(tmp_path, [gateway.port])
    proc = nginx.start(tmp_path)
    try:
        upstream.script({"match": ":streamGenerateContent", "events": [TICK] * 3 + [LAST], "interval": 0.6})
        started = time.monotonic()
        arrivals = []
        with requests.post(
            nginx.url(STREAM), json=BODY, headers=AUTH, stream=True, verify=str(nginx.ca_file), timeout=10
        ) as r:
            assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            assert "x-gemgate-overhead-ms" in r.headers
            for piece in r.iter_content(chunk_size=None):
                arrivals += [time.monotonic() - started] * piece.count(b"data: ")
        assert len(arrivals) == 4
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
        assert arrivals[0] < 0.5, arrivals  # the first event did not wait for the rest
        assert all(gap > 0.3 for gap in gaps), arrivals  # each came when Gemini sent it

        # Plain http is sent to https; the proxy's X-Forwarded-Proto makes the admin cookie Secure.
        plain = requests.get(f"http://127.0.0.1:{nginx.http_port}/healthz", allow_redirects=False, timeout=5)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
        login = requests.post(
            nginx.url("/admin/login"),
            data={"password": "nginx test password"},
            allow_redirects=False,
            verify=str(nginx.ca_file),
            timeout=5,
        )
        assert login.status_code == 303 and "Secure" in login.headers["Set-Cookie"]
        metrics = requests.get(nginx.url("/metrics"), verify=str(nginx.ca_file), timeout=5)
        assert metrics.status_code == 200 and "gemgate_active_streams" in metrics.text  # from 127.0.0.1

        # A key in the query string (or a Referer) never reaches the access log; the path does.
        keyed = "/v1beta/models/gemini-2.5-flash:generateContent?key=" + CLIENT_KEY
        answer = requests.post(
            nginx.url(keyed),
            json=BODY,
            headers={"Referer": "https://app.example/?key=" + CLIENT_KEY},
            verify=str(nginx.ca_file),
            timeout=10,
        )
        assert answer.status_code == 200
        requests.get(
            f"http://127.0.0.1:{nginx.http_port}/healthz?key={CLIENT_KEY}", allow_redirects=False, timeout=5
        )
        time.sleep(0.2)
        logged = nginx.access_log.read_text()
        assert '"POST /v1beta/models/gemini-2.5-flash:generateContent HTTP/1.1" 200' in logged
        assert '"GET /healthz HTTP/1.1" 301' in logged
        assert CLIENT_KEY not in logged and "key=" not in logged
    finally:
        proc.stop()


def test_the_systemd_unit_runs_what_the_procfile_runs(tmp_path):
    unit_text = (ROOT / "deploy" / "gemgate.service").read_text()
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(unit_text)
    service = unit["Service"]
    exec_start = shlex.split(service["ExecStart"])
    procfile = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert exec_start[0].endswith("/gunicorn") and exec_start[1:] == shlex.split(procfile["web"])[1:]
    assert (ROOT / "gunicorn.conf.py").exists() and (ROOT / "wsgi.py").exists()
    assert service["Type"] == "notify"  # gunicorn tells systemd when it is ready
    assert "Environment=DATA_DIR=/var/lib/gemgate " in unit_text and service["StateDirectory"] == "gemgate"
    if not SYSTEMD_ANALYZE:
        pytest.skip("systemd-analyze is not installed: the unit was only parsed")
    # systemd-analyze checks that the command exists: point the unit at this checkout.
    (tmp_path / "gemgate.env").write_text("GEMINI_API_KEYS=x\n")
    local = unit_text.replace("/opt/gemgate", str(ROOT)).replace(
        "/etc/gemgate/gemgate.env", str(tmp_path / "gemgate.env")
    )
    local = re.sub(r"^(User|Group)=.*$", r"\1=root", local, flags=re.M)
    (tmp_path / "gemgate.service").write_text(local)
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(tmp_path / "gemgate.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_gunicorn_hooks_prepare_and_clean_the_metrics_directory(tmp_path, monkeypatch):
    import importlib.util

    from prometheus_client import multiprocess

    spec = importlib.util.spec_from_file_location("gemgate_gunicorn_conf", ROOT / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    conf._prepare_metrics_dir()
    assert list(metrics_dir.iterdir()) == []  # an earlier run's values are not summed into this one
    live = [f"gauge_{mode}_42.db" for mode in multiprocess._LIVE_GAUGE_MULTIPROCESS_MODES]
    kept = ["counter_42.db", "gauge_all_42.db", "gauge_livesum_43.db"]
    for name in live + kept:
        (metrics_dir / name).write_bytes(b"x")
    conf.child_exit(None, type("Worker", (), {"pid": 42})())
    assert sorted(p.name for p in metrics_dir.iterdir()) == sorted(kept)  # as mark_process_dead would
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    conf._prepare_metrics_dir()
    created = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert os.path.isdir(created)
    conf.on_exit(None)
    assert not os.path.exists(created)


def test_the_dependency_floors_cover_what_the_code_relies_on():
    from importlib.metadata import version

    from packaging.requirements import Requirement
    from setuptools.config.setupcfg import read_configuration

    declared = {
        r.name: r.specifier
        for r in map(Requirement, read_configuration(ROOT / "setup.cfg")["options"]["install_requires"])
    }
    # Media fetches read compressed bodies in bounded steps: a small body must not inflate at once.
    assert "2.6.9" not in declared["urllib3"] and "2.7.0" in declared["urllib3"]
    assert version("urllib3") in declared["urllib3"]
