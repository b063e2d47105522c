"""Gemini over TLS with a CA of the operator's, and connections that fail: each failure is answered as
Gemini being unreachable, saying why, and logged with its cause (real sockets on 127.0.0.1, threads)."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import trustme
import urllib3

from app.config import Config
from app.errors import UpstreamUnreachable
from app.upstream.client import UpstreamClient
from app.upstream.failures import connection_failure
from app.upstream.key_pool import KeyPool
from tests.conftest import fixture_bytes, free_port, make_env

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
ANSWER = fixture_bytes("gemini/generate_text.json")


class Gemini(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_gemini(ca):
    """An HTTPS fake Gemini on 127.0.0.1 whose certificate `ca` signed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gemini)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def upstream(tmp_path, base_url: str, **env) -> UpstreamClient:
    config = Config.from_env(make_env(DATA_DIR=str(tmp_path), GEMINI_BASE_URL=base_url, **env))
    return UpstreamClient(config, KeyPool(config.gemini_api_keys))


def test_gemini_behind_a_private_ca_is_reached_with_gemini_ca_bundle(tmp_path, ca, tls_gemini):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    for variable in ("GEMINI_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        served = upstream(tmp_path, tls_gemini, **{variable: str(bundle)}).request(
            "POST", GENERATE, body=b"{}"
        )
        assert served.response.status_code == 200 and served.content == ANSWER


def test_an_untrusted_certificate_is_unreachable_naming_the_verify_failure(tmp_path, tls_gemini, caplog):
    client = upstream(tmp_path, tls_gemini, UPSTREAM_RETRIES=1)  # requests' own bundle: not our CA
    with (
        caplog.at_level(logging.WARNING, "app.upstream.client"),
        pytest.raises(UpstreamUnreachable) as caught,
    ):
        client.request("POST", GENERATE, body=b"{}")
    err = caught.value
    host = tls_gemini.removeprefix("https://")
    assert err.status == 503 and err.kind == "unreachable" and err.attempts == 2
    assert err.message.startswith(f"Could not reach Gemini: the TLS certificate of {host} did not verify (")
    assert (
        "certificate" in err.message.split("(", 1)[1]
    )  # OpenSSL's reason, e.g. "unable to get local issuer"
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2 and all("did not verify" in line and "key-" in line for line in logged)
    assert not any(key in line for line in logged for key in client.config.gemini_api_keys)


def test_a_refused_connection_is_unreachable_naming_it(tmp_path):
    port = free_port()  # nothing listens there
    with pytest.raises(UpstreamUnreachable) as caught:
        upstream(tmp_path, f"http://127.0.0.1:{port}", UPSTREAM_RETRIES=0).request(
            "POST", GENERATE, body=b"{}"
        )
    assert caught.value.message == f"Could not reach Gemini: 127.0.0.1:{port} refused the connection."
    assert caught.value.attempts == 1


def test_a_connection_closed_without_an_answer_is_named(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))

    def close_at_once():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    threading.Thread(target=close_at_once, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        with pytest.raises(UpstreamUnreachable) as caught:
            upstream(tmp_path, f"http://127.0.0.1:{port}", UPSTREAM_RETRIES=0).request(
                "POST", GENERATE, body=b"{}"
            )
    finally:
        listener.close()
    assert (
        caught.value.message
        == f"Could not reach Gemini: 127.0.0.1:{port} closed the connection without an answer."
    )


def test_a_name_that_does_not_resolve_is_named():
    # As urllib3 and requests raise it (a lookup of a real name would depend on this host's DNS).
    lookup = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    reason = urllib3.exceptions.NameResolutionError("gemini.example.invalid", None, lookup)  # type: ignore[arg-type]
    wrapped = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/v1beta/models", reason))  # type: ignore[arg-type]
    said = "the name gemini.example.invalid did not resolve"
    assert connection_failure(wrapped, "gemini.example.invalid") == said
    assert connection_failure(wrapped, "gemini.example.invalid:8443") == said


def test_a_failure_of_no_known_kind_says_little_and_never_quotes_its_text():
    wrapped = requests.ConnectionError("https://user:secret@proxy.example/ went wrong")
    assert connection_failure(wrapped, "gemini.example") == "the connection to gemini.example failed"
