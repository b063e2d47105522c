"""Image and document URLs through the dialects: fetched only from public addresses, also after redirects
and DNS tricks (tests/test_media.py tests the fetch itself). Loopback only: a local server stands in for
every target, and it must never be hit unless the test means it to."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
from unittest import mock

import pytest
import requests
import urllib3.util.connection

from app import create_app
from app.state import state
from tests.conftest import BASE, CLIENT_KEY, fixture_json, make_env
from tests.reliability.gemini_memory import InMemoryGemini

PNG = base64.b64decode(
    fixture_json("gemini/image_generation.json")["candidates"][0]["content"]["parts"][1]["inlineData"]["data"]
)
PUBLIC_IP = "93.184.216.34"  # any public address: connections to it are sent to the local server instead
OPENAI = {"Authorization": f"Bearer {CLIENT_KEY}"}
ANTHROPIC = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}


class Target(http.server.BaseHTTPRequestHandler):
    """Records every hit; serves a PNG, redirects, or a body that claims to be too big."""

    hits: list[str] = []

    def do_GET(self):
        Target.hits.append(self.path)
        port = self.server.server_address[1]
        redirects = {
            "/to-loopback": f"http://127.0.0.1:{port}/secret",
            "/to-localhost": f"http://localhost:{port}/secret",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-private-name": "http://private.example/secret",
            "/to-rebinding-name": "http://rebind.example/secret",
            "/to-mapped-v6": "http://[::ffff:7f00:1]/secret",
            "/to-decimal": f"http://2130706433:{port}/secret",
            "/relative-to-loopback": f"//127.0.0.1:{port}/secret",
            "/chain": "http://public.example/chain2",
            "/chain2": "http://public.example/chain3",
            "/chain3": "http://public.example/chain4",
            "/chain4": "http://public.example/image.png",
            "/to-public": "http://public.example/image.png",
        }
        if self.path in redirects:
            self.send_response(302)
            self.send_header("Location", redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/huge.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(100 * 1024 * 1024))
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")  # the bytes say PNG
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def target():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def hits(target):
    Target.hits.clear()
    return Target.hits


def openai_body(url: str) -> dict:
    return {
        "model": "gemini-2.5-flash",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    }


def anthropic_body(url: str, kind: str = "image") -> dict:
    return {
        "model": "gemini-2.5-flash",
        "max_tokens": 50,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": kind, "source": {"type": "url", "url": url}},
                ],
            }
        ],
    }


WAYS = {  # how a client hands the gateway a URL: (path, headers, body, the param an error names)
    "openai-image_url": ("/v1/chat/completions", OPENAI, openai_body, "messages[0].content[1].image_url.url"),
    "anthropic-image": ("/v1/messages", ANTHROPIC, anthropic_body, "messages[0].content[1].source.url"),
    "anthropic-document": (
        "/v1/messages",
        ANTHROPIC,
        lambda url: anthropic_body(url, "document"),
        "messages[0].content[1].source.url",
    ),
}


def assert_refused(way: str, status: int, body: dict, words: str = "") -> None:
    path, _, _, param = WAYS[way]
    assert status == 400, body
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"].startswith(param), body
        message = body["error"]["message"]
    else:
        assert body["error"]["param"] == param and body["error"]["type"] == "invalid_request_error", body
        message = body["error"]["message"]
    assert words in message, message


# -- a real server, the real resolver: addresses that are not public, however they are written --------

LOCAL_URLS = [
    "http://127.0.0.1:{port}/secret",
    "http://localhost:{port}/secret",
    "http://LOCALHOST:{port}/secret",
    "http://[::1]:{port}/secret",
    "http://2130706433:{port}/secret",
    "http://0x7f000001:{port}/secret",
    "http://0x7f.1:{port}/secret",
    "http://127.1:{port}/secret",
    "http://0177.0.0.1:{port}/secret",
    "http://[::ffff:127.0.0.1]:{port}/secret",
    "http://[0:0:0:0:0:ffff:7f00:1]:{port}/secret",
    "http://0.0.0.0:{port}/secret",
    "http://0:{port}/secret",
    "HTTP://127.0.0.1:{port}/secret",
    "http://user:pw@127.0.0.1:{port}/secret",
    "http://127.0.0.1:{port}#@public.example/x",
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://[fd00:ec2::254]/latest/",
    "http://10.0.0.1/x",
    "http://192.168.0.1/x",
    "http://172.16.5.4/x",
    "http://100.64.0.1/x",
    "http://[fe80::1]/x",
    "http://[fc00::1]/x",
    "http://224.0.0.1/x",
    "http://255.255.255.255/x",
    "http://[::]/x",
    "http://[64:ff9b::7f00:1]/x",
    "http://[2002:7f00:1::]/x",
    "https://127.0.0.1:{port}/secret",
]


@pytest.fixture(scope="module")
def fetching(start_gateway):
    """A gateway that downloads every media URL itself (MEDIA_URLS=fetch), https ones included."""
    return start_gateway(MEDIA_URLS="fetch")


@pytest.mark.parametrize("way", list(WAYS))
def test_non_public_addresses_are_refused_before_any_connection(fetching, upstream, target, hits, way):
    path, headers, body, _ = WAYS[way]
    for url in LOCAL_URLS:
        response = requests.post(
            fetching.url(path), json=body(url.format(port=target)), headers=headers, timeout=10
        )
        assert_refused(way, response.status_code, response.json())
    assert not hits, "the gateway connected to a non-public address"
    assert not upstream.calls()


@pytest.mark.parametrize("way", list(WAYS))
def test_by_default_https_urls_go_to_gemini_by_reference_and_the_gateway_fetches_nothing(
    gateway, upstream, target, hits, way
):
    path, headers, body, _ = WAYS[way]
    url = f"https://127.0.0.1:{target}/secret.png"  # Gemini fetches it, from Google's network
    assert requests.post(gateway.url(path), json=body(url), headers=headers, timeout=10).status_code == 200
    (call,) = upstream.calls()
    parts = call["body"]["contents"][0]["parts"]
    assert {
        "fileData": {"fileUri": url, "mimeType": "application/pdf" if "document" in way else "image/png"}
    } in parts
    assert not hits  # never connected: the guard stays for http: URLs and MEDIA_URLS=fetch
    http = f"http://127.0.0.1:{target}/secret"
    response = requests.post(gateway.url(path), json=body(http), headers=headers, timeout=10)
    assert_refused(way, response.status_code, response.json())
    assert not hits


# -- in process: a fixed DNS, and a "public" address that really is the local server --------------------


@pytest.fixture
def client(tmp_path, target):
    """The app with Gemini in memory, names resolved from a table, and PUBLIC_IP routed to the target."""
    dns = {
        "public.example": [PUBLIC_IP],
        "private.example": ["10.0.0.7"],
        "loop.example": ["127.0.0.1"],
        "rebind.example": [PUBLIC_IP, "127.0.0.1"],
        "v6loop.example": ["::1"],
        "metadata.example": ["::ffff:169.254.169.254"],
        "nat64.example": ["64:ff9b::a9fe:a9fe"],
    }
    real_connect = urllib3.util.connection.create_connection

    def resolve(host, port):
        if host not in dns:
            raise socket.gaierror(f"unknown host {host}")
        return dns[host]

    def connect(address, *args, **kwargs):
        host, port = address
        if host == PUBLIC_IP:
            return real_connect(("127.0.0.1", target), *args, **kwargs)
        raise AssertionError(f"the fetch tried to connect to {host}:{port}")  # nothing else is ever reached

    app = create_app(make_env(DATA_DIR=str(tmp_path / "data"), REQUEST_LOG="off"))
    gemini = InMemoryGemini()
    with app.app_context():
        state().upstream.session.mount(BASE, gemini)
    with (
        mock.patch("app.translate.media._system_resolve", resolve),
        mock.patch("urllib3.util.connection.create_connection", connect),
    ):
        test_client = app.test_client()
        test_client.gemini = gemini
        yield test_client


def send(client, way: str, url: str):
    path, headers, body, _ = WAYS[way]
    response = client.post(path, json=body(url), headers=headers)
    return response.status_code, json.loads(response.get_data())


@pytest.mark.parametrize("way", list(WAYS))
def test_a_public_url_is_fetched_and_sent_to_gemini_inline(client, hits, way):
    status, body = send(client, way, "http://public.example/image.png")
    assert status == 200, body
    assert hits == ["/image.png"]
    sent = json.loads(client.gemini.requests[-1].body)
    blobs = [p["inlineData"] for p in sent["contents"][0]["parts"] if "inlineData" in p]
    assert blobs == [{"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}]


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize(
    "start",
    [
        "/to-loopback",
        "/to-localhost",
        "/to-metadata",
        "/to-private-name",
        "/to-rebinding-name",
        "/to-mapped-v6",
        "/to-decimal",
        "/relative-to-loopback",
    ],
)
def test_a_redirect_to_a_non_public_address_is_refused(client, hits, way, start):
    status, body = send(client, way, f"http://public.example{start}")
    assert_refused(way, status, body)
    assert hits == [start], "only the public first hop was fetched"


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize(
    "host",
    [
        "private.example",
        "loop.example",
        "rebind.example",
        "v6loop.example",
        "metadata.example",
        "nat64.example",
    ],
)
def test_names_that_resolve_to_non_public_addresses_are_refused(client, hits, way, host):
    status, body = send(client, way, f"http://{host}/image.png")
    assert_refused(way, status, body, "public")
    assert not hits


def test_redirects_are_followed_to_a_limit(client, hits):
    assert send(client, "openai-image_url", "http://public.example/to-public")[0] == 200
    status, body = send(client, "openai-image_url", "http://public.example/chain")
    assert_refused("openai-image_url", status, body, "redirected more than 3 times")
    assert hits == ["/to-public", "/image.png", "/chain", "/chain2", "/chain3", "/chain4"]


@pytest.mark.parametrize("way", list(WAYS))
def test_a_file_over_the_size_cap_is_refused_unread(client, hits, way):
    status, body = send(client, way, "http://public.example/huge.png")
    assert_refused(way, status, body, "larger than the limit")
