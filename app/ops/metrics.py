"""Prometheus metrics: what requests, upstream attempts and streams did, summed across workers, at /metrics."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from ..store import StoreUnavailable
from ..upstream.client import OUTCOMES
from ..upstream.key_pool import MODEL_KEY_STATES, KeyPool, model_health

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds. Streams may last minutes; the gateway's own time is a few milliseconds.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
KEY_STATES = ("healthy", "cooling", "disabled")

TOKEN_TYPES = ("prompt", "completion", "thought")
# Model names are chosen by clients: a name becomes a label only once Gemini has served it, and
# only so many per worker; the rest are counted as "other".
MAX_MODEL_LABELS = 100
_MODEL_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,79}$")


class Metrics:
    """The gateway's metrics. Under gunicorn (PROMETHEUS_MULTIPROC_DIR set by gunicorn.conf.py)
    every worker writes its values to files there and a scrape of any worker sums them all;
    elsewhere (tests, a single process) they live in this object's own registry."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        reg: dict[str, Any] = {"registry": self.registry}
        self.requests = Counter(
            "gemgate_requests",
            "API requests answered, by route and final status",
            ("dialect", "endpoint", "model", "status"),
            **reg,
        )
        self.duration = Histogram(
            "gemgate_request_duration_seconds",
            "Whole request time, to the last byte of a stream",
            ("dialect", "endpoint"),
            buckets=LATENCY_BUCKETS,
            **reg,
        )
        self.first_byte = Histogram(
            "gemgate_first_byte_seconds",
            "Time to the first byte of the answer (a stream's first event)",
            ("dialect", "endpoint"),
            buckets=LATENCY_BUCKETS,
            **reg,
        )
        self.overhead = Histogram(
            "gemgate_overhead_seconds",
            "Time spent in the gateway itself up to the response headers, upstream excluded",
            ("dialect", "endpoint"),
            buckets=OVERHEAD_BUCKETS,
            **reg,
        )
        self.tokens = Counter(
            "gemgate_tokens",
            "Tokens by model and client key name",
            ("dialect", "model", "client", "type"),
            **reg,
        )
        self.errors = Counter(
            "gemgate_request_errors",
            "Requests that failed, mid-stream included, by error kind",
            ("dialect", "kind"),
            **reg,
        )
        self.attempts = Counter(
            "gemgate_upstream_attempts", "Calls to Gemini by outcome (retries included)", ("outcome",), **reg
        )
        self.active_streams = Gauge(
            "gemgate_active_streams", "Streams being answered now", multiprocess_mode="livesum", **reg
        )
        self._attempt = {outcome: self.attempts.labels(outcome) for outcome in OUTCOMES}
        self._children: dict[tuple, tuple] = {}
        self._token_children: dict[tuple, tuple] = {}
        self._models: set[str] = set()

    # -- recording --------------------------------------------------------------------------
    def observe(self, rec) -> None:
        """Count one finished API request (an accounting.RequestRecord)."""
        model = self.model_label(rec.model, rec.status)
        key = (rec.dialect, rec.route or "unmatched", model, str(rec.status))
        children = self._children.get(key)
        if children is None:  # bound once per label set: labels() validates and locks each time
            dialect, endpoint = key[0], key[1]
            children = self._children[key] = (
                self.requests.labels(*key),
                self.duration.labels(dialect, endpoint),
                self.first_byte.labels(dialect, endpoint),
                self.overhead.labels(dialect, endpoint),
            )
        requests, duration, first_byte, overhead = children
        requests.inc()
        duration.observe((rec.total_ms or 0.0) / 1000)
        first_byte.observe((rec.first_byte_ms or 0.0) / 1000)
        if rec.overhead_ms is not None:
            overhead.observe(rec.overhead_ms / 1000)
        if rec.prompt_tokens or rec.completion_tokens or rec.thought_tokens:
            token_key = (rec.dialect, model, rec.client or "")
            tokens = self._token_children.get(token_key)
            if tokens is None:
                tokens = self._token_children[token_key] = tuple(
                    self.tokens.labels(*token_key, kind) for kind in TOKEN_TYPES
                )
            for child, count in zip(
                tokens, (rec.prompt_tokens, rec.completion_tokens, rec.thought_tokens), strict=True
            ):
                if count:
                    child.inc(count)
        if rec.error:
            self.errors.labels(rec.dialect, rec.error).inc()

    def model_label(self, model: str | None, status: int) -> str:
        if not model:
            return ""
        if model in self._models:
            return model
        if status < 400 and len(self._models) < MAX_MODEL_LABELS and _MODEL_LABEL.match(model):
            self._models.add(model)
            return model
        return "other"

    def attempt(self, outcome: str) -> None:
        """Count one upstream attempt by what it came to (upstream.client.OUTCOMES)."""
        self._attempt[outcome].inc()

    def track_stream(self, response: Response) -> None:
        """Count the stream as active until the server closes its body, however it ends."""
        self.active_streams.inc()
        response.response = _ClosingBody(response.response, self.active_streams.dec)

    # -- exposition ---------------------------------------------------------------------------
    def exposition(self, pool: KeyPool, accept: str | None) -> tuple[bytes, str]:
        """The metrics of every worker, in the format the scraper accepts, and its content type."""
        registry = CollectorRegistry(auto_describe=False)
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry)
        else:
            assert self.registry is not None
            registry.register(_Collected(self.registry))
        registry.register(_KeyStates(pool))
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type


