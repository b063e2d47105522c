"""Every bound on the work one request may cause before Gemini is called, in one place (README: Reliability).

A request over a bound is refused with a 400 (413 for the body's size) in its dialect, naming the field,
before the work is done: no client can hold a worker, or memory, for long with a small request.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any, TypeVar, cast

from .errors import InvalidRequest

F = TypeVar("F", bound=Callable[..., Any])

# Nesting levels of a request body, and of JSON a client nests in a string (OpenAI tool-call arguments,
# tool results): well under the 254 levels the JSON encoder writes, so a request the gateway accepts
# can always be sent on.
MAX_JSON_DEPTH = 128

# Characters of a model name (names are about 40; directive suffixes are parsed one by one).
MAX_MODEL_NAME = 256

# Anthropic stop sequences, which the gateway applies itself to every chunk of the answer (Gemini takes
# 5 and would not say which one matched): how many, and how long each may be.
MAX_STOP_SEQUENCES = 16
MAX_STOP_SEQUENCE_LENGTH = 256

# Tool and response JSON schemas converted for Gemini, over the whole request, once their $refs are
# inlined: the nodes produced, and the bytes of text they carry (descriptions, names, enums, patterns).
MAX_SCHEMA_NODES = 20_000
MAX_SCHEMA_BYTES = 1024 * 1024
MAX_SCHEMA_DEPTH = 40  # deeper parts of one schema are sent as "any value"

# Image and document URLs the gateway fetches for one request: distinct URLs (a URL repeated is fetched
# once), the size of each, and the bytes of fetched data sent on (each use counts: a repeated URL is
# sent again each time). Each fetch also has a deadline and a redirect limit.
MAX_MEDIA_URLS = 16
MAX_MEDIA_URL_BYTES = 20 * 1024 * 1024
MAX_MEDIA_BYTES = 20 * 1024 * 1024
MEDIA_FETCH_TIMEOUT = 10.0
MAX_MEDIA_REDIRECTS = 3

# Inputs of one OpenAI embeddings request (OpenAI's own limit); they go to Gemini 100 per call.
MAX_EMBEDDING_INPUTS = 2048

# Debug request log (LOG_BODIES): bytes of a body looked at, and characters of one string kept.
LOG_BODY_BYTES = 64 * 1024
LOG_STRING_CHARS = 2000


class Budget:
    """What one request has spent on schemas and fetched media so far; `per_request` gives each request
    (each call of a translator's entry point) one, shared by everything it converts and fetches."""

    def __init__(self) -> None:
        self.schema_nodes = 0
        self.schema_bytes = 0
        self.media: dict[str, dict] = {}  # URL -> its inlineData: a URL used twice is fetched once
        self.media_bytes = 0

    def schema(self, nodes: int, size: int, param: str | None) -> None:
        """Count schema nodes produced and the bytes of text they carry; 400 past either bound."""
        self.schema_nodes += nodes
        self.schema_bytes += size
        if self.schema_nodes > MAX_SCHEMA_NODES or self.schema_bytes > MAX_SCHEMA_BYTES:
            raise InvalidRequest(
                f"The request's JSON schemas are too large once their $refs are inlined (over "
                f"{MAX_SCHEMA_NODES} nodes or {MAX_SCHEMA_BYTES} bytes in all).",
                param=param,
            )

    def fetched(self, url: str, param: str, fetch: Callable[[int], dict]) -> dict:
        """The inlineData of `url`, from `fetch(max_bytes)` the first time; 400 past MAX_MEDIA_URLS
        distinct URLs or MAX_MEDIA_BYTES of data in all (each use counts)."""
        found = self.media.get(url)
        left = MAX_MEDIA_BYTES - self.media_bytes
        if found is None:
            if len(self.media) >= MAX_MEDIA_URLS:
                raise InvalidRequest(
                    f"At most {MAX_MEDIA_URLS} different URLs are fetched for one request.", param=param
                )
            if left <= 0:
                raise _too_much_media(param)
            found = self.media[url] = fetch(min(MAX_MEDIA_URL_BYTES, left))
        size = len(found["data"]) * 3 // 4  # base64: the bytes it carries
        if size > left:
            raise _too_much_media(param)
        self.media_bytes += size
        return dict(found)


def _too_much_media(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"The files fetched for this request come to more than {MAX_MEDIA_BYTES} bytes "
        "(a URL used twice counts twice).",
        param=param,
    )


_CURRENT: ContextVar[Budget | None] = ContextVar("gemgate_budget", default=None)


def current() -> Budget:
    """The budget of the request being translated; outside `per_request`, a fresh one."""
    return _CURRENT.get() or Budget()


def per_request(translate: F) -> F:
    """Decorates a translator's entry point: the schemas and URLs of one call share one Budget (a call
    made inside another shares the outer one)."""

    @wraps(translate)
    def within_budget(*args, **kwargs):
        if _CURRENT.get() is not None:
            return translate(*args, **kwargs)
        token = _CURRENT.set(Budget())
        try:
            return translate(*args, **kwargs)
        finally:
            _CURRENT.reset(token)

    return cast(F, within_budget)
