"""A client's image or document URL (data: or http(s):) as a Gemini part: `inlineData` (decoded, or fetched
only from public addresses), or `fileData` that Gemini fetches itself (MEDIA_URLS=pass)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import mimetypes
import re
import socket
import time
from collections.abc import Callable, Iterable
from urllib.parse import unquote_to_bytes, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .. import budget
from ..budget import MAX_MEDIA_REDIRECTS, MAX_MEDIA_URL_BYTES, MEDIA_FETCH_TIMEOUT
from ..errors import InvalidRequest

MAX_BYTES = MAX_MEDIA_URL_BYTES
MAX_REDIRECTS = MAX_MEDIA_REDIRECTS
_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)

# (magic prefix, MIME type), for the types clients most often mislabel.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}

Resolver = Callable[[str, int], Iterable[str]]
# How translators turn a client's URL into inlineData: `fetch(url, param=...)` (inline_data_from_url,
# or a stand-in in tests).
Fetch = Callable[..., dict]


def sniff(data: bytes) -> str | None:
    """The MIME type the first bytes prove, for png, jpeg, gif, webp and pdf; None otherwise."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _mime(declared: str | None, data: bytes) -> str:
    """The declared type, unless the bytes prove a different known type.

    Clients often label every upload image/png or application/octet-stream; Gemini decodes by the declared
    type and refuses or misreads a mislabelled file, while the magic bytes cannot lie.
    """
    declared = (declared or "").split(";")[0].strip().lower()
    declared = _ALIASES.get(declared, declared)
    return sniff(data) or declared or "application/octet-stream"


# -- data: URLs ----------------------------------------------------------------------------


def parse_data_url(url: str, *, param: str) -> dict:
    """`data:[<mime>][;base64],<data>` -> `{"mimeType", "data"}` (standard base64); 400 naming `param` if malformed."""
    if not isinstance(url, str) or not url[:5].lower() == "data:":
        raise InvalidRequest("Expected a data: URL.", param=param)
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise InvalidRequest("Malformed data URL: no comma before the data.", param=param)
    params = [p.strip() for p in header.split(";")]
    is_base64 = any(p.lower() == "base64" for p in params[1:])
    declared = params[0] if "/" in params[0] else ""
    if is_base64:
        raw = _b64decode(payload, param)
    else:
        raw = unquote_to_bytes(payload)
    if not raw:
        raise InvalidRequest("The data URL holds no data.", param=param)
    data = payload if is_base64 and _is_canonical(payload) else base64.b64encode(raw).decode("ascii")
    return {"mimeType": _mime(declared or "text/plain", raw), "data": data}


def _b64decode(payload: str, param: str) -> bytes:
    if _is_canonical(payload):
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("The data URL's base64 data is not valid base64.", param=param) from None
    text = "".join(unquote_to_bytes(payload).decode("ascii", "replace").split())
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")  # URL-safe alphabet, which some clients send
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("The data URL's base64 data is not valid base64.", param=param) from None


def _is_canonical(payload: str) -> bool:
    """Whether the payload can go to Gemini as it is (standard alphabet, padded, no whitespace or escapes)."""
    return len(payload) % 4 == 0 and not any(c in payload for c in "%-_ \n\r\t")


# -- http(s) URLs --------------------------------------------------------------------------


