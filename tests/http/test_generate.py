"""The generate step shared by the dialects, through the Flask test client with Gemini mocked: fake
streaming, whitespace before slow whole answers, botched tool calls asked for again, cut streams."""

import json
import time

import pytest

from app import create_app
from app.state import state_of
from tests.anthropic.grammar import check_grammar, parse_events
from tests.conftest import AUTH, BASE, fixture_bytes, fixture_json, make_env

GENERATE = BASE + "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = BASE + "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
USER = [{"role": "user", "content": "Hello"}]
STREAMS = {
    "openai": ("/v1/chat/completions", {"model": "gemini-2.5-flash", "messages": USER, "stream": True}),
    "anthropic": (
        "/v1/messages",
        {"model": "gemini-2.5-flash", "max_tokens": 50, "messages": USER, "stream": True},
    ),
    "gemini": (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        {"contents": [{"parts": [{"text": "Hello"}]}]},
    ),
}
BOTCHED = {
    "candidates": [
        {
            "content": {"parts": [], "role": "model"},
            "finishReason": "MALFORMED_FUNCTION_CALL",
            "finishMessage": "Malformed function call: print(default_api.f(x=))",
            "index": 0,
        }
    ]
}


def gateway(tmp_path, **env):
    app = create_app(make_env(DATA_DIR=str(tmp_path), REQUEST_LOG="off", **env))
    records: list = []
    state_of(app).finish = records.append
    return app.test_client(), records


def slowly(seconds: float, body: bytes | dict, status: int = 200):
    """A `responses` callback: Gemini thinking for `seconds`, then answering."""

    def answer(request):
        time.sleep(seconds)
        return status, {}, body if isinstance(body, bytes) else json.dumps(body)

    return answer


def data_events(raw: bytes) -> list:
    return [
        "[DONE]" if line == b"data: [DONE]" else json.loads(line[6:])
        for line in raw.splitlines()
        if line.startswith(b"data: ")
    ]


# -- fake streaming -------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", list(STREAMS))
def test_fake_streaming_sends_heartbeats_then_the_whole_answer_as_a_stream(tmp_path, mocked, dialect):
    client, records = gateway(tmp_path, STREAMING_MODE="fake", FAKE_STREAM_HEARTBEAT=0.1)
    mocked.add_callback("POST", GENERATE, callback=slowly(1.0, fixture_bytes("gemini/generate_text.json")))
    path, body = STREAMS[dialect]
    raw = client.post(path, json=body, headers=AUTH).get_data()
    assert [c.request.url for c in mocked.calls] == [GENERATE]  # one whole call, no stream
    if dialect == "openai":
        assert raw.count(b": ping\n\n") >= 5
        chunks = data_events(raw)
        assert chunks[-1] == "[DONE]" and chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]) == "Paris"
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    elif dialect == "anthropic":
        events = parse_events(raw)
        names = [n for n, _ in events]
        assert names[0] == "message_start" and names.count("ping") >= 5
        assert events[0][1]["message"]["usage"]["input_tokens"] >= 1  # an estimate: Gemini is still thinking
        (block,) = check_grammar(events)
        assert block == {"type": "text", "text": "Paris"}
        assert events[-2][1]["usage"]["input_tokens"] == 11  # Gemini's own count follows
    else:
        assert raw.split(b"data: ")[0].count(b"\r\n") >= 5  # bare blank lines while Gemini thinks
        (event,) = data_events(raw)
        assert event == fixture_json("gemini/generate_text.json")  # one line, whatever Gemini's indent
    [rec] = records
    assert rec.stream and rec.status == 200 and rec.error is None
    assert rec.key_label and rec.attempts == 1 and rec.prompt_tokens == 11 and rec.thought_tokens == 34


