"""The per-request budget (app/budget.py): a request just over each bound is refused with a 400 in its
dialect's shape, naming the field, in well under a second, and nothing reaches Gemini; just under, it
is served. Gemini is mocked (`responses`): a refused request that reached it would fail the test."""

from __future__ import annotations

import base64
import gc
import http.server
import json
import socket
import threading
import time
from unittest import mock

import pytest
import urllib3.util.connection

from app import budget, create_app
from app.state import state, state_of
from tests.conftest import BASE, CLIENT_KEY, fixture_bytes, make_env
from tests.reliability.gemini_memory import InMemoryGemini

OPENAI = {"Authorization": f"Bearer {CLIENT_KEY}"}
ANTHROPIC = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
GEMINI = {"x-goog-api-key": CLIENT_KEY}
MODEL = "gemini-2.5-flash"
GEN = f"/v1beta/models/{MODEL}:generateContent"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
NATIVE = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
FAST = 0.5  # seconds of the gateway's CPU: "well under a second", whatever else the machine is running


@pytest.fixture
def client(tmp_path):
    app = create_app(make_env(DATA_DIR=str(tmp_path / "data"), REQUEST_LOG="off"))
    return app.test_client()


def answered(mocked, times: int = 1) -> None:
    """Gemini answers `times` generate calls (a `responses` mock that must fire)."""
    for _ in range(times):
        mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))


def refused(response, dialect: str, param: str | None = None, status: int = 400) -> str:
    """The error message of a refusal in `dialect`'s shape, naming `param`."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.get_json()
    if dialect == "gemini":
        error = body["error"]
        assert error["code"] == status and error["status"] == "INVALID_ARGUMENT"
        if param:
            assert error["details"][0]["fieldViolations"][0]["field"] == param, error
        return error["message"]
    if dialect == "openai":
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
        assert error["param"] == param, error
        return error["message"]
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    if param:
        assert param in body["error"]["message"], body
    return body["error"]["message"]


def timed(client, path: str, body: dict, headers: dict):
    """POST `body`, serialised beforehand: the CPU time measured is the gateway's own (the test client
    runs it in this thread), so a busy machine does not count against it, nor does the garbage of
    earlier tests."""
    data = json.dumps(body).encode()
    gc.collect()  # a full collection of what earlier tests left is not this request's work
    gc.disable()
    try:
        started = time.thread_time()
        response = client.post(path, data=data, headers={**headers, "Content-Type": "application/json"})
        spent = time.thread_time() - started
    finally:
        gc.enable()
    assert spent < FAST, f"took {spent:.2f} s of CPU"
    return response


def nested(levels: int, leaf: object = 1) -> object:
    """A value `levels` containers deep (a list of a list ... of `leaf`)."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


# -- JSON nesting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dialect, path, headers, body",
    [
        ("gemini", GEN, GEMINI, NATIVE),
        ("openai", "/v1/chat/completions", OPENAI, CHAT),
        ("anthropic", "/v1/messages", ANTHROPIC, MESSAGE),
    ],
)
def test_a_body_nested_just_past_the_limit_is_a_400_in_every_dialect(
    client, mocked, dialect, path, headers, body
):
    # The body is one level; the lists in "x" make it MAX_JSON_DEPTH + 1 in all.
    too_deep = {**body, "x": nested(budget.MAX_JSON_DEPTH)}
    message = refused(timed(client, path, too_deep, headers), dialect)
    assert f"more than {budget.MAX_JSON_DEPTH} levels" in message
    # Deeper than the JSON encoder can write: a 400 too, never a 500.
    refused(client.post(path, json={**body, "x": nested(400)}, headers=headers), dialect)
    assert not mocked.calls


def test_a_body_at_the_depth_limit_is_served(client, mocked):
    answered(mocked)
    response = client.post(GEN, json={**NATIVE, "x": nested(budget.MAX_JSON_DEPTH - 1)}, headers=GEMINI)
    assert response.status_code == 200
    sent = json.loads(mocked.calls[0].request.body)
    assert sent["x"] == nested(budget.MAX_JSON_DEPTH - 1)


def tool_call_history(arguments: str, tool_result: str) -> dict:
    return {
        "model": MODEL,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": tool_result},
        ],
    }