def is_public_address(address: str) -> bool:
    """Whether an IP address is publicly routable: not loopback, private, link-local (cloud metadata),
    multicast, reserved, unspecified or shared, also when wrapped in an IPv6 form (mapped, 6to4, NAT64)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        # Forms that reach an IPv4 address are as public as that address.
        if ip.ipv4_mapped is not None:
            return is_public_address(str(ip.ipv4_mapped))
        if ip in _NAT64:
            return is_public_address(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    elif any(ip in net for net in _MORE_V4):
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Special-purpose blocks that this Python's tables do not all mark as non-global (IETF protocol assignments).
_MORE_V4 = (ipaddress.ip_network("192.0.0.0/24"),)


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedAdapter(HTTPAdapter):
    """Connects to the IP in the URL while TLS still checks the certificate of the original host name.

    The fetch puts the checked IP into the URL and the host name into the Host header, so no second DNS
    lookup can swap in another address between the check and the connection (DNS rebinding).
    """

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params.get("scheme") == "https":
            hostname = _host_only(request.headers.get("Host", ""))
            if hostname:
                # urllib3 takes these, though requests' types do not list them.
                pool_kwargs["server_hostname"] = hostname  # type: ignore[typeddict-unknown-key]
                pool_kwargs["assert_hostname"] = hostname  # type: ignore[typeddict-unknown-key]
        return host_params, pool_kwargs


def _host_only(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _new_session() -> requests.Session:
    session = requests.Session()
    # Proxies from the environment would connect on our behalf to an address we never checked.
    session.trust_env = False
    adapter = _PinnedAdapter(pool_connections=16, pool_maxsize=16, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "gemgate-media-fetch/1"
    return session


_SESSION = _new_session()


def fetch_media(
    url: str,
    *,
    param: str,
    max_bytes: int = MAX_BYTES,
    timeout: float = MEDIA_FETCH_TIMEOUT,
    allow_private: bool = False,
    resolve: Resolver | None = None,
    session: requests.Session | None = None,
) -> dict:
    """GET an http(s) URL for the client -> `{"mimeType", "data"}`; 400 naming `param` for anything wrong.

    Every address the host name resolves to must be public (checked after DNS, and again for each of at
    most 3 redirects); the connection goes to the checked address. The body is capped at `max_bytes` while
    it streams and the whole fetch at `timeout` seconds. `allow_private` and `resolve` exist for tests (a
    fake server on 127.0.0.1, a fixed DNS answer); production callers pass neither.
    """
    resolve = resolve or _system_resolve
    session = session or _SESSION
    deadline = time.monotonic() + timeout
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target, host_header = _pin(current, param, resolve, allow_private)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InvalidRequest(f"Fetching the URL timed out after {timeout:g} s.", param=param)
        try:
            response = session.get(
                target,
                headers={"Host": host_header, "Accept": "*/*"},
                timeout=(min(remaining, 5.0), remaining),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise InvalidRequest(f"Fetching the URL timed out after {timeout:g} s.", param=param) from None
        except requests.RequestException as exc:
            raise InvalidRequest(f"Could not fetch the URL: {_reason(exc)}.", param=param) from None
        with response:
            if response.status_code in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise InvalidRequest("The URL redirected without a Location.", param=param)
                current = urljoin(current, location)
                continue
            if not 200 <= response.status_code < 300:
                raise InvalidRequest(
                    f"Fetching the URL failed: it answered HTTP {response.status_code}.", param=param
                )
            body = _read_capped(response, max_bytes, deadline, timeout, param)
            if not body:
                raise InvalidRequest("The URL returned no data.", param=param)
            return {
                "mimeType": _mime(response.headers.get("Content-Type"), body),
                "data": base64.b64encode(body).decode("ascii"),
            }
    raise InvalidRequest(f"The URL redirected more than {MAX_REDIRECTS} times.", param=param)


def _pin(url: str, param: str, resolve: Resolver, allow_private: bool) -> tuple[str, str]:
    """(the URL with its host replaced by a checked IP, the Host header); 400 for a bad or private target."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequest("Malformed URL.", param=param) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidRequest("Only data:, http: and https: URLs can be fetched.", param=param)
    host = parts.hostname
    if not host:
        raise InvalidRequest("The URL has no host.", param=param)
    port = port or (443 if scheme == "https" else 80)
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")  # the Host header and DNS want the ASCII form
        except UnicodeError:
            raise InvalidRequest("The URL's host name is not valid.", param=param) from None
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    try:
        addresses = [host] if literal else list(resolve(host, port))
    except (OSError, UnicodeError):
        raise InvalidRequest(f"Could not resolve the URL's host {host!r}.", param=param) from None
    if not addresses:
        raise InvalidRequest(f"Could not resolve the URL's host {host!r}.", param=param)
    if not allow_private:
        # All of them, not just the first: the connection must not be able to land on a private one.
        for address in addresses:
            if not is_public_address(address):
                raise InvalidRequest(
                    "The URL points to a private, loopback or otherwise non-public address; the gateway fetches "
                    "only from public addresses.",
                    param=param,
                )
    address = addresses[0].split("%")[0]
    netloc_ip = f"[{address}]" if ":" in address else address
    default_port = 443 if scheme == "https" else 80
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default_port else f"{bracketed}:{port}"
    netloc = netloc_ip if port == default_port else f"{netloc_ip}:{port}"
    target = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    return target, host_header


