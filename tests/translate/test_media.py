import base64
import gzip
import http.server
import ssl
import threading
import time

import pytest
import requests
import trustme

from app.errors import InvalidRequest
from app.translate import media
from app.translate.media import fetch_media, inline_data_from_url, is_public_address, parse_data_url, sniff

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 20
GIF = b"GIF89a" + b"\x02" * 20
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x03" * 20
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"4" * 20
PUBLIC_IP = "93.184.216.34"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- sniffing and data: URLs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data, mime",
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF, "image/gif"),
        (WEBP, "image/webp"),
        (PDF, "application/pdf"),
        (b"hello", None),
        (b"", None),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
    ],
)
def test_sniff(data, mime):
    assert sniff(data) == mime


def test_parse_data_url():
    url = f"data:image/png;base64,{b64(PNG)}"
    assert parse_data_url(url, param="p") == {"mimeType": "image/png", "data": b64(PNG)}


def test_declared_type_that_lies_about_a_known_type_is_corrected():
    # A client that labels a PNG as JPEG: Gemini would misdecode it, the magic bytes tell the truth.
    assert parse_data_url(f"data:image/jpeg;base64,{b64(PNG)}", param="p")["mimeType"] == "image/png"
    assert (
        parse_data_url(f"data:application/octet-stream;base64,{b64(PDF)}", param="p")["mimeType"]
        == "application/pdf"
    )


def test_unknown_bytes_keep_the_declared_type_normalised():
    data = b"ID3\x04\x00" + b"\x00" * 10
    assert (
        parse_data_url(f"data:Audio/MPEG;codecs=mp3;base64,{b64(data)}", param="p")["mimeType"]
        == "audio/mpeg"
    )
    assert parse_data_url(f"data:image/jpg;base64,{b64(b'xyz')}", param="p")["mimeType"] == "image/jpeg"


def test_base64_variants_are_normalised():
    data = bytes(range(256))
    standard = b64(data)
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    wrapped = "\n".join(standard[i : i + 76] for i in range(0, len(standard), 76))
    for payload in (urlsafe, wrapped, standard.rstrip("=")):
        out = parse_data_url(f"data:application/pdf;base64,{payload}", param="p")
        assert out["data"] == standard


def test_plain_data_url_is_percent_decoded_and_encoded():
    out = parse_data_url("data:,Hello%2C%20World%21", param="p")
    assert out == {"mimeType": "text/plain", "data": b64(b"Hello, World!")}
    out = parse_data_url("data:text/markdown;charset=utf-8,%23%20Title", param="p")
    assert out == {"mimeType": "text/markdown", "data": b64(b"# Title")}


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64",  # no comma
        "data:image/png;base64,not*base64!",
        "data:image/png;base64,QUJD=QUJD",  # padding in the middle
        "data:image/png;base64,",  # empty
        "http://example.com/x.png",
        "",
    ],
)
def test_malformed_data_urls_are_a_400_naming_the_param(url):
    with pytest.raises(InvalidRequest) as exc:
        parse_data_url(url, param="messages[0].content[1].image_url.url")
    assert exc.value.param == "messages[0].content[1].image_url.url"
    assert exc.value.status == 400


# -- the address guard ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.100.100.200",  # shared address space (Alibaba's metadata address)
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.8",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "ff0e::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.1.2.3",
        "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
        "2002:a00:1::",  # 6to4 wrapping 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 wrapping 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo wrapping 10.0.0.1
        "2001:db8::1",  # documentation
        "not an ip",
        "",
    ],
)
def test_non_public_addresses(address):
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses(address):
    assert is_public_address(address)


# -- fetching (mocked HTTP, injected DNS) ----------------------------------------------------


def dns(table: dict):
    def resolve(host, port):
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


PUBLIC_DNS = dns({"img.example": [PUBLIC_IP], "cdn.example": ["93.184.216.35"]})


def test_fetch_connects_to_the_checked_address_with_the_host_header(mocked):
    mocked.get(f"http://{PUBLIC_IP}/a/cat.png?size=2", body=PNG, content_type="image/png")
    out = fetch_media("http://img.example/a/cat.png?size=2#frag", param="p", resolve=PUBLIC_DNS)
    assert out == {"mimeType": "image/png", "data": b64(PNG)}
    request = mocked.calls[0].request
    assert request.headers["Host"] == "img.example"
    assert request.url == f"http://{PUBLIC_IP}/a/cat.png?size=2"


def test_fetch_keeps_a_non_default_port(mocked):
    mocked.get(f"https://{PUBLIC_IP}:8443/x", body=PDF, content_type="application/pdf")
    out = fetch_media("https://img.example:8443/x", param="p", resolve=PUBLIC_DNS)
    assert out["mimeType"] == "application/pdf"
    assert mocked.calls[0].request.headers["Host"] == "img.example:8443"


def test_fetch_ipv6_address(mocked):
    mocked.get("http://[2606:4700:4700::1111]/x", body=GIF, content_type="image/gif")
    out = fetch_media("http://v6.example/x", param="p", resolve=dns({"v6.example": ["2606:4700:4700::1111"]}))
    assert out["mimeType"] == "image/gif"


