"""`GET /healthz`: whether the gateway can serve, and its upstream keys' health per key and per model."""

from __future__ import annotations

from flask import Flask, jsonify

from ..state import state
from ..store import StoreUnavailable
from ..upstream.key_pool import model_health


def healthz():
    app_state = state()
    try:
        keys = app_state.pool.snapshot()
    except StoreUnavailable:
        return jsonify(
            {
                "status": "unavailable",
                "store": app_state.store.backend,
                "message": "The state store (SQLite in DATA_DIR, or REDIS_URL) is unavailable.",
            }
        ), 503
    configured = app_state.config.upstream_configured
    body = {
        "status": "ok" if configured else "degraded",
        "store": app_state.store.backend,
        "upstream_keys": {
            "total": len(keys),
            "healthy": sum(k["status"] == "healthy" for k in keys),
            "cooling": sum(k["status"] == "cooling" for k in keys),
            "disabled": sum(k["status"] == "disabled" for k in keys),
            # Models some key rests for (cooling, disabled, or denied by a 403): keys in each state.
            "models": model_health(keys),
        },
    }
    if not configured:
        body["message"] = "GEMINI_API_KEYS is not set: API calls answer 503 until it is."
    return jsonify(body)


def init_app(app: Flask) -> None:
    app.add_url_rule("/healthz", "healthz", healthz)
