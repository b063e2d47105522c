"""Gemini over TLS end to end: the real gunicorn server and the fake Gemini behind a certificate of a CA of
its own, trusted through GEMINI_CA_BUNDLE, or not trusted and answered as unreachable in every dialect."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest
import requests
import trustme

from tests.conftest import CLIENT_KEY, FakeUpstream, Process, free_port, wait_until_up

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
CALLS = {
    "gemini": (GENERATE, {"x-goog-api-key": CLIENT_KEY}, {"contents": [{"parts": [{"text": "Hi"}]}]}),
    "openai": (
        "/v1/chat/completions",
        {"Authorization": f"Bearer {CLIENT_KEY}"},
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}]},
    ),
    "anthropic": (
        "/v1/messages",
        {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
        {"model": "gemini-2.5-flash", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]},
    ),
}
TICK = {"candidates": [{"content": {"parts": [{"text": "tick "}], "role": "model"}, "index": 0}]}
LAST = {"candidates": [{**TICK["candidates"][0], "finishReason": "STOP"}]}


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    (folder / "server.pem").write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(folder / "server.key"))
    trustme.CA().cert_pem.write_to_path(str(folder / "other-ca.pem"))  # trusts someone else
    return folder


@pytest.fixture(scope="module")
def tls_upstream(ca_file):
    port = free_port()
    proc = Process(
        [sys.executable, "-m", "tests.fake_upstream", "--port", str(port)]
        + ["--tls-cert", str(ca_file / "server.pem"), "--tls-key", str(ca_file / "server.key")],
        dict(os.environ),
        ca_file / "fake.log",
    )
    fake = FakeUpstream(port, proc, "https", verify=str(ca_file / "ca.pem"))
    wait_until_up(fake.base_url + "/_calls", proc, verify=fake.verify)
    yield fake
    proc.stop()


def test_gemini_behind_a_private_ca_is_served_whole_and_streamed_over_kept_connections(
    start_gateway, tls_upstream, ca_file
):
    gateway = start_gateway(
        GEMINI_BASE_URL=tls_upstream.base_url,
        GEMINI_CA_BUNDLE=ca_file / "ca.pem",
        HEARTBEAT_INTERVAL=0.2,
    )
    for path, headers, body in CALLS.values():
        assert requests.post(gateway.url(path), json=body, headers=headers, timeout=10).status_code == 200
    # A stream over TLS: heartbeats while Gemini thinks, then its events as they come.
    tls_upstream.script({"match": ":streamGenerateContent", "lead": 0.7, "events": [TICK, TICK, LAST]})
    path, headers, body = CALLS["openai"]
    with requests.post(
        gateway.url(path), json={**body, "stream": True}, headers=headers, timeout=10, stream=True
    ) as r:
        raw = r.content
    assert raw.count(b": ping\n\n") >= 2 and raw.index(b": ping") < raw.index(b"tick")
    assert raw.count(b"tick ") == 3 and raw.endswith(b"data: [DONE]\n\n")
    # One worker: every call goes over a connection (its TLS handshake done) the earlier calls left idle.
    before = tls_upstream.connections()
    for _ in range(20):
        requests.post(gateway.url(GENERATE), json=CALLS["gemini"][2], headers=CALLS["gemini"][1], timeout=10)
    assert tls_upstream.connections() == before


def test_an_untrusted_certificate_is_unreachable_in_every_dialect_and_logged_with_its_cause(
    start_gateway, tls_upstream, ca_file
):
    gateway = start_gateway(
        GEMINI_BASE_URL=tls_upstream.base_url,
        GEMINI_CA_BUNDLE=ca_file / "other-ca.pem",
        UPSTREAM_RETRIES=1,
    )
    host = tls_upstream.base_url.removeprefix("https://")
    said = f"Could not reach Gemini: the TLS certificate of {host} did not verify ("
    answers = {
        dialect: requests.post(gateway.url(path), json=body, headers=headers, timeout=10)
        for dialect, (path, headers, body) in CALLS.items()
    }
    for dialect, r in answers.items():
        assert r.status_code == 503, (dialect, r.status_code, r.text)  # never Anthropic's 529 "overloaded"
        assert said in r.text and "overloaded" not in r.text, r.text
    assert answers["gemini"].json()["error"]["status"] == "UNAVAILABLE"
    assert answers["openai"].json()["error"]["code"] == "upstream_unreachable"
    assert answers["anthropic"].json()["error"]["type"] == "api_error"
    streamed = requests.post(
        gateway.url(STREAM), json=CALLS["gemini"][2], headers=CALLS["gemini"][1], timeout=10
    )
    assert streamed.status_code == 503 and said in streamed.text  # before any byte of a stream
    time.sleep(0.3)
    output = gateway.proc.output()
    lines = [
        json.loads(line) for line in output.splitlines() if line.startswith("{") and '"request_id"' in line
    ]
    failed = [line for line in lines if line.get("status") == 503]
    assert len(failed) == 4
    assert all(line["error"] == "unreachable" and line["attempts"] == 2 for line in failed), failed
    assert output.count("did not verify") >= 8  # a warning with its cause for each attempt
    assert "AIza" not in output
