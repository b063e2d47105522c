"""What each request did: the record the dialects fill in and the sink it goes to when it ends."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from flask import Flask, current_app, g

from .quotas import check_model


@dataclass
class RequestRecord:
    request_id: str
    dialect: str
    endpoint: str
    started: float = field(default_factory=time.time)
    client: str | None = None  # the client key's name, never the key
    model: str | None = None
    stream: bool = False
    status: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0  # candidates, not counting thoughts
    thought_tokens: int = 0
    first_byte_ms: float | None = None
    total_ms: float | None = None
    attempts: int = 0
    key_label: str | None = None
    error: str | None = None  # the error kind when the call failed, mid-stream included
    # For the request log and metrics (app.logs, app.metrics); not usage columns.
    method: str = ""
    route: str | None = None  # the route rule, e.g. /v1beta/models/{model}:generateContent
    upstream_ms: float = 0.0  # waiting for Gemini, up to the response headers
    overhead_ms: float | None = None  # the gateway's own time, up to the response headers
    # The client key's allowed model patterns (None: any); app.quotas sets it. Not a field:
    # it is policy, not part of the record.
    allowed_models = None

    def __setattr__(self, name: str, value) -> None:
        object.__setattr__(self, name, value)
        # Every view sets `record().model` as soon as it knows the model: that assignment is
        # the one place the client key's allowed models are enforced (403, param 'model').
        if name == "model" and value is not None and self.allowed_models is not None:
            check_model(self.allowed_models, value)

    def served_by(self, response) -> None:
        """Note which upstream key served the call and how many attempts it took."""
        self.key_label = getattr(response, "key_label", None)
        self.attempts += getattr(response, "attempts", 0)

    def set_usage(self, usage: dict | None) -> None:
        """Take token counts from Gemini's usageMetadata (cumulative: the latest one wins)."""
        if isinstance(usage, dict):
            self.prompt_tokens = _int(usage.get("promptTokenCount"))
            self.completion_tokens = _int(usage.get("candidatesTokenCount"))
            self.thought_tokens = _int(usage.get("thoughtsTokenCount"))

    def first_byte(self) -> None:
        if self.first_byte_ms is None:
            self.first_byte_ms = (time.time() - self.started) * 1000

    def as_dict(self) -> dict:
        return asdict(self)


def _int(value) -> int:
    return value if isinstance(value, int) else 0


Sink = Callable[[RequestRecord], None]


def init_app(app: Flask, sink: Sink | None = None) -> None:
    app.extensions["gemgate.usage_sink"] = sink or (lambda record: None)


def record() -> RequestRecord:
    return g.record


def finish(rec: RequestRecord, status: int, sink: Sink) -> None:
    rec.status = status
    rec.total_ms = (time.time() - rec.started) * 1000
    if rec.first_byte_ms is None:
        rec.first_byte_ms = rec.total_ms
    sink(rec)


def current_sink() -> Sink:
    return current_app.extensions["gemgate.usage_sink"]