def test_fake_streaming_as_a_json_array(tmp_path, mocked):
    client, _ = gateway(tmp_path, STREAMING_MODE="fake", FAKE_STREAM_HEARTBEAT=0.1)
    mocked.add_callback("POST", GENERATE, callback=slowly(0.5, fixture_bytes("gemini/generate_text.json")))
    raw = client.post(
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent", json=STREAMS["gemini"][1], headers=AUTH
    ).get_data()
    assert raw.startswith(b"\n") and json.loads(raw) == [fixture_json("gemini/generate_text.json")]


def test_suffixes_choose_the_streaming_mode_per_request(tmp_path, mocked):
    client, _ = gateway(tmp_path)  # STREAMING_MODE=real
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    mocked.post(STREAM, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    path, body = STREAMS["openai"]
    fake = client.post(path, json={**body, "model": "gemini-2.5-flash-fake"}, headers=AUTH)
    assert data_events(fake.get_data())[-1] == "[DONE]"
    assert data_events(fake.get_data())[0]["model"] == "gemini-2.5-flash-fake"
    client, _ = gateway(tmp_path / "2", STREAMING_MODE="fake")
    real = client.post(path, json={**body, "model": "gemini-2.5-flash-real"}, headers=AUTH)
    assert data_events(real.get_data())[-1] == "[DONE]"
    assert [c.request.url.split("?")[0] for c in mocked.calls] == [GENERATE, STREAM]


@pytest.mark.parametrize("dialect", list(STREAMS))
def test_a_quick_refusal_in_fake_mode_keeps_its_status(tmp_path, mocked, dialect):
    client, records = gateway(tmp_path, STREAMING_MODE="fake")
    mocked.post(GENERATE, status=400, body=fixture_bytes("gemini/error_400_invalid_argument.json"))
    path, body = STREAMS[dialect]
    r = client.post(path, json=body, headers=AUTH)
    assert r.status_code == 400 and r.mimetype == "application/json"
    assert records[0].status == 400


def test_a_429_in_fake_mode_moves_to_another_key_before_anything_is_sent(tmp_path, mocked):
    client, records = gateway(tmp_path, STREAMING_MODE="fake")
    mocked.post(GENERATE, status=429, body=fixture_bytes("gemini/error_429_resource_exhausted.json"))
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    path, body = STREAMS["anthropic"]
    events = parse_events(client.post(path, json=body, headers=AUTH).get_data())
    assert check_grammar(events) == [{"type": "text", "text": "Paris"}]
    assert records[0].attempts == 2


@pytest.mark.parametrize("dialect", list(STREAMS))
def test_a_late_failure_in_fake_mode_is_the_dialect_s_error_event(tmp_path, mocked, dialect):
    client, records = gateway(tmp_path, STREAMING_MODE="fake", FAKE_STREAM_HEARTBEAT=0.1, UPSTREAM_RETRIES=0)
    error = fixture_bytes("gemini/error_503_unavailable.json")
    mocked.add_callback("POST", GENERATE, callback=slowly(0.4, error, status=503))
    path, body = STREAMS[dialect]
    r = client.post(path, json=body, headers=AUTH)
    raw = r.get_data()
    assert r.status_code == 200
    if dialect == "anthropic":
        assert parse_events(raw)[-1][0] == "error"
    else:
        assert "error" in data_events(raw)[-1]
    assert records[0].error == "overloaded"


# -- whole answers with whitespace first (NONSTREAM_KEEPALIVE) -------------------------------------

WHOLE = {
    "openai": ("/v1/chat/completions", {"model": "gemini-2.5-flash", "messages": USER}),
    "anthropic": ("/v1/messages", {"model": "gemini-2.5-flash", "max_tokens": 50, "messages": USER}),
    "gemini": ("/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"parts": [{"text": "x"}]}]}),
}


@pytest.mark.parametrize("dialect", list(WHOLE))
def test_a_slow_whole_answer_is_preceded_by_whitespace(tmp_path, mocked, dialect):
    client, records = gateway(tmp_path, NONSTREAM_KEEPALIVE=0.1)
    mocked.add_callback("POST", GENERATE, callback=slowly(0.6, fixture_bytes("gemini/generate_text.json")))
    path, body = WHOLE[dialect]
    r = client.post(path, json=body, headers=AUTH)
    raw = r.get_data()
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert raw.startswith(b"\n\n\n") and raw.lstrip(b"\n")[:1] == b"{"
    answer = json.loads(raw)  # leading whitespace is part of any JSON text
    text = {
        "openai": lambda a: a["choices"][0]["message"]["content"],
        "anthropic": lambda a: a["content"][0]["text"],
        "gemini": lambda a: a["candidates"][0]["content"]["parts"][0]["text"],
    }[dialect](answer)
    assert text == "Paris"
    [rec] = records
    assert not rec.stream and rec.status == 200 and rec.prompt_tokens == 11 and rec.attempts == 1


def test_a_quick_whole_answer_needs_no_whitespace(tmp_path, mocked):
    client, _ = gateway(tmp_path, NONSTREAM_KEEPALIVE=5)
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    raw = client.post(*WHOLE["openai"][:1], json=WHOLE["openai"][1], headers=AUTH).get_data()
    assert raw.startswith(b"{")


def test_an_error_after_the_whitespace_is_the_json_error_body_with_the_200(tmp_path, mocked):
    client, records = gateway(tmp_path, NONSTREAM_KEEPALIVE=0.1, UPSTREAM_RETRIES=0)
    error = fixture_bytes("gemini/error_503_unavailable.json")
    mocked.add_callback("POST", GENERATE, callback=slowly(0.2, error, status=503))
    path, body = WHOLE["anthropic"]
    r = client.post(path, json=body, headers=AUTH)
    assert r.status_code == 200  # sent with the first whitespace: the documented trade-off
    error = json.loads(r.get_data())
    assert error["type"] == "error" and error["error"]["type"] == "overloaded_error"
    assert error["request_id"] == r.headers["x-request-id"]
    assert records[0].error == "overloaded"


def test_a_quick_error_keeps_its_status_with_keepalive_on(tmp_path, mocked):
    client, _ = gateway(tmp_path, NONSTREAM_KEEPALIVE=2)
    mocked.post(GENERATE, status=400, body=fixture_bytes("gemini/error_400_invalid_argument.json"))
    r = client.post(WHOLE["openai"][0], json=WHOLE["openai"][1], headers=AUTH)
    assert r.status_code == 400 and r.get_json()["error"]["type"] == "invalid_request_error"


# -- botched tool calls (OpenAI) ---------------------------------------------------------------------


def test_a_botched_tool_call_is_asked_for_once_more(tmp_path, mocked):
    client, records = gateway(tmp_path)
    mocked.post(GENERATE, json=BOTCHED)
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    r = client.post(*WHOLE["openai"][:1], json=WHOLE["openai"][1], headers=AUTH)
    assert r.status_code == 200 and r.get_json()["choices"][0]["message"]["content"] == "Paris"
    assert records[0].attempts == 2


def test_a_tool_call_botched_twice_is_an_error_never_a_stop(tmp_path, mocked):
    client, records = gateway(tmp_path)
    mocked.post(GENERATE, json=BOTCHED)
    mocked.post(GENERATE, json=BOTCHED)
    r = client.post(*WHOLE["openai"][:1], json=WHOLE["openai"][1], headers=AUTH)
    error = r.get_json()["error"]
    assert r.status_code == 502 and error["type"] == "server_error"
    assert "MALFORMED_FUNCTION_CALL" in error["message"] and "print(default_api.f(x=))" in error["message"]
    assert len(mocked.calls) == 2 and records[0].status == 502


def test_a_stream_whose_first_event_botches_a_tool_call_is_opened_again(tmp_path, mocked):
    client, records = gateway(tmp_path)
    mocked.post(STREAM, body=b"data: " + json.dumps(BOTCHED).encode() + b"\r\n\r\n")
    mocked.post(STREAM, body=fixture_bytes("gemini/stream_text.sse"))
    path, body = STREAMS["openai"]
    chunks = data_events(client.post(path, json=body, headers=AUTH).get_data())
    assert chunks[-1] == "[DONE]" and chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]).startswith(
        "I can help"
    )
    assert len(mocked.calls) == 2 and records[0].attempts == 2