def test_tool_call_arguments_nested_too_deep_are_a_400(client, mocked):
    arguments = json.dumps({"a": nested(budget.MAX_JSON_DEPTH)})
    response = timed(client, "/v1/chat/completions", tool_call_history(arguments, "ok"), OPENAI)
    message = refused(response, "openai", "messages[1].tool_calls[0].function.arguments")
    assert "levels deep" in message
    assert not mocked.calls


def test_a_tool_result_nested_too_deep_goes_on_as_text(client, mocked):
    answered(mocked, 2)
    fine = json.dumps({"a": nested(10)})
    deep = json.dumps({"a": nested(budget.MAX_JSON_DEPTH)})
    for result in (fine, deep):
        response = client.post("/v1/chat/completions", json=tool_call_history("{}", result), headers=OPENAI)
        assert response.status_code == 200, response.get_data(as_text=True)
    responses = [
        json.loads(call.request.body)["contents"][2]["parts"][0]["functionResponse"]["response"]
        for call in mocked.calls
    ]
    assert responses == [{"a": nested(10)}, {"result": deep}]


# -- model names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dialect, path, headers, body",
    [
        ("openai", "/v1/chat/completions", OPENAI, CHAT),
        ("anthropic", "/v1/messages", ANTHROPIC, MESSAGE),
        ("anthropic", "/v1/messages/count_tokens", ANTHROPIC, {"model": MODEL, "messages": CHAT["messages"]}),
    ],
)
def test_a_model_name_just_over_the_limit_is_a_400(client, mocked, dialect, path, headers, body):
    name = "gemini-2.5-flash-" + "x" * (budget.MAX_MODEL_NAME - len("gemini-2.5-flash-") + 1)
    assert len(name) == budget.MAX_MODEL_NAME + 1
    message = refused(timed(client, path, {**body, "model": name}, headers), dialect, "model")
    assert f"longer than {budget.MAX_MODEL_NAME}" in message
    # A directive repeated 400,000 times used to be parsed one suffix at a time, for seconds.
    flood = {**body, "model": "gemini-2.5-flash" + "-high" * 400_000}
    refused(timed(client, path, flood, headers), dialect, "model")
    assert not mocked.calls


# -- stop sequences -----------------------------------------------------------------------------------


def test_stop_sequences_past_their_bounds_are_a_400(client, mocked):
    many = [f"stop{i}" for i in range(budget.MAX_STOP_SEQUENCES + 1)]
    response = timed(client, "/v1/messages", {**MESSAGE, "stop_sequences": many}, ANTHROPIC)
    assert f"At most {budget.MAX_STOP_SEQUENCES} stop sequences" in refused(
        response, "anthropic", "stop_sequences"
    )
    long = ["END", "x" * (budget.MAX_STOP_SEQUENCE_LENGTH + 1)]
    response = client.post("/v1/messages", json={**MESSAGE, "stop_sequences": long}, headers=ANTHROPIC)
    refused(response, "anthropic", "stop_sequences[1]")
    assert not mocked.calls


