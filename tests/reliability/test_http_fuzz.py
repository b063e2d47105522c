"""HTTP fuzzing of every route, in process: mutated bodies, raw bytes, odd headers, methods and paths.

Whatever comes in: no 5xx, no traceback, and every 4xx in the shape of the dialect the request speaks.
Gemini is answered by an in-memory adapter (no sockets), so the cases are cheap: FUZZ_CASES per route
group (default 800, so 10,400 cases in all; tests/test_fuzz.py adds its own on top).
"""

from __future__ import annotations

import functools
import json
import os
from unittest import mock
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from app.http.dialects import dialect_for
from app.state import state
from tests.conftest import BASE, CLIENT_KEY, make_env
from tests.reliability.gemini_memory import InMemoryGemini

pytestmark = pytest.mark.fuzz  # property-based: thousands of generated cases

CASES = int(os.environ.get("FUZZ_CASES", "800"))

TEXT = {"role": "user", "parts": [{"text": "hi"}]}
SEEDS = {
    "/v1beta/models/gemini-2.5-flash:generateContent": {
        "contents": [TEXT],
        "generationConfig": {"temperature": 1, "maxOutputTokens": 10},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}],
    },
    "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse": {
        "contents": [TEXT],
        "systemInstruction": TEXT,
    },
    "/v1/models/gemini-2.5-flash:streamGenerateContent": {"contents": [TEXT]},
    "/v1beta/models/gemini-2.5-flash:countTokens": {"contents": [TEXT]},
    "/v1beta/models/gemini-embedding-001:batchEmbedContents": {
        "requests": [{"model": "models/gemini-embedding-001", "content": TEXT, "outputDimensionality": 8}]
    },
    "/v1beta/models/imagen-4.0-generate-001:predict": {
        "instances": [{"prompt": "x"}],
        "parameters": {"sampleCount": 2},
    },
    "/v1/chat/completions": {
        "model": "gemini-2.5-flash",
        "stream": False,
        "max_tokens": 10,
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
                },
            }
        ],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
    },
    "/v1/embeddings": {"model": "gemini-embedding-001", "input": ["hi", "there"], "dimensions": 8},
    "/v1/images/generations": {
        "model": "imagen-4.0-generate-001",
        "prompt": "x",
        "n": 1,
        "size": "1024x1024",
    },
    "/v1/audio/speech": {
        "model": "gemini-2.5-flash-preview-tts",
        "input": "hi",
        "voice": "alloy",
        "response_format": "wav",
    },
    "/v1/messages": {
        "model": "gemini-2.5-flash",
        "max_tokens": 100,
        "stream": True,
        "system": [{"type": "text", "text": "brief"}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
        ],
        "tools": [
            {"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    },
    "/v1/messages/count_tokens": {
        "model": "gemini-2.5-flash",
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/responses": {
        "model": "gemini-2.5-flash",
        "stream": True,
        "store": False,
        "instructions": "be brief",
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "hi"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBORw0KGgo=",
                        "detail": "auto",
                    },
                ],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gg1.c2ln"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a": 1}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
            {"type": "custom_tool_call", "call_id": "call_2", "name": "patch", "input": "*** Begin Patch"},
            {
                "type": "custom_tool_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "done"}],
            },
            {"type": "compaction", "encrypted_content": "ggc1.eJxLTSzKyUwtUijPL8oGAB8CBMg"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "f",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
            },
            {
                "type": "custom",
                "name": "patch",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
            },
            {
                "type": "namespace",
                "name": "ns",
                "description": "d",
                "tools": [{"type": "function", "name": "g"}],
            },
            {"type": "web_search"},
        ],
        "tool_choice": "auto",
    },
    "/v1/responses/input_tokens": {"model": "gemini-2.5-flash", "input": "hi", "instructions": "x"},
    "/v1/responses/compact": {
        "model": "gemini-2.5-flash",
        "input": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    },
}
GET_PATHS = [
    "/v1/models",
    "/v1/models/gemini-2.5-flash",
    "/v1beta/models",
    "/v1beta/models/gemini-2.5-flash",
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/v1/models/models/gemini-2.5-flash",
    "/v1/responses/resp_0123",
    "/v1/responses/resp_0123/input_items",
]