def _read_capped(
    response: requests.Response, max_bytes: int, deadline: float, timeout: float, param: str
) -> bytes:
    """The body, refused as soon as it passes `max_bytes` (decompressed) or the deadline passes."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise InvalidRequest(_too_large(max_bytes), param=param)
    raw = response.raw
    # read1 returns after one socket read, so a server dripping bytes cannot stretch the deadline.
    read = (lambda: raw.read1(_CHUNK, decode_content=True)) if hasattr(raw, "read1") else None
    chunks = iter(read, b"") if read else response.iter_content(_CHUNK)
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise InvalidRequest(_too_large(max_bytes), param=param)
            if time.monotonic() > deadline:
                raise InvalidRequest(f"Fetching the URL timed out after {timeout:g} s.", param=param)
            parts.append(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise InvalidRequest(f"Could not fetch the URL: {_reason(exc)}.", param=param) from None
    return b"".join(parts)


def _too_large(max_bytes: int) -> str:
    return f"The file at the URL is larger than the limit of {max_bytes} bytes."


def _reason(exc: Exception) -> str:
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, (requests.ConnectionError, urllib3.exceptions.ProtocolError, OSError)):
        return "connection failed"
    return "bad response"


def inline_data_from_url(url: str, *, param: str, **fetch_options) -> dict:
    """`inlineData` for a data: URL or an http(s) URL (fetched with `fetch_media`); 400 for anything else.

    Within one request (`budget.per_request`), a URL is fetched once however often it is used, and the
    request's URLs are bounded in number and in the bytes they bring (MAX_MEDIA_URLS, MAX_MEDIA_BYTES).
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest("Expected a URL.", param=param)
    url = url.strip()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return parse_data_url(url, param=param)
    if scheme in ("http", "https"):
        return budget.current().fetched(
            url, param, lambda max_bytes: fetch_media(url, param=param, max_bytes=max_bytes, **fetch_options)
        )
    raise InvalidRequest("Only data:, http: and https: URLs are supported.", param=param)


# -- by reference: Gemini fetches the URL itself ------------------------------------------------------

# Model families that take media only inline: Gemini fetches https URLs (public or signed) for the rest.
_INLINE_ONLY = re.compile(r"^(gemini-1\.|gemini-2\.0|gemma-|learnlm-)")


class UrlMedia:
    """How a translator takes a client's media URL for one model. `passes(url)` says whether the URL goes
    to Gemini by reference (`fileData`): with MEDIA_URLS=pass, an https URL, a model that fetches URLs.
    Called like a Fetch, it is the guarded download (inlineData) for the rest: data: URLs, http:, or
    MEDIA_URLS=fetch."""

    def __init__(self, mode: str, model: str, fetch: Fetch = inline_data_from_url):
        self.by_reference = mode == "pass" and not _INLINE_ONLY.match(model)
        self.fetch = fetch

    def __call__(self, url: str, *, param: str, **fetch_options) -> dict:
        return self.fetch(url, param=param, **fetch_options)

    def passes(self, url: str) -> bool:
        return self.by_reference and url[:8].lower() == "https://"


def url_part(fetch: Fetch, url: str, *, param: str, mime_type: str | None = None) -> dict:
    """The part for a media URL: `fileData` when `fetch` passes it to Gemini (its type from the client,
    else the URL's file extension, else left to Gemini), else `inlineData` from `fetch`."""
    url = url.strip()
    if isinstance(fetch, UrlMedia) and fetch.passes(url):
        data = {"fileUri": url}
        mime = mime_type or mimetypes.guess_type(urlsplit(url).path)[0]
        if mime:
            data["mimeType"] = mime
        return {"fileData": data}
    return {"inlineData": fetch(url, param=param)}
