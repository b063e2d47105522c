"""gemgate: a Gemini API gateway that speaks the Gemini, OpenAI and Anthropic dialects."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from . import admin, anthropic, errors, gemini, openai
from .config import Config, ConfigError
from .config.runtime import LiveSettings
from .errors import GatewayError
from .gemini.uploads import is_session_request
from .http import cors, files_route, models_route, timing
from .http.auth import ClientKeys, presented_key
from .http.body import discard_body, read_body
from .http.dialects import dialect_for
from .http.peers import TrustedProxies
from .http.routes import route_label
from .http.shutdown import current_owner
from .http.streaming import StreamedResponse
from .ops import health, metrics, openapi
from .ops.metrics import Metrics
from .ops.request_log import RequestLog
from .state import AppState, state
from .store import StoreUnavailable, open_store
from .translate import thinking
from .upstream import affinity
from .upstream.client import Scrubber, UpstreamClient
from .upstream.key_pool import KeyPool
from .upstream.model_catalog import ModelCatalog
from .usage.quotas import Quotas
from .usage.record import RequestRecord, Sink, begin, finish
from .usage.sink import UsageSink

log = logging.getLogger(__name__)

# Routes without a client key: /metrics has its own optional token, /admin its own login.
PUBLIC_ENDPOINTS = frozenset(("healthz", "metrics", "openapi"))
MODEL_HEADER = "x-gemgate-model"


def create_app(config: Config | Mapping[str, str] | None = None) -> Flask:
    """Build the gateway. `config` is a Config, a mapping of environment variables, or None
    to read the process environment."""
    if not isinstance(config, Config):
        config = Config.from_env(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    timing.stamp_start(app)
    try:
        store = open_store(config)  # shared by every worker: SQLite in DATA_DIR, or Redis
    except StoreUnavailable as exc:
        raise ConfigError(f"the state store cannot be opened ({exc.detail}); check DATA_DIR") from None
    quotas = Quotas(config.client_keys, store, reserved_output_tokens=config.reserved_output_tokens)
    meter = Metrics()
    pool = KeyPool(
        config.gemini_api_keys,
        store,
        default_cooldown=config.key_cooldown,
        recheck_after=config.key_recheck,
        session_ttl=config.session_affinity_ttl,
    )
    upstream = UpstreamClient(
        config,
        pool,
        on_attempt=meter.attempt,
        on_wait=timing.add_upstream_wait,
        context=affinity.current,
        for_fallback=thinking.for_fallback,
    )
    # Everything a request log line must never show, wherever it turns up in a body.
    secrets = (
        config.gemini_api_keys
        + config.api_keys
        + tuple(s for s in (config.admin_password, config.metrics_token) if s)
    )
    request_log = RequestLog(config.request_log, config.log_bodies, Scrubber(secrets))
    app_state = AppState(
        config=config,
        store=store,
        client_keys=ClientKeys(config.api_keys, config.client_keys),
        quotas=quotas,
        pool=pool,
        upstream=upstream,
        catalog=ModelCatalog(upstream, config.models_cache_ttl),
        metrics=meter,
        request_log=request_log,
        finish=_observed(UsageSink(store, quotas, config.usage_retention_days), meter, request_log),
        settings=LiveSettings(config, store),
        proxies=TrustedProxies(config.forwarded_allow_ips),
    )
    app_state.install(app)
    errors.init_app(app, app_state.renderers)
    cors.init_app(app, config.cors_origins)  # its preflight answer comes before authentication
    app.before_request(_identify)
    app.after_request(_finish)
    app.teardown_request(_cut_short)
    app.teardown_request(_drain_body)
    health.init_app(app)
    metrics.init_app(app, meter, pool, config.metrics_token)
    openapi.init_app(app)
    admin.init_app(app, config)
    models_route.init_app(app)
    files_route.init_app(app)
    for dialect in (gemini, openai, anthropic):
        dialect.init_app(app)
    return app


def _observed(sink: Sink, meter: Metrics, request_log: RequestLog) -> Sink:
    """The accounting sink: the usage record, then the metrics and the request log line."""

    def finish_record(rec: RequestRecord) -> None:
        # The answer is already made: a failing hook is logged, never turned into a 500.
        for hook in (sink, meter.observe, request_log.record):
            try:
                hook(rec)
            except Exception:
                log.exception("finishing the record of %s failed in %s", rec.request_id, hook.__qualname__)

    return finish_record


def _identify():
    """Once per request: its id, its dialect (for errors) and, off the public routes, its client."""
    g.request_id = request_id = "req_" + uuid.uuid4().hex
    g.dialect = dialect = dialect_for(request.path, request.headers, request.args)
    if request.endpoint in PUBLIC_ENDPOINTS or admin.is_admin_path(request.path):
        return
    app_state = state()
    g.record = RequestRecord(request_id, dialect, request.path, started=timing.started_at())
    begin(g.record, current_owner())
    if is_session_request(request):
        return  # an upload URL the gateway handed out: its session names the client (app.gemini.uploads)
    g.record.client = app_state.client_keys.identify(presented_key(request.headers, request.args))
    app_state.quotas.admit(g.record)  # allowed models, and 429 when over a limit


def _finish(response):
    # A preflight is answered before _identify gives the request its id.
    response.headers["x-request-id"] = request_id = g.get("request_id") or "req_" + uuid.uuid4().hex
    total = timing.elapsed_ms()
    waited = timing.upstream_ms()
    overhead = max(0.0, total - waited)  # for a stream: up to its headers, which go now
    response.headers[timing.OVERHEAD_HEADER] = f"{overhead:.2f}"
    app_state = state()
    rec = g.get("record")
    if rec is None:
        app_state.request_log.other(
            timing.started_at(),
            request_id,
            request.method,
            request.path,
            response.status_code,
            total,
            overhead,
        )
        return response
    if rec.served_model:
        response.headers[MODEL_HEADER] = rec.served_model  # a fallback model, or the one asked for
    rec.method = request.method
    rec.route = route_label()
    rec.upstream_ms = waited
    rec.overhead_ms = overhead
    if app_state.request_log.enabled and app_state.settings.current().log_bodies:
        _keep_bodies(rec, response, app_state.request_log)
    if isinstance(response, StreamedResponse):
        app_state.metrics.track_stream(response)  # the record ends with the body
    else:
        finish(rec, response.status_code, app_state.finish)
    return response


def _cut_short(error: BaseException | None) -> None:
    """A request whose after_request never ran (the worker killed it) still ends in its record."""
    rec = g.get("record")
    if rec is None or rec.finished or rec.ends_with_body:  # a streamed body ends its own record
        return
    rec.error = rec.error or "interrupted"
    rec.method = request.method
    rec.route = route_label()
    try:
        finish(rec, 503, state().finish)
    except Exception:
        log.exception("finishing the record of %s failed", rec.request_id)


def _drain_body(error: BaseException | None) -> None:
    if request.content_length or "Transfer-Encoding" in request.headers:
        discard_body()  # what the answer did not need, within the body's deadline


def _keep_bodies(rec: RequestRecord, response, request_log: RequestLog) -> None:
    """LOG_BODIES: the request's body and a whole answer's body, redacted, for the log line."""
    try:
        raw = b"" if g.get("body_streamed") else read_body()
    except (HTTPException, GatewayError):  # a body over the limit or past its deadline, never read
        raw = b""
    rec.bodies = {"request_body": request_log.redacted(raw)}
    if not response.is_streamed and not response.direct_passthrough:
        rec.bodies["response_body"] = request_log.redacted(response.get_data())