def test_stop_sequences_at_their_bounds_are_served_and_scanned_quickly(client, mocked):
    stream = f"/v1beta/models/{MODEL}:streamGenerateContent"
    text = "a" * 4000
    events = b"".join(
        b"data: "
        + json.dumps({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}}]}).encode()
        + b"\r\n\r\n"
        for _ in range(50)
    )
    last = {"candidates": [{"content": {"parts": [{"text": "."}], "role": "model"}, "finishReason": "STOP"}]}
    events += b"data: " + json.dumps(last).encode() + b"\r\n\r\n"
    mocked.post(BASE + stream, body=events, content_type="text/event-stream")
    # The costliest sequences to hold back: a long run of the text's own letter that never completes.
    sequences = [
        "a" * (budget.MAX_STOP_SEQUENCE_LENGTH - 1) + str(i % 10) for i in range(budget.MAX_STOP_SEQUENCES)
    ]
    started = time.thread_time()
    response = client.post(
        "/v1/messages", json={**MESSAGE, "stream": True, "stop_sequences": sequences}, headers=ANTHROPIC
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "message_stop" in body
    assert time.thread_time() - started < 1.0  # the gateway's own CPU


# -- schemas ------------------------------------------------------------------------------------------


def ref_bomb(levels: int = 16, description: int = 200) -> dict:
    """A small schema whose $refs, inlined, double at each level."""
    defs = {
        f"d{i}": {
            "type": "object",
            "description": "x" * description,
            "properties": {"a": {"$ref": f"#/$defs/d{i + 1}"}, "b": {"$ref": f"#/$defs/d{i + 1}"}},
        }
        for i in range(levels)
    }
    defs[f"d{levels}"] = {"type": "string", "description": "leaf"}
    return {"type": "object", "properties": {"root": {"$ref": "#/$defs/d0"}}, "$defs": defs}


def wide(outer: int, inner: int) -> dict:
    """`outer` properties, each a $ref to one object of `inner` properties: 1 + outer * (inner + 2) nodes
    once inlined, from a small body."""
    return {
        "type": "object",
        "properties": {f"p{i}": {"$ref": "#/$defs/item"} for i in range(outer)},
        "$defs": {
            "item": {"type": "object", "properties": {f"q{j}": {"type": "string"} for j in range(inner)}}
        },
    }


def openai_tools(*schemas: dict) -> dict:
    tools = [
        {"type": "function", "function": {"name": f"f{i}", "parameters": s}} for i, s in enumerate(schemas)
    ]
    return {**CHAT, "tools": tools}


def anthropic_tools(*schemas: dict) -> dict:
    return {**MESSAGE, "tools": [{"name": f"f{i}", "input_schema": s} for i, s in enumerate(schemas)]}


def test_a_ref_bomb_is_a_400_before_it_grows(client, mocked):
    bomb = ref_bomb()
    assert len(json.dumps(bomb)) < 8000  # inlined in full, it would be about 13 MB
    response = timed(client, "/v1/chat/completions", openai_tools(bomb), OPENAI)
    assert "too large once their $refs are inlined" in refused(
        response, "openai", "tools[0].function.parameters"
    )
    response = timed(client, "/v1/messages", anthropic_tools(bomb), ANTHROPIC)
    refused(response, "anthropic", "tools[0].input_schema")
    schema_format = {**MESSAGE, "output_config": {"format": {"type": "json_schema", "schema": bomb}}}
    response = timed(client, "/v1/messages", schema_format, ANTHROPIC)
    refused(response, "anthropic", "output_config.format.schema")
    assert not mocked.calls


def test_the_schema_budget_holds_across_the_whole_request(client, mocked):
    # Each schema alone is within the bound (10,101 nodes); together they pass it.
    half = wide(100, 99)
    response = timed(client, "/v1/chat/completions", openai_tools(half, half), OPENAI)
    refused(response, "openai", "tools[1].function.parameters")
    response = timed(client, "/v1/messages", anthropic_tools(half, half), ANTHROPIC)
    refused(response, "anthropic", "tools[1].input_schema")
    assert not mocked.calls
    answered(mocked)
    under = wide(100, 97)  # 9,901 nodes each
    response = client.post("/v1/chat/completions", json=openai_tools(under, under), headers=OPENAI)
    assert response.status_code == 200


def test_schema_text_counts_against_the_budget(client, mocked):
    wordy = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string", "description": "d" * 1000} for i in range(600)},
    }
    assert len(json.dumps(wordy)) < budget.MAX_SCHEMA_BYTES
    response = client.post("/v1/chat/completions", json=openai_tools(wordy, wordy), headers=OPENAI)
    refused(response, "openai", "tools[1].function.parameters")
    assert not mocked.calls


# -- linear scans -------------------------------------------------------------------------------------


def test_markdown_images_in_history_are_found_in_linear_time(client, mocked):
    answered(mocked)
    image = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
    # A run of `![` before a link that is not an image: a regex trying each `![` rescans the whole run.
    content = "![" * 40_000 + "](data:image/png;base64,not base64)\n" + f"![x](data:image/png;base64,{image})"
    body = {
        "model": MODEL,
        "messages": [
            {"role": "user", "content": "draw"},
            {"role": "assistant", "content": content},
            {"role": "user", "content": "again"},
        ],
    }
    response = timed(client, "/v1/chat/completions", body, OPENAI)
    assert response.status_code == 200
    parts = json.loads(mocked.calls[0].request.body)["contents"][1]["parts"]
    assert parts == [
        {"text": "![" * 40_000 + "](data:image/png;base64,not base64)"},
        {"inlineData": {"mimeType": "image/png", "data": image}},
    ]


# -- embeddings ---------------------------------------------------------------------------------------


def test_embeddings_inputs_past_the_limit_are_a_400(client, mocked):
    body = {"model": "text-embedding-3-small", "input": ["x"] * (budget.MAX_EMBEDDING_INPUTS + 1)}
    response = timed(client, "/v1/embeddings", body, OPENAI)
    assert f"At most {budget.MAX_EMBEDDING_INPUTS} inputs" in refused(response, "openai", "input")
    assert not mocked.calls


