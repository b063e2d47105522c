"""Gemini's model list, fetched from upstream and cached briefly."""

from __future__ import annotations

import re
import threading
import time

from .. import jsonx
from ..errors import InvalidRequest, UpstreamUnavailable
from .client import UpstreamClient

_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


def model_id(name: object, param: str = "model") -> str:
    """A bare Gemini model id (`models/` prefix dropped), safe to put in an upstream path."""
    if isinstance(name, str):
        name = name.removeprefix("models/")
        if _MODEL_ID.match(name):
            return name
    raise InvalidRequest(f"Invalid model name {name!r}.", param=param)


class ModelCatalog:
    def __init__(self, client: UpstreamClient, ttl: float):
        self.client = client
        self.ttl = ttl
        self._cache: dict[tuple, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def page(self, version: str, page_size: str | None = None, page_token: str | None = None) -> dict:
        params = {k: v for k, v in (("pageSize", page_size), ("pageToken", page_token)) if v}
        return self._cached(("page", version, page_size, page_token), f"/{version}/models", params)

    def get(self, version: str, model: str) -> dict:
        return self._cached(("get", version, model), f"/{version}/models/{model}", None)

    def all(self) -> list[dict]:
        """Every model, following page tokens (bounded, in case upstream loops)."""
        models: list[dict] = []
        token = None
        for _ in range(20):
            page = self.page("v1beta", "1000", token)
            models.extend(m for m in page.get("models", []) if isinstance(m, dict))
            token = page.get("nextPageToken")
            if not token:
                break
        return models

    def _cached(self, key: tuple, path: str, params: dict | None) -> dict:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        response = self.client.request("GET", path, params=params)
        try:
            data = jsonx.loads(response.content)
        except jsonx.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamUnavailable("Gemini sent a malformed model list.")
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = (now + self.ttl, data)
        return data
