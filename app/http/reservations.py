"""The hook each view calls once it knows its request: its estimated tokens held against its client's
limits (and its extra upstream calls counted) before Gemini is called."""

from __future__ import annotations

from flask import request

from ..state import state
from ..usage.record import record


def reserve(output_tokens: int | None = None, *, calls: int = 1) -> None:
    """`output_tokens` is the request's own output cap (None: it names none), `calls` the upstream
    calls it will make; 429 in the caller's dialect when a limit has no room (see usage.quotas)."""
    state().quotas.reserve(
        record(), output_tokens=output_tokens, input_bytes=len(request.get_data(cache=True)), calls=calls
    )