def test_a_stream_that_botches_twice_ends_with_an_error_event(tmp_path, mocked):
    client, records = gateway(tmp_path)
    for _ in range(2):
        mocked.post(STREAM, body=b"data: " + json.dumps(BOTCHED).encode() + b"\r\n\r\n")
    path, body = STREAMS["openai"]
    chunks = data_events(client.post(path, json=body, headers=AUTH).get_data())
    assert "MALFORMED_FUNCTION_CALL" in chunks[-1]["error"]["message"] and "[DONE]" not in chunks
    assert records[0].error == "api_error"


# -- cut streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", list(STREAMS))
def test_a_stream_that_ends_without_a_finish_reason_is_an_error_event(tmp_path, mocked, dialect):
    client, records = gateway(tmp_path)
    text = {"candidates": [{"content": {"parts": [{"text": "Half an ans"}], "role": "model"}, "index": 0}]}
    mocked.post(STREAM, body=b"data: " + json.dumps(text).encode() + b"\r\n\r\n")
    path, body = STREAMS[dialect]
    raw = client.post(path, json=body, headers=AUTH).get_data()
    if dialect == "anthropic":
        events = parse_events(raw)
        assert events[-1][0] == "error" and "message_stop" not in [n for n, _ in events]
        message = events[-1][1]["error"]["message"]
    else:
        last = data_events(raw)[-1]
        assert b"[DONE]" not in raw
        message = last["error"]["message"]
    assert "no finish reason" in message and records[0].error == "api_error"


