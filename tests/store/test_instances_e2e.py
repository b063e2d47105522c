"""Two gemgate instances behind a real nginx, sharing one redis-server: what one instance learns or is
told (a key's cooldown, a client's quota, a runtime setting) holds on the other within a second."""

import re
import time

import pytest
import requests

from tests.conftest import UPSTREAM_KEYS, fixture_json
from tests.nginx import Nginx, needs_nginx
from tests.store.conftest import needs_redis

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789"
PASSWORD = "two instances admin password"
pytestmark = [needs_nginx, needs_redis]


@pytest.fixture
def instances(launch, redis_url, tmp_path):
    """Instances A and B (one worker each, their own data folders and access logs) and nginx over both."""
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        f"keys:\n  - name: alice\n    key: {ALICE}\n    requests_per_minute: 6\n"
        f"  - name: bob\n    key: {BOB}\n"
    )
    started = []
    for name in ("a", "b"):
        started.append(
            launch(
                data_dir=tmp_path / name,
                REDIS_URL=redis_url,
                WEB_CONCURRENCY=1,
                CLIENT_KEYS_FILE=keys,
                ADMIN_PASSWORD=PASSWORD,
                ACCESS_LOG=tmp_path / f"{name}.access.log",
                GUNICORN_CMD_ARGS="--access-logformat '%(U)s %(s)s'",
            )
        )
    nginx = Nginx(tmp_path, [gateway.port for gateway in started])
    proc = nginx.start(tmp_path)
    yield (*started, nginx)
    proc.stop()


def served(access_log, path: str) -> int:
    time.sleep(0.2)  # access lines are written after the response
    return sum(path in line for line in access_log.read_text().splitlines())


def test_a_429_met_through_one_instance_rests_the_key_on_the_other_at_once(instances, upstream, tmp_path):
    a, b, nginx = instances
    upstream.script(
        {
            "status": 429,
            "body": fixture_json("gemini/error_429_resource_exhausted.json"),
            "key": UPSTREAM_KEYS[0],
            "repeat": -1,
        }
    )
    bob = {"x-goog-api-key": BOB}
    assert requests.post(a.url(GEN), json=BODY, headers=bob, timeout=10).status_code == 200
    learned = time.monotonic()
    assert [c["key"] for c in upstream.calls()] == [UPSTREAM_KEYS[0], UPSTREAM_KEYS[1]]
    # B has never called key-0: only the shared store can tell it to keep away.
    assert requests.post(b.url(GEN), json=BODY, headers=bob, timeout=10).status_code == 200
    assert time.monotonic() - learned < 1.0
    for _ in range(10):  # and through nginx, which sends these to both
        r = requests.post(nginx.url(GEN), json=BODY, headers=bob, verify=str(nginx.ca_file), timeout=10)
        assert r.status_code == 200
    used = [c["key"] for c in upstream.calls()]
    assert used.count(UPSTREAM_KEYS[0]) == 1 and len(used) == 13
    assert served(tmp_path / "a.access.log", GEN) >= 4 and served(tmp_path / "b.access.log", GEN) >= 4
    for gateway in (a, b):
        health = requests.get(gateway.url("/healthz"), timeout=5).json()
        assert health["store"] == "redis"
        assert health["upstream_keys"]["models"]["gemini-2.5-flash"]["cooling"] == 1


def test_a_client_quota_is_one_quota_across_instances(instances, upstream, tmp_path):
    a, b, nginx = instances
    alice = {"x-goog-api-key": ALICE}
    statuses = [
        requests.post(nginx.url(GEN), json=BODY, headers=alice, verify=str(nginx.ca_file), timeout=10)
        for _ in range(6)
    ]
    assert [r.status_code for r in statuses] == [200] * 6
    assert served(tmp_path / "a.access.log", GEN) == 3 and served(tmp_path / "b.access.log", GEN) == 3
    # Six a minute in all, not six an instance: each refuses the seventh.
    for gateway in (a, b):
        refused = requests.post(gateway.url(GEN), json=BODY, headers=alice, timeout=10)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 61
    assert len(upstream.calls()) == 6


def test_a_runtime_setting_changed_on_one_instance_holds_on_the_other_within_a_second(instances, upstream):
    a, b, _ = instances
    admin = requests.Session()
    r = admin.post(a.url("/admin/login"), data={"password": PASSWORD}, timeout=10)
    assert r.status_code == 200 and "runtime" in r.text  # followed to the dashboard
    form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)}
    for name, value in re.findall(r'data-setting="([A-Z_]+)" data-value="([^"]*)"', r.text):
        if value != "false":  # an unticked box is not sent
            form[name] = value
    assert form["SAFETY_THRESHOLD"] == "OFF"
    bob = {"x-goog-api-key": BOB}
    assert requests.post(b.url(GEN), json=BODY, headers=bob, timeout=10).status_code == 200

    r = admin.post(a.url("/admin/settings"), data={**form, "SAFETY_THRESHOLD": "BLOCK_ONLY_HIGH"}, timeout=10)
    assert r.status_code == 200 and "SAFETY_THRESHOLD" in r.text
    changed = time.monotonic()
    while True:  # B reads the store at most every half second
        assert requests.post(b.url(GEN), json=BODY, headers=bob, timeout=10).status_code == 200
        thresholds = {s["threshold"] for s in upstream.calls()[-1]["body"]["safetySettings"]}
        if thresholds == {"BLOCK_ONLY_HIGH"}:
            break
        assert thresholds == {"OFF"} and time.monotonic() - changed < 1.0
        time.sleep(0.05)
    assert time.monotonic() - changed < 1.0
    assert {s["threshold"] for s in upstream.calls()[0]["body"]["safetySettings"]} == {"OFF"}
