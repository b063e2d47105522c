"""Chat requests that pass the first checks but are odd inside: never a 5xx, always OpenAI's error shape."""

import json

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from tests.conftest import AUTH, BASE, fixture_bytes, make_env

LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.text(max_size=8)
    | st.just("data:image/png;base64,AA==")
)
JSON = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
URL = st.sampled_from(
    [
        "data:image/png;base64,AA==",
        "data:,x",
        "ftp://x",
        "",
        "https://generativelanguage.googleapis.com/v1beta/files/a",
        "data:image/png;base64,@@",
    ]
)
PART = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=8)),
    st.builds(lambda u: {"type": "image_url", "image_url": {"url": u}}, URL),
    st.builds(
        lambda d, f: {"type": "input_audio", "input_audio": {"data": d, "format": f}},
        st.sampled_from(["AA==", "data:x"]),
        JSON,
    ),
    st.builds(
        lambda f: {"type": "file", "file": f},
        st.fixed_dictionaries(
            {},
            optional={
                "file_data": st.sampled_from(["AA==", "data:application/pdf;base64,AA=="]),
                "file_id": st.text(max_size=8),
                "filename": st.text(max_size=8),
            },
        ),
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "refusal", "video"])},
        optional={"text": JSON, "refusal": JSON, "image_url": JSON},
    ),
    st.text(max_size=5),
)
CALL_ID = st.sampled_from(["call_1", "call_2", "call_" + "0" * 24 + "_eyJzIjoiYWJjIn0"])
CALL = st.fixed_dictionaries(
    {
        "id": CALL_ID,
        "function": st.fixed_dictionaries(
            {"name": st.sampled_from(["f", "g"])},
            optional={"arguments": st.sampled_from(["", "{}", '{"a": 1}', "[1]", "{"])},
        ),
    },
    optional={"type": st.sampled_from(["function", "custom"]), "extra_content": JSON},
)
CONTENT = st.text(max_size=10) | st.lists(PART, max_size=3) | st.none()
MESSAGE = st.one_of(
    st.builds(
        lambda r, c: {"role": r, "content": c},
        st.sampled_from(["system", "developer", "user", "assistant"]),
        CONTENT,
    ),
    st.builds(
        lambda c, calls: {"role": "assistant", "content": c, "tool_calls": calls},
        CONTENT,
        st.lists(CALL, max_size=3),
    ),
    st.builds(
        lambda i, c: {"role": "tool", "tool_call_id": i, "content": c}, CALL_ID | st.just("zz"), CONTENT
    ),
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"])},
        optional={
            "content": CONTENT,
            "tool_calls": st.lists(CALL, max_size=2),
            "tool_call_id": CALL_ID,
            "name": st.sampled_from(["f", "g"]),
            "function_call": st.just({"name": "f", "arguments": "{}"}),
        },
    ),
)
SCHEMA = st.one_of(
    JSON,
    st.just(
        {
            "type": "object",
            "properties": {"a": {"type": ["integer", "null"]}, "ref": {"$ref": "#/$defs/x"}},
            "$defs": {"x": {"const": 3}},
        }
    ),
)
TOOL = st.one_of(
    st.builds(
        lambda n, p: {"type": "function", "function": {"name": n, "parameters": p}},
        st.sampled_from(["f", "g"]),
        SCHEMA,
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["function", "custom"]) | JSON},
        optional={"function": st.fixed_dictionaries({"name": st.sampled_from(["f", "g"])})},
    ),
)
CHOICE = (
    st.sampled_from(
        [
            "auto",
            "none",
            "required",
            {"type": "function", "function": {"name": "f"}},
            {
                "type": "allowed_tools",
                "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "g"}}]},
            },
        ]
    )
    | JSON
)
FORMAT = (
    st.sampled_from(
        [
            {"type": "json_object"},
            {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
            {"type": "text"},
        ]
    )
    | JSON
)
GOOGLE = (
    st.builds(
        lambda g: {"google": g},
        st.fixed_dictionaries(
            {},
            optional={
                "thinking_config": st.fixed_dictionaries(
                    {}, optional={"thinking_budget": JSON, "include_thoughts": JSON, "thinking_level": JSON}
                ),
                "image_config": JSON,
                "cached_content": JSON,
                "safety_settings": JSON,
            },
        ),
    )
    | JSON
)
BODY = st.fixed_dictionaries(
    {
        "model": st.sampled_from(
            ["gemini-2.5-flash", "gemini-3-pro-preview(high)", "gemini-2.5-flash-preview-tts"]
        ),
        "messages": st.lists(MESSAGE, min_size=1, max_size=5),
    },
    optional={
        "tools": st.lists(TOOL, max_size=2),
        "tool_choice": CHOICE,
        "response_format": FORMAT,
        "extra_body": GOOGLE,
        "reasoning_effort": st.sampled_from(["low", "none", "xhigh", "max"]),
        "modalities": st.sampled_from([["text"], ["audio"], ["image"]]),
        "audio": st.fixed_dictionaries(
            {}, optional={"voice": JSON | st.just("alloy"), "format": st.sampled_from(["wav", "mp3", "x"])}
        ),
        "stream": st.booleans(),
        "n": st.integers(1, 3),
        "stop": st.text(max_size=3) | st.lists(st.text(max_size=3), max_size=2),
        "parallel_tool_calls": st.booleans(),
        "logprobs": st.booleans(),
        "web_search_options": JSON,
    },
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return create_app(make_env(DATA_DIR=str(tmp_path_factory.mktemp("data")))).test_client()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODY)
def test_odd_chat_requests_never_fail_with_5xx(client, body):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        for model in ("gemini-2.5-flash", "gemini-3-pro-preview", "gemini-2.5-flash-preview-tts"):
            mocked.post(
                f"{BASE}/v1beta/models/{model}:generateContent",
                body=fixture_bytes("gemini/generate_text.json"),
            )
            mocked.post(
                f"{BASE}/v1beta/models/{model}:streamGenerateContent",
                body=fixture_bytes("gemini/stream_text.sse"),
                content_type="text/event-stream",
            )
        r = client.post("/v1/chat/completions", json=body, headers=AUTH)
        data = r.get_data()
    assert r.status_code < 500, data
    if r.status_code >= 400:
        error = json.loads(data)["error"]
        assert set(error) == {"message", "type", "param", "code"}
    elif body.get("stream"):
        assert data.endswith(b"data: [DONE]\n\n") and b'"error"' not in data
