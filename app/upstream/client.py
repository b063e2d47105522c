"""The HTTP client for Gemini: one pooled session, key rotation, retries before the first byte."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from time import perf_counter
from urllib.parse import urlsplit
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from requests.utils import get_auth_from_url

from .. import jsonx
from ..config import Config
from ..errors import (
    GatewayError,
    UpstreamError,
    UpstreamNotConfigured,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from ..http.sse import SSEDecoder
from .call import (
    GENERATE_ACTIONS,
    RESOURCE_PREFIXES,
    BodyStream,
    estimate_prompt_tokens,
    model_call,
    named_resources,
    with_model,
)
from .failures import connection_failure
from .key_pool import (
    Affinity,
    KeyPool,
    ModelExhausted,
    ProbePending,
    Route,
    UpstreamKey,
    resource_name,
    session_name,
)
from .retry import Fault, Rules, backoff, judge, resource_refused, retry_delay
from .transport import GeminiAdapter
from .waits import HEARTBEAT, Heartbeat, Silence, quiet_pieces

# A call's query parameters: a repeated one has a tuple of its values.
Params = Mapping[str, str | tuple[str, ...]]
# The session hint of a client's resource creations: its resources gather on one key.
CREATIONS = "\x00resources"
# Gemini API keys look like this; scrubbed even when they are not one of ours.
_GOOGLE_KEY = r"AIza[0-9A-Za-z_\-]{35}"
# A call that finds only keys under probe polls the store this often, doubling, for this long.
PROBE_POLL = 0.05
PROBE_WAIT = 5.0
_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
log = logging.getLogger(__name__)


class Scrubber:
    """Removes upstream keys from any text that might travel to a client or a log."""

    def __init__(self, secrets: tuple[str, ...]):
        alternatives = [re.escape(s) for s in sorted(secrets, key=len, reverse=True)] + [_GOOGLE_KEY]
        self._pattern = re.compile("|".join(alternatives).encode())

    def __call__(self, data: bytes) -> bytes:
        return self._pattern.sub(b"[redacted]", data)


class Served:
    """A 2xx answer from Gemini, with the key that served it, the attempts it took, and the model
    that answered (the one asked for, or one of its fallbacks) and its path."""

    __slots__ = ("response", "key", "attempts", "model", "path")

    def __init__(
        self,
        response: requests.Response,
        key: UpstreamKey,
        attempts: int,
        model: str | None = None,
        path: str = "",
    ):
        self.response = response
        self.key = key
        self.attempts = attempts
        self.model = model
        self.path = path

    @property
    def content(self) -> bytes:
        return self.response.content

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers


# What an upstream attempt came to (the metrics' outcome labels).
OUTCOMES = (
    "ok",
    "rate_limited",
    "key_invalid",
    "timeout",
    "connection_error",
    "server_error",
    "client_error",
)


def _ignore(_: object) -> None:
    pass


def _no_context() -> tuple[str | None, str | None]:
    return None, None


def _as_sent(body: bytes, model: str) -> bytes:
    return body


@dataclass(frozen=True)
class _Call:
    method: str
    body: bytes | BodyStream | None
    params: Params | None
    stream: bool
    headers: Mapping[str, str] | None
    idempotent: bool


class _Tally:
    """How many times one call was sent to Gemini, its retries and fallback models included."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0


class _Exhausted(Exception):
    """Every key rests for this model: the error to answer, unless a fallback model serves."""

    def __init__(self, error: GatewayError, attempts: int):
        self.error = error
        self.attempts = attempts


