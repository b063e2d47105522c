"""The native API end to end: real gunicorn + gevent, the fake Gemini, curl and google-genai."""

import base64
import json
import re
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import CLIENT_KEY, FIXTURES, ROOT, UPSTREAM_KEYS, Process, free_port, make_env

SEED = (FIXTURES / "seed" / "api-examples.md").read_text()
TEXT_CHUNK = {
    "candidates": [{"content": {"parts": [{"text": "tick"}], "role": "model"}, "index": 0}],
    "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
}
LAST_CHUNK = {**TEXT_CHUNK, "candidates": [{**TEXT_CHUNK["candidates"][0], "finishReason": "STOP"}]}


def seed_curls(marker: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", SEED, re.S)
    return [b for b in blocks if marker in b]


def run_curl(block: str, gateway) -> bytes:
    command = block.replace("http://localhost:7860", gateway.base_url)
    done = subprocess.run(
        ["bash", "-c", command.replace("curl ", "curl -sS --max-time 20 ", 1)],
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def sse_events(body: bytes) -> list[dict]:
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith(b"data: ")]


NATIVE_CURLS = seed_curls("/v1beta/")


def test_the_seed_has_every_native_example():
    assert len(NATIVE_CURLS) == 11


@pytest.mark.parametrize("block", NATIVE_CURLS, ids=lambda b: re.search(r"models/([^ ?\\]+)", b).group(1))
def test_seed_native_curls_work_unchanged(block, gateway, upstream):
    out = run_curl(block, gateway)
    request = json.loads(re.search(r"-d '(.*)'", block, re.S).group(1))
    if ":streamGenerateContent?alt=sse" in block:
        events = sse_events(out)
        assert events and events[-1]["candidates"][0]["finishReason"] == "STOP"
    elif ":generateContent" in block:
        answer = json.loads(out)
        parts = answer["candidates"][0]["content"]["parts"]
        if "tts" in block:
            assert parts[0]["inlineData"]["mimeType"].startswith("audio/L16")
        elif "image" in block:
            assert any("inlineData" in p for p in parts)
        else:
            assert parts[0]["text"]
    elif ":predict" in block:
        assert len(json.loads(out)["predictions"]) == request["parameters"]["sampleCount"]
    elif ":batchEmbedContents" in block:
        assert len(json.loads(out)["embeddings"]) == len(request["requests"])
    call = upstream.calls()[-1]
    assert call["key"] in UPSTREAM_KEYS and "authorization" not in call["headers"]
    # What the client sent reached Gemini (plus default safety settings on generate calls).
    for field, value in request.items():
        assert call["body"][field] == value


def test_stream_is_not_buffered(gateway, upstream):
    """The fake emits a chunk every 200 ms; each must reach the client within 50 ms."""
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [TEXT_CHUNK] * 5 + [LAST_CHUNK],
            "interval": 0.2,
            "stamp": True,
        }
    )
    lags = []
    with requests.post(
        gateway.url("/v1beta/models/m:streamGenerateContent?alt=sse"),
        json={"contents": [{"parts": [{"text": "x"}]}]},
        headers={"x-goog-api-key": CLIENT_KEY},
        stream=True,
        timeout=10,
    ) as r:
        for line in r.iter_lines(chunk_size=1):
            if line.startswith(b"data: "):
                lags.append(time.time() - json.loads(line[6:])["sentAt"])
    assert len(lags) == 6
    assert max(lags) < 0.05, lags


def test_google_genai_sdk_against_the_gateway(gateway, upstream):
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=gateway.base_url))
    reply = client.models.generate_content(
        model="gemini-2.5-flash", contents="What is the capital of France?"
    )
    assert reply.text == "Paris" and reply.usage_metadata.total_token_count == 46
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Weather?"))
    assert len(chunks) == 4 and "".join(c.text for c in chunks).startswith("I can help")
    assert client.models.count_tokens(model="gemini-2.5-flash", contents="hi").total_tokens > 0
    embedded = client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert len(embedded.embeddings) == 2
    assert any(m.name.startswith("models/") for m in client.models.list())
    picture = types.Part.from_bytes(data=b"\x89PNG\r\n\x1a\n" + bytes(16), mime_type="image/png")
    assert client.models.generate_content(model="gemini-2.5-flash", contents=[picture, "What is it?"]).text
    sent = upstream.calls()[-1]["body"]["contents"][0]["parts"]
    assert any((p.get("inlineData") or p.get("inline_data") or {}).get("data") for p in sent)
    with pytest.raises(genai.errors.ClientError) as err:
        client.models.generate_content(model="unknown-model", contents="x")
    assert err.value.code == 404
    keys = {c["key"] for c in upstream.calls()}
    assert keys <= set(UPSTREAM_KEYS) and CLIENT_KEY not in json.dumps(upstream.calls())


def test_heartbeats_keep_a_silent_stream_alive_and_genai_accepts_them(start_gateway, upstream):
    from google import genai
    from google.genai import types

    gateway = start_gateway(HEARTBEAT_INTERVAL=0.2)
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [TEXT_CHUNK] * 2 + [LAST_CHUNK],
            "interval": 0.7,
            "repeat": 2,
        }
    )
    raw = requests.post(
        gateway.url("/v1beta/models/m:streamGenerateContent?alt=sse"),
        json={"contents": [{"parts": [{"text": "x"}]}]},
        headers={"x-goog-api-key": CLIENT_KEY},
        timeout=10,
    ).content
    assert len(sse_events(raw)) == 3
    assert b"\r\n\r\n\r\n" in raw  # bare blank lines went out while upstream was silent
    client = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=gateway.base_url))
    chunks = list(client.models.generate_content_stream(model="m", contents="x"))
    assert [c.text for c in chunks] == ["tick"] * 3