def _no_dns(host, port):
    raise OSError("the fuzzer never resolves names")  # media URLs stay off the network


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    app = create_app(make_env(DATA_DIR=str(tmp_path_factory.mktemp("fuzz")), REQUEST_LOG="off"))
    with app.app_context():
        state().upstream.session.mount(BASE, InMemoryGemini())
    with mock.patch("app.translate.media._system_resolve", _no_dns):
        yield app.test_client()


# -- what comes in -------------------------------------------------------------------------------------

LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=16),
    st.sampled_from(
        ["", "x" * 5000, "data:image/png;base64,@@", "models/x", "🙂", "\u0000", "-1", "1e999", "true"]
    ),
)
JSON = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)


@st.composite
def mutated(draw, seed):
    """The seed with one to three edits: a subtree replaced, a key dropped or added, a value wrapped."""
    body = json.loads(json.dumps(seed))
    for _ in range(draw(st.integers(1, 2))):
        body = _edit(draw, body)
    return body


def _edit(draw, node):
    if not isinstance(node, (dict, list)) or not node or draw(st.integers(0, 4)) == 0:
        action = draw(st.sampled_from(["replace", "wrap", "deep"]))
        if action == "wrap":
            return draw(st.sampled_from([[node], {"value": node}]))
        if action == "deep":
            depth = draw(st.integers(1, 200))
            return json.loads("[" * depth + json.dumps(node) + "]" * depth)
        return draw(JSON)
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    key = draw(st.sampled_from(keys))
    copy = dict(node) if isinstance(node, dict) else list(node)
    action = draw(st.sampled_from(["descend", "descend", "drop", "add"]))
    if action == "drop":
        del copy[key]
    elif action == "add" and isinstance(copy, dict):
        copy[draw(st.text(max_size=10))] = draw(JSON)
    else:
        copy[key] = _edit(draw, node[key])
    return copy


RAW_BODIES = st.sampled_from(
    [
        b"",
        b" ",
        b"null",
        b"[]",
        b"42",
        b'"text"',
        b"{",
        b'{"a": }',
        b"{'single': 'quotes'}",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1e400}',
        b"\xef\xbb\xbf{}",
        b'{"a": "\xff\xfe"}',
        b'{"a": "\\ud800"}',
        '{"a": 1}'.encode("utf-16"),
        b'{"a": 1} trailing',
        b'{"a": 1}{"b": 2}',
        b"\x00" * 10,
        b'{"a": -0}',
        b'{"model": "m", "model": 5}',
        b'{"' + b"k" * 10000 + b'": 1}',
        b"[" * 10000 + b"]" * 10000,
        b'{"a": ' + b"9" * 5000 + b"}",
    ]
) | st.binary(max_size=64)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
        "application/vnd.api+json",
        "application/json; charset=latin-1",
    ]
)
AUTH = st.sampled_from(
    [
        {"Authorization": f"Bearer {CLIENT_KEY}"},
        {"x-api-key": CLIENT_KEY},
        {"x-goog-api-key": CLIENT_KEY},
        {},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {CLIENT_KEY}"},
        {"x-api-key": "wrong"},
        {"Authorization": "Bearer " + "k" * 5000},
        {"x-goog-api-key": "\u00e9t\u00e9"},
    ]
)
EXTRA_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "anthropic-version": st.sampled_from(["2023-06-01", "", "garbage"]),
        "anthropic-beta": st.text("abcdefgh-,0123456789", max_size=8),
        "Origin": st.sampled_from(["https://a.example", "null"]),
        "Accept": st.sampled_from(["*/*", "text/event-stream"]),
        "Accept-Encoding": st.sampled_from(["gzip", "identity"]),
    },
)
QUERY = st.sampled_from(
    [
        "",
        "?alt=sse",
        "?alt=json",
        "?key=" + CLIENT_KEY,
        "?key=wrong",
        "?pageSize=-1",
        "?pageSize=abc&pageToken=%00",
        "?limit=0",
        "?limit=5&after_id=x",
        "?before_id=zz&limit=1001",
        "?alt=sse&alt=json",
        "?%ZZ=1",
    ]
)
MODEL_IDS = st.sampled_from(
    [
        "gemini-2.5-flash",
        "",
        "..%2F..%2Fetc",
        "a" * 500,
        "gemini-2.5-flash:countTokens",
        "%F0%9F%99%82",
        "models%2Fgemini",
        "unknown-model",
        "x:y:z",
        "(high)",
    ]
)