class UpstreamClient:
    """Calls Gemini. `on_attempt(outcome)` hears of every attempt, `on_wait(seconds)` of the time
    each call spent waiting for Gemini (the metrics and the overhead header use them), and
    `context()` gives the current request's client key name and session hint (affinity), and
    `for_fallback(body, model)` a generate request's body as a fallback model of another family takes it."""

    def __init__(
        self,
        config: Config,
        pool: KeyPool,
        session: requests.Session | None = None,
        *,
        on_attempt: Callable[[str], None] = _ignore,
        on_wait: Callable[[float], None] = _ignore,
        context: Callable[[], tuple[str | None, str | None]] = _no_context,
        for_fallback: Callable[[bytes, str], bytes] = _as_sent,
    ):
        self.config = config
        self.pool = pool
        self.base_url = config.gemini_base_url
        self.session = session or build_session(config)
        self.scrub = Scrubber(config.gemini_api_keys)
        self.max_attempts = len(pool) + config.upstream_retries + 1
        self.rules = Rules(
            cooldown=config.key_cooldown, max_cooldown=config.key_cooldown_max, recheck=config.key_recheck
        )
        self.fallbacks = fallback_table(config.model_fallbacks)
        self.on_attempt = on_attempt
        self.on_wait = on_wait
        self.context = context
        self.for_fallback = for_fallback
        self._urls: dict[tuple, str] = {}
        self._url_auth = any(get_auth_from_url(self.base_url))
        parts = urlsplit(self.base_url)
        self.host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | BodyStream | None = None,
        params: Params | None = None,
        stream: bool = False,
        fallback: bool = True,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        owned: tuple[str, ...] = (),
        key_id: str | None = None,
        creates: bool = False,
    ) -> Served:
        """Send one call, choosing keys and retrying as the policy says; returns a 2xx answer.

        The model is read from the path (`/v1beta/models/{model}:{action}`); when every key rests
        for it, a generate call moves to the next model of its MODEL_FALLBACKS chain (unless
        `fallback` is False). Raises a GatewayError subclass once the failure is the caller's or
        the retry budget is spent. With stream=True only the status and headers have been read.

        `headers` add to or replace the defaults (the key's header excepted). A call that is not
        `idempotent` (it may create something) is tried again only when Gemini surely did nothing:
        a connection that never opened, a 429, a refused key. `owned` are resources the path names
        (`files/abc`): the call goes to the key that holds them, and only if the current client
        created them through the gateway (else NotFound, and nothing is sent). `key_id` sends the
        call with that key alone. A `body` that is a stream is sent as it is read, and never again
        once a byte of it has gone. A call that `creates` a resource naming none goes to the key that
        holds the client's latest ones while that key is healthy, so that a client's resources can be
        used together (a project cannot read another project's files).
        """
        started = perf_counter()
        tally = _Tally()
        try:
            return self._request(
                method,
                path,
                body,
                params,
                stream,
                fallback,
                headers,
                idempotent,
                owned,
                key_id,
                creates,
                tally,
            )
        except GatewayError as err:
            err.attempts = tally.sent  # the record counts the calls a failure took too
            raise
        finally:
            self.on_wait(perf_counter() - started)

    def _request(
        self, method, path, body, params, stream, fallback, headers, idempotent, owned, key_id, creates, tally
    ) -> Served:
        call = model_call(path)
        model = call[0] if call else None
        client, hint = self.context()
        resources = tuple(dict.fromkeys(owned + named_resources(body if isinstance(body, bytes) else None)))
        session_ttl = None
        if creates and not resources:
            hint, session_ttl = CREATIONS, self.config.resource_affinity_ttl
        route = Route(
            client=client,
            session=session_name(client, hint) if hint else None,
            session_ttl=session_ttl,
            resources=tuple(resource_name(r) for r in resources),
            required=tuple(resource_name(r) for r in owned),
        )
        if key_id is not None:
            if self.pool.key_by_id(key_id) is None:
                raise UpstreamNotConfigured("The upstream key this call is bound to has left the pool.")
            route = Route(
                client=client,
                owner=Affinity(key_id, client, float("inf")),
                owned=owned[0] if owned else "this upload",
                looked_up=True,
            )
        models: tuple[str | None, ...] = (model,)
        cached = any(r.startswith("cachedContents/") for r in resources)  # bound to its model
        if fallback and call and call[1] in GENERATE_ACTIONS and not cached:
            models += self.fallbacks.get(call[0], ())
        call_options = _Call(method, body, params, stream, headers, idempotent)
        first: GatewayError | None = None
        spent = 0  # attempts on the models before this one
        for i, candidate in enumerate(models):
            target, sent = path, call_options
            if i > 0 and candidate is not None:
                target = with_model(path, candidate)
                if isinstance(body, bytes):
                    sent = replace(call_options, body=self.for_fallback(body, candidate))
            try:
                return self._attempts(sent, target, candidate, route, spent, tally)
            except _Exhausted as exhausted:
                spent = exhausted.attempts
                error = exhausted.error
                if first is None:
                    first = error
                elif error.retry_after is not None:
                    first.retry_after = min(first.retry_after or error.retry_after, error.retry_after)
            except UpstreamError as error:
                # A fallback model that refuses the request (say, a setting only the first model
                # knows) does not serve it: the answer is the first model's exhaustion.
                if first is None or not 400 <= error.status < 500:
                    raise
                raise first from None
        assert first is not None
        raise first

    def _attempts(self, call: _Call, path, model, route: Route, spent: int, tally: _Tally) -> Served:
        method, body, params, stream = call.method, call.body, call.params, call.stream
        read_timeout = self.config.stream_idle_timeout if stream else self.config.request_timeout
        timeout = (self.config.connect_timeout, read_timeout)
        transient = 0
        last_error: GatewayError | None = None
        avoid: set[str] = set()
        other_key_once = True  # a 403 may be tried once on another key
        must_differ = False
        replayable = body is None or isinstance(body, bytes)
        sent_body = body if isinstance(body, bytes) else None  # what a quota's judgement may measure
        for attempt in range(1, self.max_attempts + 1):
            if last_error is not None and _sent_some(body):
                raise last_error  # the stream has gone (in part) already: nothing left to send again
            try:
                key = self._choose(model, avoid, route)
            except ModelExhausted as exhausted:
                raise _Exhausted(
                    _final(last_error, exhausted, self.pool, model), spent + attempt - 1
                ) from None
            except GatewayError as exhausted:
                raise _final(last_error, exhausted, self.pool, model) from None
            if must_differ and key.label in avoid:
                self.pool.release(route)
                assert last_error is not None
                raise last_error  # no other key to try the 403 on
            must_differ = False
            headers = {"Content-Type": "application/json" if replayable else "application/octet-stream"}
            if call.headers:
                headers.update(call.headers)
            headers["x-goog-api-key"] = key.secret
            if stream:
                headers["Accept-Encoding"] = "identity"  # decompression would buffer events
            tally.sent += 1
            try:
                response = self._send(method, path, body, params, headers, timeout, stream)
            except requests.Timeout as exc:
                last_error = UpstreamTimeout("Gemini did not answer in time.")
                reason = "timeout"
                self.on_attempt("timeout")
                if not call.idempotent and not isinstance(exc, requests.ConnectTimeout):
                    self.pool.failed(key, reason, route)
                    raise _body_error(body) or last_error from None
            except requests.RequestException as exc:
                cause = connection_failure(exc, self.host)
                log.warning("Gemini could not be reached (attempt %d, %s): %s", attempt, key.label, cause)
                last_error = UpstreamUnreachable(f"Could not reach Gemini: {cause}.")
                reason = "connection error"
                self.on_attempt("connection_error")
                if not call.idempotent and not _never_sent(exc):
                    self.pool.failed(key, reason, route)
                    raise _body_error(body) or last_error from None
            else:
                if response.status_code < 300:
                    self.on_attempt("ok")
                    self.pool.succeeded(key, model, route)
                    return Served(response, key, spent + attempt, model, path)
                error = self._error_from(response)
                judgement = judge(
                    response.status_code,
                    error.payload,
                    response.headers,
                    model=model,
                    now=self.pool.clock(),
                    rules=self.rules,
                    prompt_tokens=lambda: estimate_prompt_tokens(sent_body),
                )
                self.on_attempt(judgement.outcome)
                self.pool.judged(key, model, judgement, route)
                if judgement.fault is Fault.CALLER:
                    self._forget_gone(route, error)
                    if not (judgement.another_key and other_key_once and len(self.pool) > 1):
                        raise error
                    other_key_once, must_differ = False, True
                    avoid.add(key.label)
                    last_error = error
                    continue
                last_error = error
                if judgement.fault is not Fault.TRANSIENT:
                    continue  # the key or the pair rests: another key at once
                reason = judgement.reason
                if not call.idempotent:  # Gemini may have done it: never twice
                    self.pool.failed(key, reason, route)
                    raise error
            # Transient: Gemini's fault, not the key's. Back off, then prefer another key.
            self.pool.failed(key, reason, route)
            transient += 1
            if transient > self.config.upstream_retries:
                break
            avoid.add(key.label)
            time.sleep(backoff(transient, self.config.backoff_base, self.config.backoff_max))
        assert last_error is not None
        raise last_error

    def _forget_gone(self, route: Route, error: UpstreamError) -> None:
        """A resource the call went to its owner's key for, which Gemini says is gone (or never was
        there): a request-level error, and the record goes, so later calls are not sent to that
        key for it. The message must name it, unless it is the only resource the call names."""
        if route.owner is None or route.owned is None or not route.owned.startswith(RESOURCE_PREFIXES):
            return
        message = error.message
        named = route.owned.rsplit("/", 1)[-1] in message or len(route.resources) == 1
        gone = error.status == 403 and resource_refused(error.payload)
        gone = gone or (error.status == 404 and route.owned in _required(route))
        if gone and named:
            self.pool.forget_owner(route.owned)

    def _choose(self, model: str | None, avoid: set[str], route: Route) -> UpstreamKey:
        """The pool's choice; while the only keys left are being probed by other requests (back
        from a rest), wait a little for the probe's outcome rather than fail at once."""
        waited = 0.0
        pause = PROBE_POLL
        while True:
            try:
                return self.pool.choose(model, avoid, route)
            except ProbePending:
                if waited >= PROBE_WAIT:
                    raise
            time.sleep(pause)  # gevent's under gunicorn: the worker's other requests go on
            waited += pause
            pause = min(pause * 2, 1.0)

    def record_owner(
        self, resource: str, served: Served, *, ttl: float | None = None, note: str | None = None
    ) -> None:
        """Remember that the key that served the call holds `resource` (files/…, cachedContents/…),
        created by the current client, for `ttl` seconds (RESOURCE_AFFINITY_TTL when None): later
        calls that name it go to that key, and only for that client. For the routes that create
        resources."""
        client, _ = self.context()
        lifetime = self.config.resource_affinity_ttl if ttl is None else ttl
        self.pool.record_owner(resource, served.key, client, lifetime, note)

    def _send(self, method, path, body, params, headers, timeout, stream) -> requests.Response:
        """`session.request` without its per-call merging of settings fixed at start (about a
        tenth of a call's CPU): the same prepared request through the same adapter. No cookies
        and no redirects: Gemini uses neither, and a redirect must never carry the key away."""
        session = self.session
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.url = self._url(path, params)
        merged = CaseInsensitiveDict(session.headers)
        merged.update(headers)
        prepared.prepare_headers(merged)
        prepared.prepare_body(body, None)
        if self._url_auth:
            prepared.prepare_auth(None, prepared.url)
        response = session.get_adapter(prepared.url).send(
            prepared,
            stream=stream,
            timeout=timeout,
            verify=True if session.verify is None else session.verify,
            cert=session.cert,
            proxies=session.proxies,
        )
        if not stream:
            _ = response.content  # read now, as session.request does
        return response

    def _url(self, path: str, params: Params | None) -> str:
        """The encoded URL, as `PreparedRequest.prepare_url` makes it; cached, since a few paths
        and parameters repeat on every call."""
        key = (path, tuple(params.items()) if params else ())
        url = self._urls.get(key)
        if url is None:
            scratch = requests.PreparedRequest()
            scratch.prepare_url(self.base_url + path, params)
            url = str(scratch.url)
            if len(self._urls) >= 1024:  # model names vary; keep the cache bounded
                self._urls.clear()
            self._urls[key] = url
        return url

    def open_stream(self, path: str, body: bytes, params: Mapping[str, str] | None = None) -> UpstreamStream:
        served = self.request("POST", path, body=body, params=params, stream=True)
        if served.path != path and served.model is not None:  # a fallback model answered: reopen as sent
            body = self.for_fallback(body, served.model)
        return UpstreamStream(self, body, params, served)

    def _error_from(self, response: requests.Response) -> UpstreamError:
        try:
            raw = self.scrub(response.content[: 1 << 20])
        except _READ_ERRORS:
            raw = b""
        finally:
            response.close()
        try:
            payload = jsonx.loads(raw)
            if isinstance(payload, list) and payload and isinstance(payload[0], dict):
                payload = payload[0]  # the array form of non-SSE streaming errors
        except jsonx.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            payload = None
        return UpstreamError(
            response.status_code, payload, raw, retry_after=retry_delay(payload, response.headers)
        )


