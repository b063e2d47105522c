"""The JSON request log: one line per request, no secrets, bodies only when LOG_BODIES asks (redacted)."""

import base64
import json
import os

import pytest

from app import create_app
from app.ops.request_log import RequestLog
from app.state import state_of
from app.upstream.client import Scrubber
from tests.conftest import AUTH, BASE, CLIENT_KEY, SEED_KEY, UPSTREAM_KEYS, fixture_bytes, make_env

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
IMAGE = base64.b64encode(bytes(range(256)) * 8).decode()


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def logged(tmp_path, mocked):
    def make(**env):
        log = tmp_path / "requests.log"
        app = create_app(make_env(DATA_DIR=str(tmp_path / "data"), **{"REQUEST_LOG": str(log), **env}))
        mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
        mocked.post(
            BASE + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            body=fixture_bytes("gemini/stream_text.sse"),
            content_type="text/event-stream",
        )
        return app.test_client(), log

    return make


def test_one_line_per_request_with_what_the_operator_needs(logged):
    client, log = logged()
    r = client.post(GEN + f"?key={CLIENT_KEY}", json=BODY)
    client.post(STREAM, json=BODY, headers={"x-goog-api-key": SEED_KEY}).get_data()
    client.get(f"/healthz?key={CLIENT_KEY}")
    client.post(GEN, json=BODY, headers={"Authorization": "Bearer not-a-key"})
    first, stream, health, refused = lines(log)
    assert first["request_id"] == r.headers["x-request-id"]
    assert first | {"time": None, "request_id": None} == {
        "time": None,
        "request_id": None,
        "method": "POST",
        "path": GEN,
        "route": "/v1beta/models/{model}:generateContent",
        "dialect": "gemini",
        "client": "key-1",
        "model": "gemini-2.5-flash",
        "stream": False,
        "status": 200,
        "prompt_tokens": 11,
        "completion_tokens": 1,
        "thought_tokens": 34,
        "first_byte_ms": first["first_byte_ms"],
        "total_ms": first["total_ms"],
        "overhead_ms": first["overhead_ms"],
        "upstream_ms": first["upstream_ms"],
        "attempts": 1,
        "key_label": first["key_label"],
        "served_model": "gemini-2.5-flash",
        "error": None,
        "worker": os.getpid(),  # the process that served it: one of gunicorn's workers
    }
    assert first["time"].endswith("Z") and first["key_label"] in ("key-1", "key-2", "key-3")
    assert first["total_ms"] >= first["overhead_ms"] + first["upstream_ms"] - 0.5
    assert stream["stream"] is True and stream["client"] == "key-2" and stream["completion_tokens"] > 0
    assert health == {
        "time": health["time"],
        "request_id": health["request_id"],
        "method": "GET",
        "path": "/healthz",
        "status": 200,
        "total_ms": health["total_ms"],
        "overhead_ms": health["overhead_ms"],
    }
    assert refused["status"] == 401 and refused["client"] is None
    text = log.read_text()
    for secret in (CLIENT_KEY, SEED_KEY, "not-a-key", *UPSTREAM_KEYS, "Hello"):
        assert secret not in text  # no key, and no body without LOG_BODIES


def test_bodies_only_with_log_bodies_and_redacted(logged):
    client, log = logged(LOG_BODIES="true")
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Describe this"},
                    {"inlineData": {"mimeType": "image/png", "data": IMAGE}},
                    {"text": f"my upstream key is {UPSTREAM_KEYS[0]} and mine is {CLIENT_KEY}"},
                    {"text": "lorem ipsum " * 500},
                ],
            }
        ],
        "api_key": "sk-some-other-secret",
        "tools": [{"url": "data:image/png;base64," + IMAGE}],
    }
    client.post(GEN, json=body, headers=AUTH)
    client.post(STREAM, json=BODY, headers=AUTH).get_data()
    whole, stream = lines(log)
    parts = whole["request_body"]["contents"][0]["parts"]
    assert parts[0] == {"text": "Describe this"}
    assert parts[1]["inlineData"] == {"mimeType": "image/png", "data": f"[base64, {len(IMAGE)} characters]"}
    assert parts[2]["text"] == "my upstream key is [redacted] and mine is [redacted]"
    assert parts[3]["text"].startswith("lorem ipsum ") and parts[3]["text"].endswith("[4000 more characters]")
    assert whole["request_body"]["api_key"] == "[redacted]"
    assert whole["request_body"]["tools"][0]["url"].startswith("[data URL, ")
    assert whole["response_body"]["candidates"][0]["content"]["parts"]
    assert stream["request_body"] == BODY and "response_body" not in stream  # a stream's body is not kept
    text = log.read_text()
    for secret in (IMAGE[:200], UPSTREAM_KEYS[0], CLIENT_KEY, "sk-some-other-secret"):
        assert secret not in text


def test_request_log_off_writes_nothing(logged, tmp_path):
    client, log = logged(REQUEST_LOG="off")
    client.post(GEN, json=BODY, headers=AUTH)
    client.post(STREAM, json=BODY, headers=AUTH).get_data()
    assert not log.exists()


def test_redaction_rules():
    log = RequestLog(None, scrub=Scrubber(("secret-one",)))
    assert log.redacted(b"") is None
    assert log.redacted(b"\x00\x01binary") == {"omitted": "8 bytes, not JSON"}
    assert log.redacted(b'{"a": "' + b"y" * 70000 + b'"}') == {
        "omitted": "70009 bytes, over the 65536-byte debug limit"
    }
    assert log.redacted(
        b'{"Authorization": "Bearer x", "nested": [{"password": "p"}], "v": "secret-one"}'
    ) == {"Authorization": "[redacted]", "nested": [{"password": "[redacted]"}], "v": "[redacted]"}
    # Long prose and URLs are not mistaken for base64.
    prose = "word " * 100
    assert log.redacted(json.dumps({"t": prose, "u": "https://example.com/" + "a" * 200}).encode()) == {
        "t": prose,
        "u": "https://example.com/" + "a" * 200,
    }


def test_a_failing_log_or_metrics_hook_never_turns_an_answer_into_a_500(logged, monkeypatch, caplog):
    client, log = logged()
    app = client.application

    def broken(rec):
        raise OSError("disk full")

    monkeypatch.setattr(state_of(app).request_log, "record", broken)
    monkeypatch.setattr(state_of(app).metrics, "observe", broken)
    answer = client.post(GEN, json=BODY, headers=AUTH)
    streamed = client.post(STREAM, json=BODY, headers=AUTH)
    assert answer.status_code == 200 and b"candidates" in answer.get_data(), answer.headers
    assert streamed.status_code == 200 and b'"finishReason": "STOP"' in streamed.get_data()
    # The usage records were stored before the broken hooks ran.
    rows = list(state_of(app).store.usage(0, 2**40))
    assert [row["status"] for row in rows] == [200, 200]
    assert sum("finishing the record" in r.getMessage() for r in caplog.records) >= 2