def test_fetch_mime_from_content_type_corrected_by_sniffing(mocked):
    mocked.get(f"http://{PUBLIC_IP}/photo", body=JPEG, content_type="application/octet-stream")
    mocked.get(f"http://{PUBLIC_IP}/doc", body=b"plain words", content_type="text/plain; charset=utf-8")
    assert fetch_media("http://img.example/photo", param="p", resolve=PUBLIC_DNS)["mimeType"] == "image/jpeg"
    assert fetch_media("http://img.example/doc", param="p", resolve=PUBLIC_DNS)["mimeType"] == "text/plain"


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.0.0.5"],
        ["169.254.169.254"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["fd00:ec2::254"],
        [PUBLIC_IP, "192.168.0.10"],
    ],  # one private answer among public ones is enough to refuse
)
def test_fetch_refuses_non_public_addresses_before_connecting(mocked, addresses):
    with pytest.raises(InvalidRequest) as exc:
        fetch_media(
            "http://evil.example/x.png", param="image.source.url", resolve=dns({"evil.example": addresses})
        )
    assert exc.value.param == "image.source.url"
    assert "public" in exc.value.message
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://[::1]/x",
        "http://2130706433/x",
        "http://0x7f.1/x",
        "http://localhost/x",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_fetch_refuses_local_urls_with_the_real_resolver(url):
    with pytest.raises(InvalidRequest) as exc:
        fetch_media(url, param="p")
    assert "public" in exc.value.message


def test_each_redirect_is_checked(mocked):
    mocked.get(
        f"http://{PUBLIC_IP}/r", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    with pytest.raises(InvalidRequest) as exc:
        fetch_media("http://img.example/r", param="p", resolve=PUBLIC_DNS)
    assert "public" in exc.value.message
    assert len(mocked.calls) == 1


def test_redirects_to_public_hosts_are_followed(mocked):
    mocked.get(f"http://{PUBLIC_IP}/r", status=301, headers={"Location": "https://cdn.example/real.png"})
    mocked.get("https://93.184.216.35/real.png", status=307, headers={"Location": "/final.png"})
    mocked.get("https://93.184.216.35/final.png", body=PNG, content_type="image/png")
    out = fetch_media("http://img.example/r", param="p", resolve=PUBLIC_DNS)
    assert out["data"] == b64(PNG)
    assert [c.request.headers["Host"] for c in mocked.calls] == ["img.example", "cdn.example", "cdn.example"]


def test_at_most_three_redirects(mocked):
    for i in range(4):  # /4 is never asked for: the fourth redirect is refused
        mocked.get(f"http://{PUBLIC_IP}/{i}", status=302, headers={"Location": f"/{i + 1}"})
    with pytest.raises(InvalidRequest) as exc:
        fetch_media("http://img.example/0", param="p", resolve=PUBLIC_DNS)
    assert "redirected more than 3" in exc.value.message
    assert len(mocked.calls) == 4


def test_size_cap_from_content_length(mocked):
    mocked.get(f"http://{PUBLIC_IP}/big", body=b"x" * 2000, auto_calculate_content_length=True)
    with pytest.raises(InvalidRequest) as exc:
        fetch_media("http://img.example/big", param="p", max_bytes=1000, resolve=PUBLIC_DNS)
    assert "larger than" in exc.value.message


def test_size_cap_while_streaming(mocked):
    mocked.get(f"http://{PUBLIC_IP}/big", body=b"x" * 300_000)  # no Content-Length
    with pytest.raises(InvalidRequest) as exc:
        fetch_media("http://img.example/big", param="p", max_bytes=100_000, resolve=PUBLIC_DNS)
    assert "larger than" in exc.value.message
    mocked.get(f"http://{PUBLIC_IP}/ok", body=b"x" * 100_000)
    assert (
        len(
            base64.b64decode(
                fetch_media("http://img.example/ok", param="p", max_bytes=100_000, resolve=PUBLIC_DNS)["data"]
            )
        )
        == 100_000
    )


def test_size_cap_counts_decompressed_bytes(mocked):
    bomb = gzip.compress(b"\x00" * 5_000_000)
    mocked.get(f"http://{PUBLIC_IP}/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(InvalidRequest) as exc:
        fetch_media("http://img.example/bomb", param="p", max_bytes=1_000_000, resolve=PUBLIC_DNS)
    assert "larger than" in exc.value.message


@pytest.mark.parametrize("status", [404, 403, 500])
def test_http_errors_are_a_400(mocked, status):
    mocked.get(f"http://{PUBLIC_IP}/x", status=status)
    with pytest.raises(InvalidRequest) as exc:
        fetch_media("http://img.example/x", param="p", resolve=PUBLIC_DNS)
    assert str(status) in exc.value.message and exc.value.param == "p"


@pytest.mark.parametrize(
    "error, words",
    [
        (requests.ConnectionError("refused"), "connection failed"),
        (requests.ConnectTimeout("slow"), "timed out"),
        (requests.exceptions.SSLError("bad cert"), "TLS error"),
    ],
)
def test_network_errors_are_a_400(mocked, error, words):
    mocked.get(f"http://{PUBLIC_IP}/x", body=error)
    with pytest.raises(InvalidRequest) as exc:
        fetch_media("http://img.example/x", param="p", resolve=PUBLIC_DNS)
    assert words in exc.value.message and exc.value.param == "p"


def test_unresolvable_host_is_a_400():
    with pytest.raises(InvalidRequest) as exc:
        fetch_media("http://nowhere.example/x", param="p", resolve=PUBLIC_DNS)
    assert "resolve" in exc.value.message


def test_empty_body_is_a_400(mocked):
    mocked.get(f"http://{PUBLIC_IP}/x", body=b"")
    with pytest.raises(InvalidRequest):
        fetch_media("http://img.example/x", param="p", resolve=PUBLIC_DNS)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://img.example/x",
        "file:///etc/passwd",
        "http:///nohost",
        "http://img.example:99999/x",
        "gopher://127.0.0.1:25/",
    ],
)
def test_other_urls_are_a_400(url):
    with pytest.raises(InvalidRequest) as exc:
        fetch_media(url, param="p", resolve=PUBLIC_DNS)
    assert exc.value.param == "p"