class UpstreamStream:
    """A Gemini SSE response, read event by event.

    If the connection fails before the first event, the call is sent again (another key) once
    per retry left: the client has seen nothing yet. After the first event a failure is raised
    as a GatewayError for the dialect to turn into an in-stream error event.
    """

    def __init__(self, client: UpstreamClient, body: bytes, params, served: Served):
        self.client = client
        self.path = served.path  # the model that answered: a reopened stream stays on it
        self.model = served.model
        self.body = body
        self.params = params
        self.response = served.response
        self.key = served.key
        self.attempts = served.attempts

    def events(self, heartbeat: float = 0.0) -> Iterator[bytes | Heartbeat]:
        """The `data` payload of each upstream event, as bytes; HEARTBEAT whenever Gemini has been silent
        for `heartbeat` seconds (0: never)."""
        reopens = self.client.config.upstream_retries
        started = False
        while True:
            decoder = SSEDecoder()
            try:
                for piece in read_pieces(self.response, heartbeat):
                    if piece is HEARTBEAT:
                        yield HEARTBEAT
                        continue
                    for event in decoder.feed(piece):  # type: ignore[arg-type]
                        started = True
                        yield self._clean(event)
                for event in decoder.close():
                    started = True
                    yield self._clean(event)
            except _READ_ERRORS as exc:
                self.response.close()
                if started or reopens <= 0:
                    raise _broken(exc) from None
                reopens -= 1
                served = self.client.request(
                    "POST", self.path, body=self.body, params=self.params, stream=True, fallback=False
                )
                self.response, self.key = served.response, served.key
                self.attempts += served.attempts
                continue
            if decoder.stray:
                raise self._stray_error(decoder.stray)
            return

    def close(self) -> None:
        self.response.close()

    def _clean(self, event: bytes) -> bytes:
        # An error object inside the stream is an error body like any other: no key may pass.
        return self.client.scrub(event) if b'"error"' in event else event

    def _stray_error(self, lines: list[bytes]) -> GatewayError:
        # Gemini may append a plain JSON error object after the events once the status is sent.
        raw = self.client.scrub(b"\n".join(lines))
        try:
            payload = jsonx.loads(raw)
        except jsonx.JSONDecodeError:
            return UpstreamUnavailable("Gemini sent a malformed stream.")
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            return UpstreamError(int(payload["error"].get("code") or 500), payload, raw)
        return UpstreamUnavailable("Gemini sent a malformed stream.")


