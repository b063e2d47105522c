"""gemgate: a Gemini API gateway that speaks the Gemini, OpenAI and Anthropic dialects."""
from __future__ import annotations

import logging
import uuid
from typing import Mapping

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import accounting, admin, anthropic, cors, errors, gemini, metrics, model_list, openai, openapi
from .accounting import RequestRecord
from .auth import ClientKeys, presented_key
from .config import Config, ConfigError
from .dialects import dialect_for
from .logs import RequestLog
from .metrics import MeteredKeyPool, MeteredUpstreamClient, Metrics
from .quotas import Quotas
from .services import Services, services
from .store import StoreUnavailable, open_store
from .upstream.catalog import ModelCatalog
from .upstream.client import Scrubber
from .usage import UsageSink

log = logging.getLogger(__name__)

# Routes without a client key: /metrics has its own optional token, /admin its own login.
PUBLIC_ENDPOINTS = frozenset(("healthz", "metrics", "openapi"))


def create_app(config: Config | Mapping[str, str] | None = None) -> Flask:
    """Build the gateway. `config` is a Config, a mapping of environment variables, or None
    to read the process environment."""
    if not isinstance(config, Config):
        config = Config.from_env(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    metrics.stamp_start(app)
    try:
        store = open_store(config)  # shared by every worker: SQLite in DATA_DIR, or Redis
    except StoreUnavailable as exc:
        raise ConfigError(f"the state store cannot be opened ({exc.detail}); check DATA_DIR") from None
    quotas = Quotas(config.client_keys, store)
    app.extensions["gemgate.store"] = store
    app.extensions["gemgate.quotas"] = quotas
    meter = Metrics()
    pool = MeteredKeyPool(
        config.gemini_api_keys, store, default_cooldown=config.key_cooldown, recheck_after=config.key_recheck,
        metrics=meter,
    )
    upstream = MeteredUpstreamClient(config, pool, meter)
    app.extensions["gemgate"] = Services(
        config=config,
        client_keys=ClientKeys(config.api_keys, config.client_keys),
        pool=pool,
        upstream=upstream,
        catalog=ModelCatalog(upstream, config.models_cache_ttl),
    )

    # Everything a request log line must never show, wherever it turns up in a body.
    secrets = config.gemini_api_keys + config.api_keys + tuple(
        s for s in (config.admin_password, config.metrics_token) if s)
    request_log = RequestLog(config.request_log, config.log_bodies, Scrubber(secrets))
    app.extensions["gemgate.request_log"] = request_log
    errors.init_app(app)
    accounting.init_app(app, _observed(UsageSink(store, quotas, config.usage_retention_days), meter, request_log))
    cors.init_app(app, config.cors_origins)  # its preflight answer comes before authentication
    app.before_request(_identify)
    app.after_request(_finish)
    app.add_url_rule("/healthz", "healthz", healthz)
    metrics.init_app(app, meter, config.metrics_token)
    openapi.init_app(app)
    admin.init_app(app, config)
    app.register_blueprint(model_list.bp)
    for dialect in (gemini, openai, anthropic):
        dialect.init_app(app)
    return app


def _observed(sink, meter: Metrics, request_log: RequestLog):
    """The accounting sink: the usage record, then the metrics and the request log line."""

    def finish(rec: RequestRecord) -> None:
        # The answer is already made: a failing hook is logged, never turned into a 500.
        for hook in (sink, meter.observe, request_log.record):
            try:
                hook(rec)
            except Exception:
                log.exception("finishing the record of %s failed in %s", rec.request_id, hook.__qualname__)

    return finish


def _identify():
    """Once per request: its id, its dialect (for errors) and, off the public routes, its client."""
    g.request_id = request_id = "req_" + uuid.uuid4().hex
    g.dialect = dialect = dialect_for(request.path, request.headers, request.args)
    if request.endpoint in PUBLIC_ENDPOINTS or admin.is_admin_path(request.path):
        return
    g.record = RequestRecord(request_id, dialect, request.path, started=metrics.started_at())
    g.record.client = services().client_keys.identify(presented_key(request.headers, request.args))
    current_app.extensions["gemgate.quotas"].admit(g.record)  # allowed models, and 429 when over a limit


def _finish(response):
    # A preflight is answered before _identify gives the request its id.
    response.headers["x-request-id"] = request_id = g.get("request_id") or "req_" + uuid.uuid4().hex
    total = metrics.elapsed_ms()
    waited = metrics.upstream_ms()
    overhead = max(0.0, total - waited)  # for a stream: up to its headers, which go now
    response.headers[metrics.OVERHEAD_HEADER] = f"{overhead:.2f}"
    extensions = current_app.extensions
    rec = g.get("record")
    if rec is None:
        extensions["gemgate.request_log"].other(metrics.started_at(), request_id, request.method, request.path,
                                                response.status_code, total, overhead)
        return response
    rec.method = request.method
    rec.route = metrics.route_label()
    rec.upstream_ms = waited
    rec.overhead_ms = overhead
    if extensions["gemgate.request_log"].bodies:
        _keep_bodies(rec, response, extensions["gemgate.request_log"])
    if getattr(response, "finishes_record", False):
        extensions["gemgate.metrics"].track_stream(response)  # the record ends with the body
    else:
        accounting.finish(rec, response.status_code, accounting.current_sink())
    return response


def _keep_bodies(rec: RequestRecord, response, request_log: RequestLog) -> None:
    """LOG_BODIES: the request's body and a whole answer's body, redacted, for the log line."""
    try:
        raw = request.get_data(cache=True)
    except HTTPException:  # a body over the limit, never read
        raw = b""
    rec.bodies = {"request_body": request_log.redacted(raw)}
    if not response.is_streamed and not response.direct_passthrough:
        rec.bodies["response_body"] = request_log.redacted(response.get_data())


def healthz():
    svc = services()
    store = current_app.extensions["gemgate.store"]
    try:
        keys = svc.pool.snapshot()
    except StoreUnavailable:
        return jsonify({"status": "unavailable", "store": store.backend,
                        "message": "The state store (SQLite in DATA_DIR, or REDIS_URL) is unavailable."}), 503
    body = {
        "status": "ok" if svc.config.upstream_configured else "degraded",
        "store": store.backend,
        "upstream_keys": {
            "total": len(keys),
            "healthy": sum(k["status"] == "healthy" for k in keys),
            "cooling": sum(k["status"] == "cooling" for k in keys),
            "disabled": sum(k["status"] == "disabled" for k in keys),
        },
    }
    if not svc.config.upstream_configured:
        body["message"] = "GEMINI_API_KEYS is not set: API calls answer 503 until it is."
    return jsonify(body)
