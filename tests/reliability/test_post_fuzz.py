"""Property-based HTTP fuzzing of every POST route: whatever the body, no 5xx, and every error in the
caller's dialect shape. Gemini is mocked with plausible answers, so accepted requests run the whole path."""

import json
import os
import re

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from tests.conftest import AUTH, BASE, fixture_bytes, make_env

pytestmark = pytest.mark.fuzz  # property-based: thousands of generated cases

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)

TEXT = {"role": "user", "parts": [{"text": "hi"}]}
SEEDS = {
    "/v1beta/models/gemini-2.5-flash:generateContent": {
        "contents": [TEXT],
        "generationConfig": {"temperature": 1},
    },
    "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse": {"contents": [TEXT]},
    "/v1beta/models/gemini-2.5-flash:countTokens": {"contents": [TEXT]},
    "/v1beta/models/gemini-embedding-001:embedContent": {"content": TEXT},
    "/v1beta/models/gemini-embedding-001:batchEmbedContents": {
        "requests": [{"model": "models/gemini-embedding-001", "content": TEXT}]
    },
    "/v1beta/models/imagen-4.0-generate-001:predict": {
        "instances": [{"prompt": "x"}],
        "parameters": {"sampleCount": 1},
    },
    "/v1/chat/completions": {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/embeddings": {"model": "gemini-embedding-001", "input": "hi"},
    "/v1/images/generations": {"model": "imagen-4.0-generate-001", "prompt": "x"},
    "/v1/audio/speech": {"model": "gemini-2.5-flash-preview-tts", "input": "hi", "voice": "alloy"},
    "/v1/messages": {
        "model": "gemini-2.5-flash",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/messages/count_tokens": {
        "model": "gemini-2.5-flash",
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/responses": {"model": "gemini-2.5-flash", "input": [{"role": "user", "content": "hi"}]},
    "/v1/responses/input_tokens": {"model": "gemini-2.5-flash", "input": "hi"},
    "/v1/responses/compact": {"model": "gemini-2.5-flash", "input": "hi"},
}


def upstream_answer(request):
    path = request.url.split("?")[0]
    if path.endswith(":streamGenerateContent"):
        return 200, {"Content-Type": "text/event-stream"}, fixture_bytes("gemini/stream_text.sse")
    if path.endswith(":countTokens"):
        return 200, {}, fixture_bytes("gemini/count_tokens.json")
    if path.endswith(":embedContent"):
        return 200, {}, b'{"embedding": {"values": [0.5, 0.25]}}'
    if path.endswith(":batchEmbedContents"):
        count = len(json.loads(request.body).get("requests", []))
        return 200, {}, json.dumps({"embeddings": [{"values": [0.5, 0.25]}] * count}).encode()
    if path.endswith(":predict"):
        return 200, {}, fixture_bytes("gemini/imagen_predict.json")
    if "tts" in path:
        return 200, {}, fixture_bytes("gemini/tts.json")
    if path.endswith(":generateContent"):
        return 200, {}, fixture_bytes("gemini/generate_text.json")
    return 200, {}, fixture_bytes("gemini/models_list_page.json")


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    app = create_app(make_env(DATA_DIR=str(tmp_path_factory.mktemp("fuzz"))))
    routes = {r.rule for r in app.url_map.iter_rules() if "POST" in r.methods}
    return app.test_client(), routes


def served(routes: set[str], path: str) -> bool:
    bare = path.split("?")[0]
    return bare in routes or (bare.startswith(("/v1beta/models/", "/v1/models/")) and ":" in bare)


def assert_dialect_shape(path: str, status: int, body: bytes):
    assert status < 500 or status in (502, 503, 504, 529), (status, body[:300])
    if status < 400:
        return
    error = json.loads(body)
    if path.startswith("/v1beta/"):
        assert set(error["error"]) >= {"code", "message", "status"} and error["error"]["code"] == status
    elif path.startswith("/v1/messages"):
        assert error["type"] == "error" and set(error["error"]) == {"type", "message"}
    else:
        assert set(error["error"]) == {"message", "type", "param", "code"}


def mutate(seed, data):
    """Replace one random subtree of the seed with arbitrary JSON."""
    if not isinstance(seed, (dict, list)) or not seed or data.draw(st.booleans()):
        return data.draw(JSON)
    keys = list(seed) if isinstance(seed, dict) else list(range(len(seed)))
    key = data.draw(st.sampled_from(keys))
    copy = dict(seed) if isinstance(seed, dict) else list(seed)
    copy[key] = mutate(seed[key], data)
    return copy


@pytest.mark.parametrize("path", list(SEEDS))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_body_breaks_a_route(fuzz_client, path, data):
    client, routes = fuzz_client
    assert served(routes, path), f"{path} is not served"
    body = mutate(SEEDS[path], data)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.POST, re.compile(re.escape(BASE) + ".*"), callback=upstream_answer)
        mocked.add_callback(responses.GET, re.compile(re.escape(BASE) + ".*"), callback=upstream_answer)
        r = client.post(path, data=json.dumps(body), content_type="application/json", headers=AUTH)
        payload = r.get_data()
    assert_dialect_shape(path, r.status_code, payload)