def read_pieces(response: requests.Response, heartbeat: float = 0.0) -> Iterator[bytes | Heartbeat]:
    """Bytes as they arrive, without waiting to fill a buffer; HEARTBEAT whenever Gemini has been silent
    for `heartbeat` seconds (0: never). A silence as long as the call's read timeout is a TimeoutError."""
    raw = response.raw
    pieces = raw.read_chunked(decode_content=True) if raw.chunked else _read1s(raw)
    silence = Silence.of(response) if heartbeat > 0 else None
    if silence is None:
        return pieces
    return quiet_pieces(pieces, silence, heartbeat)


def _read1s(raw) -> Iterator[bytes]:
    while True:
        piece = raw.read1(65536)
        if not piece:
            return
        yield piece


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the connection failed before any of the request could reach Gemini."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError wraps what went wrong
    return isinstance(cause, urllib3.exceptions.NewConnectionError)


def _sent_some(body: bytes | BodyStream | None) -> bool:
    """Whether a streamed body has given some of its bytes already (they cannot be sent again)."""
    return body is not None and not isinstance(body, bytes) and body.consumed > 0


def _body_error(body: object) -> GatewayError | None:
    """Why a streamed body stopped, when it was the client's doing (not Gemini's)."""
    return getattr(body, "error", None)