class _ClosingBody:
    """A response body that calls `on_close` once when the WSGI server closes it."""

    def __init__(self, body: Iterable, on_close: Callable[[], None]):
        self.body = body
        self.on_close: Callable[[], None] | None = on_close

    def __iter__(self):
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            on_close, self.on_close = self.on_close, None
            if on_close is not None:
                on_close()


class _Collected:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


class _KeyStates:
    """Upstream key health, read from the shared store at scrape time (the same from any worker)."""

    def __init__(self, pool: KeyPool):
        self.pool = pool

    def collect(self):
        try:
            keys = self.pool.snapshot()
        except StoreUnavailable:
            return  # the scrape still answers; the missing series say the store is away
        counts = GaugeMetricFamily("gemgate_upstream_keys", "Upstream keys by state", labels=("state",))
        each = GaugeMetricFamily(
            "gemgate_upstream_key_state", "1 for each upstream key's current state", labels=("key", "state")
        )
        for state in KEY_STATES:
            counts.add_metric((state,), sum(k["status"] == state for k in keys))
        for key in keys:
            for state in KEY_STATES:
                each.add_metric((key["label"], state), 1 if key["status"] == state else 0)
        yield counts
        yield each
        # Only the models some key rests for (as many as model labels may be): the others are healthy.
        per_model = GaugeMetricFamily(
            "gemgate_upstream_model_keys",
            "Upstream keys by state for each model some key is resting for",
            labels=("model", "state"),
        )
        for model, states in sorted(model_health(keys).items())[:MAX_MODEL_LABELS]:
            for state in MODEL_KEY_STATES:
                per_model.add_metric((model, state), states[state])
        yield per_model


# -- GET /metrics ----------------------------------------------------------------------------


def init_app(app: Flask, metrics: Metrics, pool: KeyPool, token: str | None) -> None:
    """Serve the metrics at /metrics: open, or only with `Authorization: Bearer <METRICS_TOKEN>`."""
    expected = hashlib.sha256(token.encode()).digest() if token else None

    def view():
        if expected is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            digest = hashlib.sha256(given.strip().encode("utf-8", "surrogatepass")).digest()
            if scheme.lower() != "bearer" or not hmac.compare_digest(digest, expected):
                return Response(
                    "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>\n",
                    401,
                    {"WWW-Authenticate": 'Bearer realm="metrics"'},
                    mimetype="text/plain",
                )
        body, content_type = metrics.exposition(pool, request.headers.get("Accept"))
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})

    app.add_url_rule("/metrics", "metrics", view, methods=["GET"])
