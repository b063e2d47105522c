"""gemgate: a Gemini API gateway that speaks the Gemini, OpenAI and Anthropic dialects."""
from __future__ import annotations

import uuid
from typing import Mapping

from flask import Flask, current_app, g, jsonify, request

from . import accounting, anthropic, cors, errors, gemini, model_list, openai
from .accounting import RequestRecord
from .auth import ClientKeys, presented_key
from .config import Config, ConfigError
from .dialects import dialect_for
from .quotas import Quotas
from .services import Services, services
from .store import StoreUnavailable, open_store
from .upstream.catalog import ModelCatalog
from .upstream.client import UpstreamClient
from .upstream.key_pool import KeyPool
from .usage import UsageSink

PUBLIC_ENDPOINTS = {"healthz", None}  # None: no route matched; 404 after auth below


def create_app(config: Config | Mapping[str, str] | None = None) -> Flask:
    """Build the gateway. `config` is a Config, a mapping of environment variables, or None
    to read the process environment."""
    if not isinstance(config, Config):
        config = Config.from_env(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    try:
        store = open_store(config)  # shared by every worker: SQLite in DATA_DIR, or Redis
    except StoreUnavailable as exc:
        raise ConfigError(f"the state store cannot be opened ({exc.detail}); check DATA_DIR") from None
    quotas = Quotas(config.client_keys, store)
    app.extensions["gemgate.store"] = store
    app.extensions["gemgate.quotas"] = quotas
    pool = KeyPool(
        config.gemini_api_keys, store, default_cooldown=config.key_cooldown, recheck_after=config.key_recheck
    )
    upstream = UpstreamClient(config, pool)
    app.extensions["gemgate"] = Services(
        config=config,
        client_keys=ClientKeys(config.api_keys, config.client_keys),
        pool=pool,
        upstream=upstream,
        catalog=ModelCatalog(upstream, config.models_cache_ttl),
    )

    errors.init_app(app)
    accounting.init_app(app, UsageSink(store, quotas, config.usage_retention_days))
    cors.init_app(app, config.cors_origins)  # its preflight answer comes before authentication
    app.before_request(_identify)
    app.after_request(_finish)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.register_blueprint(model_list.bp)
    for dialect in (gemini, openai, anthropic):
        dialect.init_app(app)
    return app


def _identify():
    """Once per request: its id, its dialect (for errors) and, off the public routes, its client."""
    g.request_id = request_id = "req_" + uuid.uuid4().hex
    g.dialect = dialect = dialect_for(request.path, request.headers, request.args)
    if request.endpoint == "healthz":
        return
    g.record = RequestRecord(request_id, dialect, request.path)
    g.record.client = services().client_keys.identify(presented_key(request.headers, request.args))
    current_app.extensions["gemgate.quotas"].admit(g.record)  # allowed models, and 429 when over a limit


def _finish(response):
    response.headers["x-request-id"] = g.get("request_id", "")
    rec = g.get("record")
    if rec is not None and not getattr(response, "finishes_record", False):
        accounting.finish(rec, response.status_code, accounting.current_sink())
    return response


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