def _required(route: Route) -> tuple[str, ...]:
    return tuple(name.removeprefix("r:") for name in route.required)


def _broken(exc: BaseException) -> GatewayError:
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        return UpstreamTimeout("Gemini went silent in the middle of the stream.")
    log.warning("the connection to Gemini broke in the middle of a stream: %s", type(exc).__name__)
    return UpstreamUnreachable("The connection to Gemini broke in the middle of the stream.")


def _final(
    last_error: GatewayError | None, exhausted: GatewayError, pool: KeyPool, model: str | None
) -> GatewayError:
    """The error to answer once no key is left to try."""
    if last_error is None:
        return exhausted
    if last_error.status == 429:  # Gemini's own answer, RetryInfo and all
        last_error.retry_after = pool.retry_after(model)
        return last_error
    # A key that was rejected says nothing to the client; a Gemini outage does.
    return last_error if last_error.status >= 500 else exhausted


def fallback_table(chains: tuple[tuple[str, ...], ...]) -> dict[str, tuple[str, ...]]:
    """Each model of MODEL_FALLBACKS and the models that follow it in its chain (the first chain
    that names a model wins)."""
    table: dict[str, tuple[str, ...]] = {}
    for chain in chains:
        for i, model in enumerate(chain[:-1]):
            table.setdefault(model, chain[i + 1 :])
    return table


def build_session(config: Config) -> requests.Session:
    """One pooled session per app, its proxy and TLS settings read once rather than on every call (the
    environment's CA variables are read into the Config: the session itself ignores the environment)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = config.ca_bundle or True  # for calls through a proxy: the adapter holds it otherwise
    adapter = GeminiAdapter(config.pool_size, config.ca_bundle)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if config.https_proxy:
        host = config.gemini_base_url.split("://", 1)[1].split("/", 1)[0]
        bypass = config.no_proxy and proxy_bypass_environment(host, {"no": config.no_proxy})
        if not bypass:
            session.proxies = {"https": config.https_proxy, "http": config.https_proxy}
    return session
