"""What each request did: the record the dialects fill in and the sink it goes to when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import g

from ..translate.usage import token_counts
from .limits import check_model


class ServedBy(Protocol):
    """What served a call: the upstream key (its label is recorded), the attempts, the model that answered."""

    @property
    def key(self) -> Any: ...

    @property
    def attempts(self) -> int: ...

    @property
    def model(self) -> str | None: ...


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
    served_model: str | None = None  # the model that answered: `model`, or a fallback of it
    error: str | None = None  # the error kind when the call failed, mid-stream included
    # For the request log and metrics (app.logs, app.metrics); not usage columns.
    method: str = ""
    route: str | None = None  # the route rule, e.g. /v1beta/models/{model}:generateContent
    upstream_ms: float = 0.0  # waiting for Gemini, up to the response headers
    overhead_ms: float | None = None  # the gateway's own time, up to the response headers
    bodies: dict | None = None  # LOG_BODIES: the redacted request and answer, for the request log
    # The client key's allowed model patterns (None: any), bound at admission (usage.quotas).
    allowed_models: Sequence[str] | None = field(default=None, repr=False)
    finished: bool = False  # its one record has gone to the sink
    # Its response is a streamed body that finishes this record when it ends (http.streaming): a
    # stream, or a whole answer sent after whitespace (NONSTREAM_KEEPALIVE).
    ends_with_body: bool = False
    # What it holds against its client's limits until it ends (usage.quotas): a token estimate, and when
    # it was added; a concurrency slot.
    reserved: int = 0
    reserved_at: float = 0.0
    holds_slot: bool = False
    # What serves the request (its greenlet under gevent), so a stopping worker can end it (http.shutdown).
    owner: object | None = field(default=None, repr=False)

    def use_model(self, model: str) -> None:
        """The model this request calls: each view names it as soon as it knows it, and this is
        where the client key's allowed models are enforced (403, param 'model'). A refused model
        is kept, so the usage record says what was refused."""
        self.model = model
        if self.allowed_models is not None:
            check_model(self.allowed_models, model)

    def served_by(self, served: ServedBy) -> None:
        """Note which upstream key and model served the call and how many attempts it took."""
        self.key_label = served.key.label
        self.served_model = served.model
        self.attempts += served.attempts

    def set_usage(self, usage: dict | None) -> None:
        """Take token counts from Gemini's usageMetadata (cumulative: the latest one wins)."""
        if isinstance(usage, dict):
            counts = token_counts(usage)
            self.prompt_tokens = counts.input
            self.completion_tokens = counts.candidates
            self.thought_tokens = counts.thoughts

    def first_byte(self) -> None:
        if self.first_byte_ms is None:
            self.first_byte_ms = (time.time() - self.started) * 1000


Sink = Callable[[RequestRecord], None]

# The records of the requests this process is serving, by request id: each leaves when it is finished.
_UNFINISHED: dict[str, RequestRecord] = {}


def begin(rec: RequestRecord, owner: object | None = None) -> None:
    """Count the request as running until its record is finished."""
    rec.owner = owner
    _UNFINISHED[rec.request_id] = rec


def unfinished() -> list[RequestRecord]:
    return list(_UNFINISHED.values())


def record() -> RequestRecord:
    """The current request's record."""
    return g.record


def finish(rec: RequestRecord, status: int, sink: Sink) -> None:
    """Send the record to the sink: once, whichever of the ways a request can end gets here first."""
    if rec.finished:
        return
    rec.finished = True
    _UNFINISHED.pop(rec.request_id, None)
    rec.status = status
    rec.total_ms = (time.time() - rec.started) * 1000
    if rec.first_byte_ms is None:
        rec.first_byte_ms = rec.total_ms
    sink(rec)