# -- media URLs ---------------------------------------------------------------------------------------

PUBLIC_IP = "93.184.216.34"  # connections to it go to the local server instead
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
BIG = 3 * 1024 * 1024


class Files(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        Files.hits.append(self.path)
        body = PNG + b"\x00" * (BIG - len(PNG)) if self.path.startswith("/big") else PNG
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fetching(client):
    """The client, with Gemini in memory and http://public.example/ served by a local server (the only
    address a fetch reaches)."""
    gemini = InMemoryGemini()
    with client.application.app_context():
        state().upstream.session.mount(BASE, gemini)
    client.gemini = gemini
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    real_connect = urllib3.util.connection.create_connection
    Files.hits = []

    def resolve(host, port_):
        if host != "public.example":
            raise socket.gaierror(host)
        return [PUBLIC_IP]

    def connect(address, *args, **kwargs):
        assert address[0] == PUBLIC_IP, address
        return real_connect(("127.0.0.1", port), *args, **kwargs)

    with (
        mock.patch("app.translate.media._system_resolve", resolve),
        mock.patch("urllib3.util.connection.create_connection", connect),
    ):
        yield client
    server.shutdown()
    server.server_close()


def with_images(dialect: str, urls: list[str]) -> dict:
    if dialect == "openai":
        parts = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
        return {
            "model": MODEL,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, *parts]}],
        }
    blocks = [{"type": "image", "source": {"type": "url", "url": url}} for url in urls]
    return {**MESSAGE, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, *blocks]}]}


def url_param(dialect: str, index: int) -> str:
    """The field of the `index`th content part (the first is the text)."""
    return f"messages[0].content[{index}]." + ("image_url.url" if dialect == "openai" else "source.url")


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_media_urls_past_the_count_are_a_400(fetching, dialect):
    path, headers = ("/v1/chat/completions", OPENAI) if dialect == "openai" else ("/v1/messages", ANTHROPIC)
    urls = [f"http://public.example/img{i}.png" for i in range(budget.MAX_MEDIA_URLS + 1)]
    response = timed(fetching, path, with_images(dialect, urls), headers)
    assert "different URLs" in refused(response, dialect, url_param(dialect, len(urls)))
    assert len(Files.hits) == budget.MAX_MEDIA_URLS  # the one over the count was never fetched
    assert not fetching.gemini.requests


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_one_url_repeated_is_fetched_once_and_every_use_counts(fetching, dialect):
    path, headers = ("/v1/chat/completions", OPENAI) if dialect == "openai" else ("/v1/messages", ANTHROPIC)
    uses = budget.MAX_MEDIA_BYTES // BIG + 1  # 7 copies of 3 MB: over the 20 MB a request may bring
    response = timed(fetching, path, with_images(dialect, ["http://public.example/big.png"] * uses), headers)
    assert "more than" in refused(response, dialect, url_param(dialect, uses))
    assert Files.hits == ["/big.png"]
    assert not fetching.gemini.requests
    # Under the bytes: each use goes to Gemini, from the one fetch.
    Files.hits.clear()
    response = fetching.post(
        path, json=with_images(dialect, ["http://public.example/img.png"] * 5), headers=headers
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert Files.hits == ["/img.png"]
    parts = json.loads(fetching.gemini.requests[-1].body)["contents"][0]["parts"]
    assert sum("inlineData" in p for p in parts) == 5


# -- the debug request log ------------------------------------------------------------------------------


def test_log_bodies_redacts_any_nesting_without_failing(tmp_path, mocked):
    log = tmp_path / "requests.log"
    app = create_app(make_env(DATA_DIR=str(tmp_path / "data"), REQUEST_LOG=str(log), LOG_BODIES="true"))
    client = app.test_client()
    deep = b'{"contents": [], "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = client.post(GEN, data=deep, headers={**GEMINI, "Content-Type": "application/json"})
    refused(response, "gemini")
    answered(mocked)
    response = client.post(GEN, json={**NATIVE, "x": nested(budget.MAX_JSON_DEPTH - 1)}, headers=GEMINI)
    assert response.status_code == 200
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["status"] == 400 and "nested more than" in json.dumps(first["request_body"])
    assert second["status"] == 200 and second["request_body"]["contents"] == NATIVE["contents"]
    assert len(list(state_of(app).store.usage(0, 2e9))) == 2
