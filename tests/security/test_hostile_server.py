"""Hostile requests against the real server: huge, lying, truncated, malformed; never a 500."""

import json
import socket
import time

import pytest
import requests

from tests.conftest import CLIENT_KEY

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"


@pytest.fixture(scope="module")
def small_gateway(start_gateway):
    return start_gateway(MAX_REQUEST_BYTES=65536)


def raw_request(gateway, head: bytes, body: bytes = b"", wait: float = 5.0) -> bytes:
    port = int(gateway.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head + body)
        data = b""
        deadline = time.monotonic() + wait
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            data += sock.recv(65536)
        return data


def test_declared_oversize_body_is_refused_before_it_is_sent(small_gateway):
    head = (
        f"POST {GEN} HTTP/1.1\r\nHost: x\r\nx-goog-api-key: {CLIENT_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = raw_request(small_gateway, head, b'{"contents": [')
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 3  # it did not wait for 100 MB


def test_chunked_oversize_body_is_refused(small_gateway, upstream):
    def chunks():
        yield b'{"contents": [{"parts": [{"text": "'
        for _ in range(200):
            yield b"x" * 1024
        yield b'"}]}]}'

    r = requests.post(
        small_gateway.url(GEN),
        data=chunks(),
        headers={"x-goog-api-key": CLIENT_KEY, "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == 413
    assert not upstream.calls()


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"contents": [{"parts": [{"text": "\xc3\x28"}]}]}', "application/json"),
        (b'{"contents": 1, "contents": [{"parts": [{"text": "dup"}]}]', "application/json"),
        (b"\x00\x01\x02", "application/json"),
        (b"<xml/>", "application/xml"),
        (b'{"contents": [{"parts": [{"text": 1e999}]}]}', "application/json"),
        (
            b'{"contents": [{"parts": [{"text": "x"}]}], '
            b'"generationConfig": {"maxOutputTokens": 99999999999999999999}}',
            "application/json",
        ),
        (b"[" * 50000, "application/json"),
        (json.dumps({"contents": [{"parts": [{"text": "y" * 60000}]}]}).encode()[:30000], "application/json"),
    ],
    ids=[
        "invalid-utf8",
        "truncated-duplicate",
        "binary",
        "xml",
        "huge-float",
        "huge-int",
        "deep",
        "truncated",
    ],
)
def test_malformed_bodies_get_a_clear_400(small_gateway, upstream, body, content_type):
    r = requests.post(
        small_gateway.url(GEN),
        data=body,
        headers={"x-goog-api-key": CLIENT_KEY, "Content-Type": content_type},
        timeout=10,
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["message"] and "Traceback" not in r.text
    assert not upstream.calls()


def test_duplicate_keys_take_the_last_value(small_gateway, upstream):
    body = b'{"contents": 1, "contents": [{"parts": [{"text": "dup"}]}]}'
    r = requests.post(
        small_gateway.url(GEN),
        data=body,
        headers={"x-goog-api-key": CLIENT_KEY, "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 200
    assert upstream.calls()[0]["body"]["contents"] == [{"parts": [{"text": "dup"}]}]
