"""The connection to Gemini: requests' adapter with what it works out on every call worked out once (the
pool, the TLS settings), and one TLS context whose CA bundle is read once rather than per connection."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_encoding_from_headers
from urllib3.util.ssl_ import create_urllib3_context


def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """urllib3's client defaults (TLS 1.2 or later, certificates and host names verified) trusting
    `ca_bundle` (a file or a directory of certificates), or requests' own bundle when None."""
    context = create_urllib3_context()
    where = ca_bundle or DEFAULT_CA_BUNDLE_PATH
    if os.path.isdir(where):
        context.load_verify_locations(capath=where)
    else:
        context.load_verify_locations(cafile=where)
    return context


class GeminiAdapter(HTTPAdapter):
    """requests' HTTPAdapter for the one origin the gateway calls.

    Its `send` is requests' own (so `responses` mocks it in tests); what `send` asks of the adapter on
    every call is answered from what was worked out for the first: the connection pool of the origin
    (three URL parses and a pool lookup), the TLS settings (a CA bundle read per new connection, and a
    check of its path per call), the path to send, and the response without a cookie jar (Gemini sets
    no cookies and the gateway sends none). Calls through a proxy take requests' usual way.
    """

    def __init__(self, pool_size: int, ca_bundle: str | None = None):
        self.tls = tls_context(ca_bundle)
        self._pools: dict[str, Any] = {}  # origin -> its urllib3 connection pool
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs.setdefault("ssl_context", self.tls)
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)

    def get_connection_with_tls_context(
        self,
        request: PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        if proxies or cert or verify is False or not request.url:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        origin = _origin(request.url)
        pool = self._pools.get(origin)
        if pool is None or pool.pool is None:  # not made yet, or closed since
            # verify=True: the pool's TLS settings are the manager's context, its CA bundle loaded once.
            # (urllib3 checks a pooled connection with the event loop's poll before using it again: that
            # costs a switch to the hub, but the switch keeps the worker fair, see the README's profile.)
            pool = self._pools[origin] = super().get_connection_with_tls_context(request, True)
        return pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if conn in self._pools.values():
            return  # its context verifies, with the CA bundle it holds
        super().cert_verify(conn, url, verify, cert)

    def request_url(self, request: PreparedRequest, proxies: Mapping[str, str] | None) -> str:
        url = request.url or ""
        if proxies or "#" in url:
            return super().request_url(request, proxies)
        start = url.find("/", url.find("//") + 2)
        return "/" if start < 0 else url[start:]

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        response = Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else (req.url or "")
        response.request = req
        response.connection = self
        return response


def _origin(url: str) -> str:
    end = url.find("/", url.find("//") + 2)
    return url if end < 0 else url[:end]