def test_https_pins_the_ip_but_verifies_the_host_name():
    adapter = media._PinnedAdapter()
    request = requests.Request("GET", f"https://{PUBLIC_IP}/x", headers={"Host": "img.example"}).prepare()
    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(request, True)
    assert host_params["host"] == PUBLIC_IP
    assert pool_kwargs["server_hostname"] == "img.example"
    assert pool_kwargs["assert_hostname"] == "img.example"
    request = requests.Request(
        "GET", f"https://{PUBLIC_IP}:8443/x", headers={"Host": "img.example:8443"}
    ).prepare()
    assert adapter.build_connection_pool_key_attributes(request, True)[1]["server_hostname"] == "img.example"


def test_the_shared_session_ignores_proxy_settings():
    assert media._SESSION.trust_env is False


# -- fetching from a real server on 127.0.0.1 -----------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)
        elif self.path == "/stream":  # no Content-Length: the cap must hold while reading
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"y" * 16384)
        elif self.path == "/drip":  # a byte at a time: the deadline must hold
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(0.05)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_local_server_is_refused_by_default(local_server):
    with pytest.raises(InvalidRequest):
        fetch_media(local_server + "/png", param="p")


def test_local_server_with_allow_private(local_server):
    assert fetch_media(local_server + "/png", param="p", allow_private=True) == {
        "mimeType": "image/png",
        "data": b64(PNG),
    }


def test_real_stream_is_capped(local_server):
    with pytest.raises(InvalidRequest) as exc:
        fetch_media(local_server + "/stream", param="p", allow_private=True, max_bytes=100_000)
    assert "larger than" in exc.value.message


def test_real_drip_hits_the_deadline(local_server):
    started = time.monotonic()
    with pytest.raises(InvalidRequest) as exc:
        fetch_media(local_server + "/drip", param="p", allow_private=True, timeout=0.5)
    assert "timed out" in exc.value.message
    assert time.monotonic() - started < 2


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server on 127.0.0.1 whose certificate names img.example (and not 127.0.0.1)."""
    ca = trustme.CA()
    cert = ca.issue_cert("img.example")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    session = media._new_session()
    session.verify = str(ca_path)
    yield server.server_address[1], session
    session.close()
    server.shutdown()
    server.server_close()


def test_https_connects_to_the_pinned_ip_and_verifies_the_host_name(tls_server):
    port, session = tls_server
    out = fetch_media(
        f"https://img.example:{port}/png",
        param="p",
        allow_private=True,
        session=session,
        resolve=dns({"img.example": ["127.0.0.1"]}),
    )
    assert out == {"mimeType": "image/png", "data": b64(PNG)}


def test_https_refuses_a_certificate_for_another_name(tls_server):
    port, session = tls_server
    with pytest.raises(InvalidRequest) as exc:
        fetch_media(
            f"https://other.example:{port}/png",
            param="p",
            allow_private=True,
            session=session,
            resolve=dns({"other.example": ["127.0.0.1"]}),
        )
    assert "TLS" in exc.value.message


# -- one entry point ------------------------------------------------------------------------


def test_inline_data_from_url_dispatches(mocked):
    assert inline_data_from_url(f" data:image/gif;base64,{b64(GIF)} ", param="p")["mimeType"] == "image/gif"
    mocked.get(f"http://{PUBLIC_IP}/x", body=WEBP, content_type="image/webp")
    assert (
        inline_data_from_url("HTTP://img.example/x", param="p", resolve=PUBLIC_DNS)["mimeType"]
        == "image/webp"
    )


@pytest.mark.parametrize(
    "url",
    ["ftp://x/y", "javascript:alert(1)", "/relative/path.png", "", "   ", None, 5, "file:///etc/passwd"],
)
def test_inline_data_from_url_refuses_other_schemes(url):
    with pytest.raises(InvalidRequest) as exc:
        inline_data_from_url(url, param="p")
    assert exc.value.param == "p"