def test_failure_after_the_first_byte_is_an_in_stream_error_and_not_retried(gateway, upstream):
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [TEXT_CHUNK] * 5,
            "fault": "reset_after",
            "after": 2,
            "interval": 0.05,
        }
    )
    r = requests.post(
        gateway.url("/v1beta/models/m:streamGenerateContent?alt=sse"),
        json={"contents": [{"parts": [{"text": "x"}]}]},
        headers={"x-goog-api-key": CLIENT_KEY},
        timeout=10,
    )
    events = sse_events(r.content)
    assert [
        e.get("candidates", [{}])[0].get("content", {}).get("parts", [{}])[0].get("text") for e in events[:2]
    ] == ["tick", "tick"]
    assert events[2]["error"]["code"] == 503 and len(events) == 3
    assert len(upstream.calls()) == 1  # no retry once the client has bytes


def test_reset_before_the_first_byte_is_retried_on_another_key(gateway, upstream):
    upstream.script({"match": ":generateContent", "fault": "reset"})
    r = requests.post(
        gateway.url("/v1beta/models/gemini-2.5-flash:generateContent"),
        json={"contents": [{"parts": [{"text": "x"}]}]},
        headers={"x-goog-api-key": CLIENT_KEY},
        timeout=10,
    )
    assert r.status_code == 200
    calls = upstream.calls()
    assert len(calls) == 2 and calls[0]["key"] != calls[1]["key"]


def test_client_disconnect_closes_the_upstream_stream_promptly(gateway, upstream):
    upstream.script({"match": ":streamGenerateContent", "events": [TEXT_CHUNK] * 50, "interval": 0.1})
    sock = socket.create_connection(("127.0.0.1", int(gateway.base_url.rsplit(":", 1)[1])))
    body = json.dumps({"contents": [{"parts": [{"text": "x"}]}]}).encode()
    sock.sendall(
        b"POST /v1beta/models/m:streamGenerateContent?alt=sse HTTP/1.1\r\nHost: x\r\n"
        b"x-goog-api-key: " + CLIENT_KEY.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    received = b""
    while received.count(b"data: ") < 2:
        received += sock.recv(65536)
    sock.close()
    gone = time.time()
    deadline = gone + 5
    while time.time() < deadline:
        closed = upstream.calls()[-1]["closed"]
        if closed:
            break
        time.sleep(0.05)
    assert closed and closed - gone < 1.0


def test_bad_setting_stops_the_start_naming_the_variable(tmp_path):
    env = {
        **make_env(GEMINI_BASE_URL="http://127.0.0.1:9", PORT=free_port(), DATA_DIR=tmp_path),
        "UPSTREAM_RETRIES": "lots",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env={k: str(v) for k, v in env.items()},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "configuration error: UPSTREAM_RETRIES must be a whole number, got 'lots'" in done.stderr
    assert "Traceback" not in done.stderr


def test_generated_client_key_and_admin_password_are_printed_once_and_work(tmp_path, fake_upstream):
    port = free_port()
    env = {
        **make_env(
            GEMINI_BASE_URL=fake_upstream.base_url, PORT=port, DATA_DIR=tmp_path / "data", WEB_CONCURRENCY=2
        ),
        "API_KEYS": "",
        "PATH": "/usr/bin:/bin",
    }
    proc = Process(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        {k: str(v) for k, v in env.items()},
        tmp_path / "log",
    )
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        key = (tmp_path / "data" / "client_api_key").read_text().strip()
        assert proc.output().count(key) == 1 and "set API_KEYS" in proc.output()
        ok = requests.post(
            f"http://127.0.0.1:{port}/v1beta/models/m:countTokens",
            json={"contents": []},
            headers={"Authorization": f"Bearer {key}"},
            timeout=5,
        )
        assert ok.status_code == 200
        for _ in range(4):  # both workers agree on the key
            assert (
                requests.get(
                    f"http://127.0.0.1:{port}/v1beta/models", headers={"x-goog-api-key": key}, timeout=5
                ).status_code
                == 200
            )
        # `make run` then /admin works for a newcomer: the password was printed once, like the key.
        password = (tmp_path / "data" / "admin_password").read_text().strip()
        assert proc.output().count(password) == 1 and "ADMIN_PASSWORD=off" in proc.output()
        for _ in range(4):  # both workers take it
            with requests.Session() as admin:
                login = admin.post(
                    f"http://127.0.0.1:{port}/admin/login", data={"password": password}, timeout=5
                )
                assert login.status_code == 200 and login.url.endswith("/admin")
                assert "Upstream keys" in login.text
    finally:
        proc.stop()


def test_tts_audio_is_pcm_as_google_sends_it(gateway, upstream):
    r = requests.post(
        gateway.url("/v1beta/models/gemini-2.5-flash-preview-tts:generateContent"),
        json={
            "contents": [{"parts": [{"text": "Say hi"}]}],
            "generationConfig": {"responseModalities": ["AUDIO"]},
        },
        headers={"x-goog-api-key": CLIENT_KEY},
        timeout=10,
    )
    data = r.json()["candidates"][0]["content"]["parts"][0]["inlineData"]
    assert data["mimeType"] == "audio/L16;codec=pcm;rate=24000" and len(base64.b64decode(data["data"])) > 0
