"""Canary secrets: traffic through every error path of every dialect, then a scan of everything captured.

Upstream keys (Gemini-shaped and not), client keys (valid, rate-limited, wrong), the admin password and
the metrics token are random canaries. None may appear in a response body or header, the gateway's log
(LOG_LEVEL=debug, ACCESS_LOG=-, the JSON request log with bodies), what Gemini received (no client key
at all, no key in a URL), /metrics, the admin pages, or the exported usage records.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import requests

from tests.conftest import ROOT

TOKEN = secrets.token_hex(8)
UPSTREAM_KEYS = (
    f"AIzaSyCANARY{TOKEN}".ljust(39, "Q")[:39],
    f"AIzaSyCANARY{TOKEN[::-1]}".ljust(39, "W")[:39],
    f"gemgate-canary-upstream-{TOKEN}",
)  # the last is not Gemini-shaped: scrubbed as configured
CLIENT_KEY = f"gg-canary-client-{TOKEN}"
LIMITED_KEY = f"gg-canary-limited-{TOKEN}"
WRONG_KEY = f"gg-canary-wrong-{TOKEN}"
ADMIN_PASSWORD = f"canary-admin-{TOKEN}"
METRICS_TOKEN = f"canary-metrics-{TOKEN}"
CLIENT_SECRETS = (CLIENT_KEY, LIMITED_KEY, WRONG_KEY)
SECRETS = UPSTREAM_KEYS + CLIENT_SECRETS + (ADMIN_PASSWORD, METRICS_TOKEN)
LIMIT = 65536
ECHO = " ".join(UPSTREAM_KEYS)  # what a leaky upstream error message would contain


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@dataclass
class Exchange:
    name: str
    status: int
    text: str  # headers and body, as the client saw them


def error_with_keys(status: int, google_status: str) -> dict:
    """A Gemini error whose message, details and metadata all echo the upstream keys."""
    return {
        "error": {
            "code": status,
            "message": f"Something failed for {ECHO}",
            "status": google_status,
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "TEST",
                    "metadata": {"key": UPSTREAM_KEYS[0], "other": UPSTREAM_KEYS[2]},
                },
                {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": ECHO},
            ],
        }
    }


@pytest.fixture(scope="module")
def canary_gateway(start_gateway, tmp_path_factory):
    keys_file = tmp_path_factory.mktemp("keys") / "keys.json"
    keys_file.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "name": "limited",
                        "key": LIMITED_KEY,
                        "models": ["gemini-2.5-flash"],
                        "requests_per_minute": 3,
                    }
                ]
            }
        )
    )
    return start_gateway(
        API_KEYS=CLIENT_KEY,
        GEMINI_API_KEYS=",".join(UPSTREAM_KEYS),
        CLIENT_KEYS_FILE=keys_file,
        LOG_LEVEL="debug",
        ACCESS_LOG="-",
        REQUEST_LOG="-",
        LOG_BODIES="1",
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        METRICS_TOKEN=METRICS_TOKEN,
        MAX_REQUEST_BYTES=LIMIT,
        UPSTREAM_RETRIES=1,
        UPSTREAM_BACKOFF=0.01,
        UPSTREAM_BACKOFF_MAX=0.02,
        STREAM_IDLE_TIMEOUT=0.3,
        UPSTREAM_TIMEOUT=0.3,
        KEY_COOLDOWN=0.3,
        HEARTBEAT_INTERVAL=0.2,
    )


GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
SSE = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
ARRAY = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
CONTENTS = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
CHAT = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "gemini-2.5-flash", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
RESPONSE = {"model": "gemini-2.5-flash", "input": "hi"}
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
# Each dialect's generating calls: path, body, and how its client presents a key.
CALLS = {
    "gemini": (GEN, CONTENTS, lambda key: {"x-goog-api-key": key}),
    "gemini-sse": (SSE, CONTENTS, lambda key: {"x-goog-api-key": key}),
    "gemini-array": (ARRAY, CONTENTS, lambda key: {"x-goog-api-key": key}),
    "openai": ("/v1/chat/completions", CHAT, lambda key: {"Authorization": f"Bearer {key}"}),
    "openai-stream": (
        "/v1/chat/completions",
        {**CHAT, "stream": True},
        lambda key: {"Authorization": f"Bearer {key}"},
    ),
    "responses": ("/v1/responses", RESPONSE, lambda key: {"Authorization": f"Bearer {key}"}),
    "responses-stream": (
        "/v1/responses",
        {**RESPONSE, "stream": True},
        lambda key: {"Authorization": f"Bearer {key}"},
    ),
    "anthropic": ("/v1/messages", MESSAGE, lambda key: {"x-api-key": key, **ANTHROPIC_VERSION}),
    "anthropic-stream": (
        "/v1/messages",
        {**MESSAGE, "stream": True},
        lambda key: {"x-api-key": key, **ANTHROPIC_VERSION},
    ),
}
OTHER_POSTS = {
    "gemini-count": ("/v1beta/models/gemini-2.5-flash:countTokens", CONTENTS),
    "gemini-embed": (
        "/v1beta/models/gemini-embedding-001:embedContent",
        {"content": CONTENTS["contents"][0]},
    ),
    "gemini-predict": ("/v1beta/models/imagen-4.0-generate-001:predict", {"instances": [{"prompt": "x"}]}),
    "openai-embeddings": ("/v1/embeddings", {"model": "gemini-embedding-001", "input": "hi"}),
    "openai-images": ("/v1/images/generations", {"model": "imagen-4.0-generate-001", "prompt": "x"}),
    "openai-speech": ("/v1/audio/speech", {"model": "gemini-2.5-flash-preview-tts", "input": "hi"}),
    "anthropic-count": (
        "/v1/messages/count_tokens",
        {"model": "gemini-2.5-flash", "messages": CHAT["messages"]},
    ),
    "responses-count": ("/v1/responses/input_tokens", RESPONSE),
    "responses-compact": ("/v1/responses/compact", RESPONSE),
}


class Traffic:
    def __init__(self, gateway):
        self.gateway = gateway
        self.exchanges: list[Exchange] = []
        self.calls: list[dict] = []  # what Gemini received, kept across resets of the fake

    def send(
        self, name: str, method: str, path: str, headers: dict | None = None, **kwargs
    ) -> requests.Response:
        response = requests.request(
            method, self.gateway.url(path), headers=headers or {}, timeout=15, **kwargs
        )
        seen = "\n".join(f"{k}: {v}" for k, v in response.headers.items()) + "\n\n" + response.text
        self.exchanges.append(Exchange(name, response.status_code, seen))
        return response


def wait_for_healthy_keys(gateway, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys = requests.get(gateway.url("/healthz"), timeout=5).json()["upstream_keys"]
        if keys["healthy"] == keys["total"] and not keys["models"]:
            return
        time.sleep(0.05)


def run_everything(gateway, upstream) -> Traffic:
    t = Traffic(gateway)

    def reset():
        t.calls.extend(upstream.calls())
        upstream.reset()
        wait_for_healthy_keys(gateway)

    ok_key = CALLS["openai"][2](CLIENT_KEY)
    # Success on every route, and every way a client may present its key (the query included).
    for name, (path, body, auth) in CALLS.items():
        t.send(f"{name} ok", "POST", path, auth(CLIENT_KEY), json=body)
    t.send("native ?key=", "POST", f"{GEN}?key={CLIENT_KEY}", json=CONTENTS)
    t.send("native sse ?key=", "POST", f"{SSE}&key={CLIENT_KEY}", json=CONTENTS)
    for name, (path, body) in OTHER_POSTS.items():
        headers = {**ok_key, **ANTHROPIC_VERSION} if name.startswith("anthropic") else ok_key
        t.send(f"{name} ok", "POST", path, headers, json=body)
    for path in (
        "/v1/models",
        "/v1/models/gemini-2.5-flash",
        "/v1beta/models",
        "/v1beta/models/gemini-2.5-flash",
        f"/v1beta/models?key={CLIENT_KEY}",
    ):
        t.send(f"GET {path}", "GET", path, ok_key)
        t.send(f"GET {path} anthropic", "GET", path, {"x-api-key": CLIENT_KEY, **ANTHROPIC_VERSION})
    # The gateway's own refusals, in each dialect.
    for name, (path, body, auth) in CALLS.items():
        t.send(
            f"{name} 400 schema",
            "POST",
            path,
            auth(CLIENT_KEY),
            json={"model": 5, "contents": 5, "messages": 5},
        )
        t.send(
            f"{name} 400 json",
            "POST",
            path,
            {**auth(CLIENT_KEY), "Content-Type": "application/json"},
            data=b'{"oops": ',
        )
        t.send(f"{name} 401 missing", "POST", path, json=body)
        t.send(f"{name} 401 wrong", "POST", path, auth(WRONG_KEY), json=body)
        t.send(
            f"{name} 401 wrong ?key",
            "POST",
            path + ("&" if "?" in path else "?") + f"key={WRONG_KEY}",
            json=body,
        )
        t.send(f"{name} 405", "GET" if "models" not in path else "PUT", path, auth(CLIENT_KEY))
        t.send(
            f"{name} 413",
            "POST",
            path,
            {**auth(CLIENT_KEY), "Content-Type": "application/json"},
            data=json.dumps({**body, "pad": "p" * LIMIT}),
        )
        t.send(
            f"{name} 403 model",
            "POST",
            path.replace("gemini-2.5-flash", "gemini-2.5-pro"),
            auth(LIMITED_KEY),
            json={**body, "model": "gemini-2.5-pro"} if "model" in body else body,
        )
        t.send(
            f"{name} 404 model",
            "POST",
            path.replace("gemini-2.5-flash", "unknown-model"),
            auth(CLIENT_KEY),
            json={**body, "model": "unknown-model"} if "model" in body else body,
        )
    t.send("404 route", "POST", "/v1/nothing/here", ok_key, json={})
    t.send("GET unknown model", "GET", "/v1/models/unknown-model", ok_key)
    for _ in range(4):  # past the limited key's 3 requests a minute
        t.send(
            "429 quota", "POST", "/v1/chat/completions", {"Authorization": f"Bearer {LIMITED_KEY}"}, json=CHAT
        )
    # Gemini failing, with our keys in everything it says.
    for name, (path, body, auth) in CALLS.items():
        stream = "stream" in name or "sse" in name or "array" in name
        action = ":streamGenerateContent" if stream else ":generateContent"
        for status, google in (
            (400, "INVALID_ARGUMENT"),
            (404, "NOT_FOUND"),
            (429, "RESOURCE_EXHAUSTED"),
            (503, "UNAVAILABLE"),
            (500, "INTERNAL"),
        ):
            upstream.script(
                {"match": action, "status": status, "body": error_with_keys(status, google), "repeat": -1}
            )
            t.send(f"{name} upstream {status}", "POST", path, auth(CLIENT_KEY), json=body)
            reset()
        upstream.script({"match": action, "raw": f"not json {ECHO}"})
        t.send(f"{name} upstream garbage", "POST", path, auth(CLIENT_KEY), json=body)
        upstream.script({"match": action, "fault": "reset", "repeat": -1})
        t.send(f"{name} upstream reset", "POST", path, auth(CLIENT_KEY), json=body)
        reset()
        upstream.script({"match": action, "fault": "stall", "repeat": -1})
        t.send(f"{name} upstream stall", "POST", path, auth(CLIENT_KEY), json=body)
        reset()
        if stream:
            text = {"candidates": [{"content": {"parts": [{"text": "tick"}], "role": "model"}, "index": 0}]}
            upstream.script(
                {"match": action, "events": [text], "trailer": json.dumps(error_with_keys(500, "INTERNAL"))}
            )
            t.send(f"{name} mid-stream trailer", "POST", path, auth(CLIENT_KEY), json=body)
            upstream.script({"match": action, "events": [text, text], "fault": "reset_after", "after": 1})
            t.send(f"{name} mid-stream reset", "POST", path, auth(CLIENT_KEY), json=body)
        reset()
    resources(t, upstream, ok_key)
    reset()
    return t


def resources(t: Traffic, upstream, ok_key: dict) -> None:
    """Gemini's resources: an upload (its URL, its session, its file), lists, an interaction streamed,
    OpenAI's files; and Gemini failing on them with our keys in what it says."""
    start = {
        **ok_key,
        "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": "5",
        "X-Goog-Upload-Header-Content-Type": "text/plain",
    }
    started = t.send("upload start", "POST", "/upload/v1beta/files", start, json={"file": {}})
    url = started.headers.get("X-Goog-Upload-URL", "")
    target = url[url.index("/upload/") :] if "/upload/" in url else "/upload/v1beta/files?upload_id=x"
    chunk = {"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"}
    done = t.send("upload finalize (no key)", "POST", target, chunk, data=b"hello")
    name = done.json().get("file", {}).get("name", "files/none") if done.ok else "files/none"
    for path in (f"/v1beta/{name}", "/v1beta/files", f"/v1beta/{name}?key={CLIENT_KEY}"):
        t.send(f"GET {path}", "GET", path, ok_key)
    t.send("file delete", "DELETE", f"/v1beta/{name}", ok_key)
    t.send("upload forged id", "POST", "/upload/v1beta/files?upload_id=" + "Z" * 43, chunk, data=b"x")
    interaction = {"model": "gemini-2.5-flash", "input": "hi", "stream": True}
    t.send("interaction stream", "POST", "/v1beta/interactions", ok_key, json=interaction)
    bearer = {"Authorization": f"Bearer {CLIENT_KEY}"}
    made = t.send(
        "openai file",
        "POST",
        "/v1/files",
        bearer,
        files={"file": ("a.txt", b"x")},
        data={"purpose": "user_data"},
    )
    ident = made.json().get("id", "file-none") if made.ok else "file-none"
    t.send("openai file get", "GET", f"/v1/files/{ident}", bearer)
    t.send("openai files list", "GET", "/v1/files", bearer)
    for match, path, body in (
        ("/upload/", "/upload/v1beta/files", {"file": {}}),
        (":batchGenerateContent", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", {"batch": {}}),
        ("/cachedContents", "/v1beta/cachedContents", {"model": "models/gemini-2.5-flash"}),
    ):
        for status, google in ((400, "INVALID_ARGUMENT"), (403, "PERMISSION_DENIED"), (500, "INTERNAL")):
            upstream.script(
                {"match": match, "status": status, "body": error_with_keys(status, google), "repeat": -1}
            )
            headers = start if match == "/upload/" else ok_key
            t.send(f"{path} upstream {status}", "POST", path, headers, json=body)
            t.calls.extend(upstream.calls())
            upstream.reset()
    error_event = {"event_type": "error", "error": {"code": 500, "message": f"failed for {ECHO}"}}
    upstream.script({"match": "/interactions", "events": [error_event]})
    t.send("interaction stream upstream error", "POST", "/v1beta/interactions", ok_key, json=interaction)


@pytest.fixture(scope="module")
def captured(canary_gateway, fake_upstream):
    fake_upstream.reset()
    traffic = run_everything(canary_gateway, fake_upstream)
    return traffic, traffic.calls


def test_the_traffic_went_through_every_error_path(captured):
    traffic, _ = captured
    statuses = {e.status for e in traffic.exchanges}
    assert {200, 400, 401, 403, 404, 405, 413, 429, 500, 503, 504, 529} <= statuses, statuses
    assert len(traffic.exchanges) > 150


def test_no_secret_reaches_a_client(captured):
    traffic, _ = captured
    found = [(e.name, leaks(e.text)) for e in traffic.exchanges if leaks(e.text)]
    assert not found, found
    echoed = [
        e.name
        for e in traffic.exchanges
        if "upstream" in e.name and e.status >= 400 and "[redacted]" in e.text
    ]
    assert echoed, "the scrubber ran on the upstream errors that echoed the keys"


def test_no_secret_reaches_a_client_from_an_error_event_inside_the_stream(canary_gateway, upstream):
    text = {"candidates": [{"content": {"parts": [{"text": "tick"}], "role": "model"}, "index": 0}]}
    traffic = Traffic(canary_gateway)
    for name in ("gemini-sse", "gemini-array", "openai-stream", "anthropic-stream"):
        path, body, auth = CALLS[name]
        upstream.script(
            {"match": ":streamGenerateContent", "events": [text, error_with_keys(500, "INTERNAL")]}
        )
        traffic.send(name, "POST", path, auth(CLIENT_KEY), json=body)
    found = [(e.name, leaks(e.text)) for e in traffic.exchanges if leaks(e.text)]
    assert not found, found


def test_gemini_got_no_client_key_and_no_key_in_a_url(captured):
    _, calls = captured
    assert len(calls) > 100
    for call in calls:
        assert call["key"] in UPSTREAM_KEYS
        everything = json.dumps(call)
        assert not [s for s in CLIENT_SECRETS + (ADMIN_PASSWORD, METRICS_TOKEN) if s in everything], call
        assert "key=" not in call["query"] and not leaks(call["path"] + call["query"]), call
        headers = {k: v for k, v in call["headers"].items() if k != "x-goog-api-key"}
        assert not leaks(json.dumps(headers) + json.dumps(call["body"])), call


def test_no_secret_reaches_the_log(captured, canary_gateway):
    log = canary_gateway.proc.output()
    assert '"request_id"' in log and "[DEBUG]" in log, "the debug and request logs were on"
    found = leaks(log)
    assert not [s for s in found if s not in CLIENT_SECRETS], found  # upstream keys, admin password, token


def test_no_client_key_reaches_the_log(captured, canary_gateway):
    log = canary_gateway.proc.output()
    assert not [s for s in leaks(log) if s in CLIENT_SECRETS], [
        line for line in log.splitlines() if leaks(line)
    ][:3]


def test_no_secret_in_metrics_admin_pages_or_usage_export(captured, canary_gateway):
    gw = canary_gateway
    metrics = requests.get(
        gw.url("/metrics"), headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5
    )
    assert metrics.status_code == 200 and "gemgate_requests" in metrics.text
    assert not leaks(metrics.text)
    with requests.Session() as admin:
        login = admin.post(gw.url("/admin/login"), data={"password": ADMIN_PASSWORD}, timeout=5)
        assert login.status_code == 200 and "key-1" in login.text, login.text[:300]
        pages = [login.text]
        for path in ("/admin", "/admin/?window=24h", "/admin/login"):
            page = admin.get(gw.url(path), timeout=5)
            pages.append("\n".join(f"{k}: {v}" for k, v in page.headers.items()) + page.text)
    assert not [leaks(p) for p in pages if leaks(p)]
    env = {**gw.env, "PATH": "/usr/bin:/bin"}
    export = subprocess.run(
        [sys.executable, "-m", "app.usage", "export", "--format", "jsonl"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert export.returncode == 0, export.stderr
    rows = [json.loads(line) for line in export.stdout.splitlines()]
    assert len(rows) > 100 and {r["client"] for r in rows} >= {"key-1", "limited"}
    assert 401 not in {r["status"] for r in rows}  # requests without a client are not stored
    assert not leaks(export.stdout + export.stderr)


def test_the_resource_traffic_took_its_paths(captured):
    traffic, _ = captured
    status = {e.name: e.status for e in traffic.exchanges}
    assert status["upload start"] == 200 and status["upload finalize (no key)"] == 200
    assert status["upload forged id"] == 404 and status["file delete"] == 200
    assert status["interaction stream"] == 200 and status["openai file"] == 200
    assert status["/upload/v1beta/files upstream 403"] == 403
    streamed = next(e for e in traffic.exchanges if e.name == "interaction stream upstream error")
    assert "[redacted]" in streamed.text