@functools.cache
def request_for(path: str):
    """A strategy for one request to `path`'s route group."""
    seed = SEEDS[path]
    json_case = st.builds(
        lambda body, auth, extra: (
            "POST",
            path,
            json.dumps(body).encode(),
            "application/json",
            {**auth, **extra},
        ),
        mutated(seed),
        AUTH.filter(bool),
        EXTRA_HEADERS,
    )
    raw_case = st.builds(
        lambda body, ctype, auth: ("POST", path, body, ctype, auth), RAW_BODIES, CONTENT_TYPES, AUTH
    )
    header_case = st.builds(
        lambda ctype, auth, query, extra: (
            "POST",
            path.split("?")[0] + query,
            json.dumps(seed).encode(),
            ctype,
            {**auth, **extra},
        ),
        CONTENT_TYPES,
        AUTH,
        QUERY,
        EXTRA_HEADERS,
    )
    return st.one_of(json_case, json_case, json_case, raw_case, header_case)


OTHER = st.one_of(
    st.builds(
        lambda path, query, auth, extra: ("GET", path + query, b"", "", {**auth, **extra}),
        st.sampled_from(GET_PATHS)
        | MODEL_IDS.map(lambda m: f"/v1beta/models/{m}")
        | MODEL_IDS.map(lambda m: f"/v1/models/{m}"),
        QUERY,
        AUTH,
        EXTRA_HEADERS,
    ),
    st.builds(
        lambda method, path, auth: (method, path, b"{}", "application/json", auth),
        st.sampled_from(["PUT", "DELETE", "PATCH", "GET", "POST"]),
        st.sampled_from(
            list(SEEDS)
            + GET_PATHS
            + [
                "/",
                "/v2/chat",
                "/v1/messages/x",
                "/v1beta/files",
                "/v1/responses",
                "/admin",
                "/v1beta/models/m:unknownAction",
            ]
        ),
        AUTH,
    ),
    st.builds(
        lambda model, auth: (
            "POST",
            f"/v1beta/models/{model}",
            b'{"contents": []}',
            "application/json",
            auth,
        ),
        MODEL_IDS,
        AUTH,
    ),
)


# -- what must come out ------------------------------------------------------------------------------


def check(method: str, path: str, headers: dict, status: int, body: bytes, content_type: str) -> None:
    assert status < 500, (method, path, status, body[:300])
    assert b"Traceback" not in body and b"internal error" not in body, (method, path, body[:300])
    if status < 400 or method == "HEAD":
        return
    bare, _, query = path.partition("?")
    bare = unquote(bare)  # the server decides the dialect on the decoded path
    args = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    dialect = dialect_for(bare, {k.lower(): v for k, v in headers.items()}, args)
    error = json.loads(body)
    if dialect == "gemini":
        if isinstance(error, list):  # a non-SSE stream's errors come as an array, as Google sends them
            (error,) = error
        assert set(error["error"]) >= {"code", "message", "status"}, error
        assert error["error"]["code"] == status, (status, error)
    elif dialect == "anthropic":
        assert error["type"] == "error" and set(error["error"]) == {"type", "message"}, error
    else:
        assert set(error["error"]) == {"message", "type", "param", "code"}, error
    assert error is not None and "json" in content_type


FUZZ = settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def send(client, case):
    method, path, body, content_type, headers = case
    headers = dict(headers)
    if content_type:
        headers["Content-Type"] = content_type
    response = client.open(path, method=method, data=body, headers=headers)
    data = response.get_data()
    check(method, path, headers, response.status_code, data, response.content_type or "")


@pytest.mark.parametrize("path", list(SEEDS))
@FUZZ
@given(data=st.data())
def test_no_request_to_a_post_route_gets_a_5xx(fuzz_client, path, data):
    send(fuzz_client, data.draw(request_for(path)))


@FUZZ
@given(case=OTHER)
def test_no_get_other_method_or_unknown_path_gets_a_5xx(fuzz_client, case):
    send(fuzz_client, case)
