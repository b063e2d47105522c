"""Test helper: Gemini answered in memory by a requests adapter (no sockets), like the recorded fixtures."""

from __future__ import annotations

import io
import json
from collections import deque

import requests
import urllib3
from requests.adapters import BaseAdapter

from tests.conftest import fixture_bytes


def _gemini_answer(request: requests.PreparedRequest) -> tuple[bytes, str]:
    path = request.url.split("?")[0]
    if path.endswith(":streamGenerateContent"):
        return fixture_bytes("gemini/stream_text.sse"), "text/event-stream"
    for suffix, name in ((":countTokens", "count_tokens.json"), (":predict", "imagen_predict.json")):
        if path.endswith(suffix):
            return fixture_bytes(f"gemini/{name}"), "application/json"
    if path.endswith(":embedContent"):
        return b'{"embedding": {"values": [0.5, 0.25]}}', "application/json"
    if path.endswith(":batchEmbedContents"):
        count = len(json.loads(request.body).get("requests", []))
        return json.dumps({"embeddings": [{"values": [0.5, 0.25]}] * count}).encode(), "application/json"
    if "tts" in path:
        return fixture_bytes("gemini/tts.json"), "application/json"
    if path.endswith(":generateContent"):
        return fixture_bytes("gemini/generate_text.json"), "application/json"
    if "/models/" in path:
        return fixture_bytes("gemini/models_get.json"), "application/json"
    return fixture_bytes("gemini/models_list_page.json"), "application/json"


class InMemoryGemini(BaseAdapter):
    """Mount on the app's upstream session: `state().upstream.session.mount(BASE, InMemoryGemini())`.
    The latest requests it answered are kept in `requests`."""

    def __init__(self):
        super().__init__()
        self.requests: deque[requests.PreparedRequest] = deque(maxlen=100)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.requests.append(request)
        body, content_type = _gemini_answer(request)
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = content_type
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(body), preload_content=False, status=200, headers={"Content-Type": content_type}
        )
        response.url, response.request, response.connection = request.url, request, self
        return response

    def close(self) -> None:
        pass