@pytest.mark.parametrize("env", [{"STREAMING_MODE": "fake"}, {"NONSTREAM_KEEPALIVE": "0.05"}])
def test_the_call_beside_the_response_keeps_the_session_s_key(tmp_path, mocked, env):
    # The whole answer is fetched beside the response, yet the key pool still sees the session hint.
    client, _ = gateway(tmp_path, **env)
    for _ in range(4):
        mocked.add_callback(
            "POST", GENERATE, callback=slowly(0.2, fixture_bytes("gemini/generate_text.json"))
        )
    path, body = STREAMS["openai"]
    if "NONSTREAM_KEEPALIVE" in env:
        body = {k: v for k, v in body.items() if k != "stream"}
    for _ in range(4):
        r = client.post(path, json=body, headers={**AUTH, "x-session-affinity": "conversation-1"})
        assert r.status_code == 200 and r.get_data()
    keys = {call.request.headers["x-goog-api-key"] for call in mocked.calls}
    assert len(mocked.calls) == 4 and len(keys) == 1


def test_the_responses_api_takes_fake_streams_and_keepalive_too(tmp_path, mocked):
    client, records = gateway(
        tmp_path, STREAMING_MODE="fake", FAKE_STREAM_HEARTBEAT=0.1, NONSTREAM_KEEPALIVE=0.1
    )
    for _ in range(2):
        mocked.add_callback(
            "POST", GENERATE, callback=slowly(0.5, fixture_bytes("gemini/generate_text.json"))
        )
    body = {"model": "gemini-2.5-flash", "input": "Hello"}
    streamed = client.post("/v1/responses", json={**body, "stream": True}, headers=AUTH).get_data()
    events = data_events(streamed)
    assert streamed.count(b": ping\n\n") >= 3
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Paris"
    whole = client.post("/v1/responses", json=body, headers=AUTH).get_data()
    assert whole.startswith(b"\n") and json.loads(whole)["output"][0]["content"][0]["text"] == "Paris"
    assert [rec.stream for rec in records] == [True, False]
