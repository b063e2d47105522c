"""What went wrong when a connection to Gemini failed, in a few words for the log and the client: a TLS
certificate that does not verify, a refused connection, a name that does not resolve."""

from __future__ import annotations

import socket
import ssl
from http.client import RemoteDisconnected

import urllib3


def connection_failure(exc: BaseException, host: str) -> str:
    """Why a call could not reach `host` (Gemini's host, from GEMINI_BASE_URL), read from the chain of
    exceptions requests and urllib3 raise. It never quotes their whole text, which may carry a URL."""
    causes = list(_chain(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"the TLS certificate of {host} did not verify ({cause.verify_message or cause.reason})"
    for cause in causes:
        if isinstance(cause, urllib3.exceptions.NameResolutionError | socket.gaierror):
            return f"the name {_name(host)} did not resolve"
        if isinstance(cause, ConnectionRefusedError):
            return f"{host} refused the connection"
        if isinstance(cause, urllib3.exceptions.ProxyError):
            return "the HTTPS proxy (HTTPS_PROXY) did not connect to it"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake with {host} failed ({cause.reason or type(cause).__name__})"
        if isinstance(cause, RemoteDisconnected | ConnectionResetError | ConnectionAbortedError):
            return f"{host} closed the connection without an answer"
        if isinstance(cause, OSError) and cause.strerror:
            return f"the connection to {host} failed ({cause.strerror.lower()})"
    return f"the connection to {host} failed"


def _chain(exc: BaseException):
    """The exception and those inside it: arguments (urllib3 wraps its reason), `reason`, causes."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), current.__cause__, current.__context__]
        inner += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
        pending += [e for e in inner if isinstance(e, BaseException)]


def _name(host: str) -> str:
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
