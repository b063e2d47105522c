"""The Anthropic routes through the Flask test client, with Gemini mocked by `responses`."""

import json

import pytest

from app.state import state_of
from tests.anthropic.grammar import check_grammar, parse_events
from tests.conftest import BASE, CLIENT_KEY, UPSTREAM_KEYS, fixture_bytes, fixture_json

HEADERS = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
GENERATE = BASE + "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = BASE + "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
BODY = {"model": "gemini-2.5-flash", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def records(app):
    seen = []
    state_of(app).finish = seen.append
    return seen


def post(client, body, path="/v1/messages", **kwargs):
    return client.post(path, json=body, headers=kwargs.pop("headers", HEADERS), **kwargs)


def test_message_and_its_record(client, mocked, records):
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    r = post(client, BODY)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.headers["request-id"] == r.headers["x-request-id"]
    assert r.json["content"] == [{"type": "text", "text": "Paris"}]
    sent = mocked.calls[0].request
    assert sent.headers["x-goog-api-key"] in UPSTREAM_KEYS and CLIENT_KEY not in sent.body.decode()
    (rec,) = records
    assert (rec.dialect, rec.model, rec.status, rec.stream) == ("anthropic", "gemini-2.5-flash", 200, False)
    assert (rec.prompt_tokens, rec.completion_tokens, rec.thought_tokens) == (11, 1, 34)
    assert rec.key_label and rec.attempts == 1


def test_stream_and_its_record(client, mocked, records):
    mocked.post(STREAM, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    r = post(client, dict(BODY, stream=True))
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache" and r.headers["request-id"].startswith("req_")
    blocks = check_grammar(parse_events(r.data))
    assert blocks[0]["text"].startswith("I can help")
    assert "alt=sse" in mocked.calls[0].request.url
    (rec,) = records
    assert (
        rec.stream
        and rec.model == "gemini-2.5-flash"
        and rec.prompt_tokens == 29
        and rec.thought_tokens == 199
    )


def test_model_name_directives_reach_gemini(client, mocked):
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    r = post(client, dict(BODY, model="models/gemini-2.5-flash-search-high"))
    assert r.status_code == 200 and r.json["model"] == "models/gemini-2.5-flash-search-high"
    sent = json.loads(mocked.calls[0].request.body)
    assert sent["tools"] == [{"googleSearch": {}}]
    assert sent["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576}


@pytest.mark.parametrize(
    "change, param",
    [
        ({"model": None}, "model"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": "64"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": "Hi"}, "messages"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages[0].content[0].type"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        ({"messages": [{"role": "user", "content": ["text"]}]}, "messages[0].content[0]"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "ftp"}}]}]},
            "messages[0].content[0].source.type",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}
                ]
            },
            "messages[0].content[0].id",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 3}]}
                ]
            },
            "messages[0].content[0].content",
        ),
        ({"system": 7}, "system"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
        ({"tool_choice": {"type": "required"}}, "tool_choice.type"),
        ({"thinking": {"type": "on"}}, "thinking.type"),
        ({"thinking": {"type": "enabled", "budget_tokens": "lots"}}, "thinking.budget_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"stream": "yes please"}, "stream"),
    ],
)
def test_bad_requests_name_the_field(client, mocked, change, param):
    body = {k: v for k, v in {**BODY, **change}.items() if v is not None}
    r = post(client, body)
    assert r.status_code == 400, r.json
    assert r.json["type"] == "error" and r.json["error"]["type"] == "invalid_request_error"
    assert param in r.json["error"]["message"]
    assert r.json["request_id"] == r.headers["request-id"]
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "data, content_type, needle",
    [
        (b"", "application/json", "empty"),
        (b"{not json", "application/json", "not valid JSON"),
        (b"[1]", "application/json", "JSON object"),
        (b"a=b", "application/x-www-form-urlencoded", "Content-Type"),
    ],
)
def test_bodies_that_are_not_json_objects(client, data, content_type, needle):
    r = client.post("/v1/messages", data=data, content_type=content_type, headers=HEADERS)
    assert r.status_code == 400 and r.json["error"]["type"] == "invalid_request_error"
    assert needle in r.json["error"]["message"]


def test_routing_and_auth_errors_are_in_anthropics_shape(client):
    r = client.post("/v1/messages", json=BODY, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 401 and r.json["error"]["type"] == "authentication_error"
    r = client.post("/v1/messages", json=BODY, headers={"x-api-key": "nope"})
    assert r.status_code == 401 and r.json["error"]["type"] == "authentication_error"
    r = client.get("/v1/messages", headers=HEADERS)
    assert r.status_code == 405 and r.json["error"]["type"] == "invalid_request_error"
    r = client.post("/v1/messages/batches", json={}, headers=HEADERS)
    assert r.status_code == 404 and r.json["error"]["type"] == "not_found_error"


def test_upstream_rejection_of_the_request(client, mocked):
    mocked.post(GENERATE, status=400, body=fixture_bytes("gemini/error_400_missing_thought_signature.json"))
    r = post(client, BODY)
    assert r.status_code == 400 and r.json["error"]["type"] == "invalid_request_error"
    assert "thought_signature" in r.json["error"]["message"]


def test_count_tokens(client, mocked, records):
    mocked.post(
        BASE + "/v1beta/models/gemini-2.5-flash:countTokens", body=fixture_bytes("gemini/count_tokens.json")
    )
    r = post(
        client,
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hi"}]},
        path="/v1/messages/count_tokens?beta=true",
    )
    assert r.status_code == 200 and r.json == {"input_tokens": 5}
    assert json.loads(mocked.calls[0].request.body)["generateContentRequest"]["contents"][0]["parts"] == [
        {"text": "Hi"}
    ]
    assert records[0].model == "gemini-2.5-flash"
    r = post(client, {"model": "gemini-2.5-flash"}, path="/v1/messages/count_tokens")
    assert r.status_code == 400 and "messages" in r.json["error"]["message"]


# -- models ----------------------------------------------------------------------------


@pytest.fixture
def catalog(mocked):
    page = fixture_json("gemini/models_list_page.json")
    page.pop("nextPageToken")
    mocked.get(BASE + "/v1beta/models", json=page)
    return [m["name"][7:] for m in page["models"] if "generateContent" in m["supportedGenerationMethods"]]


def test_model_list_pages(client, catalog):
    r = client.get("/v1/models", headers=HEADERS)
    assert r.status_code == 200
    assert [m["id"] for m in r.json["data"]] == catalog and r.json["has_more"] is False
    first = r.json["data"][0]
    assert first == {
        "type": "model",
        "id": "gemini-2.5-flash",
        "display_name": "Gemini 2.5 Flash",
        "created_at": "1970-01-01T00:00:00Z",
        "lifecycle": "active",
        "max_input_tokens": 1048576,
        "max_tokens": 65536,
    }
    page = client.get("/v1/models?limit=1", headers=HEADERS).json
    assert [m["id"] for m in page["data"]] == catalog[:1] and page["has_more"] is True
    assert page["first_id"] == page["last_id"] == catalog[0]
    page = client.get(f"/v1/models?limit=5&after_id={catalog[0]}", headers=HEADERS).json
    assert [m["id"] for m in page["data"]] == catalog[1:] and page["has_more"] is False
    page = client.get(f"/v1/models?limit=1&before_id={catalog[2]}", headers=HEADERS).json
    assert [m["id"] for m in page["data"]] == [catalog[1]] and page["has_more"] is True
    r = client.get("/v1/models?limit=0", headers=HEADERS)
    assert r.status_code == 400 and r.json["error"]["type"] == "invalid_request_error"


def test_model_list_without_anthropic_version_is_not_ours(client, catalog):
    r = client.get("/v1/models", headers={"x-api-key": CLIENT_KEY})
    assert "has_more" not in r.json


def test_get_model(client, mocked):
    mocked.get(BASE + "/v1beta/models/gemini-2.5-flash", json=fixture_json("gemini/models_get.json"))
    r = client.get("/v1/models/gemini-2.5-flash-high", headers=HEADERS)
    assert r.status_code == 200 and r.json["id"] == "gemini-2.5-flash-high" and r.json["type"] == "model"
    mocked.get(
        BASE + "/v1beta/models/nope", status=404, body=fixture_bytes("gemini/error_404_model_not_found.json")
    )
    r = client.get("/v1/models/nope", headers=HEADERS)
    assert r.status_code == 404 and r.json["error"]["type"] == "not_found_error"


def test_structured_output_and_its_validation(client, mocked):
    mocked.post(GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    r = post(
        client,
        dict(BODY, output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "low"}),
    )
    assert r.status_code == 200
    config = json.loads(mocked.calls[0].request.body)["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["responseSchema"]["type"] == "OBJECT"
    r = post(client, dict(BODY, output_config={"format": {"type": "json_schema"}}))
    assert r.status_code == 400 and "output_config.format.schema" in r.json["error"]["message"]
    r = post(client, dict(BODY, output_format={"type": "xml", "schema": {}}))
    assert r.status_code == 400 and "output_format.type" in r.json["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_above_the_models_cap_is_sent_again_at_the_cap(client, mocked, stream):
    refusal = {
        "error": {
            "code": 400,
            "status": "INVALID_ARGUMENT",
            "message": (
                "Unable to submit request because it has a maxOutputTokens value of 64000 but the supported range is "
                "from 1 (inclusive) to 8193 (exclusive). Update the value and try again."
            ),
        }
    }
    url = STREAM if stream else GENERATE
    mocked.post(url, status=400, json=refusal)
    if stream:
        mocked.post(url, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    else:
        mocked.post(url, body=fixture_bytes("gemini/generate_text.json"))
    seen = []
    state_of(client.application).finish = seen.append
    r = post(client, dict(BODY, max_tokens=64000, stream=stream))
    assert r.status_code == 200
    first, second = (json.loads(c.request.body)["generationConfig"]["maxOutputTokens"] for c in mocked.calls)
    assert (first, second) == (64000, 8192)
    r.close()
    assert [rec.attempts for rec in seen] == [2]  # the refused call counts as an attempt too


def test_other_400s_are_not_sent_again(client, mocked):
    mocked.post(GENERATE, status=400, body=fixture_bytes("gemini/error_400_invalid_argument.json"))
    r = post(client, BODY)
    assert r.status_code == 400 and len(mocked.calls) == 1


def test_a_stream_that_fails_before_its_first_byte_is_a_plain_error(client, mocked):
    mocked.post(STREAM, status=404, body=fixture_bytes("gemini/error_404_model_not_found.json"))
    r = post(client, dict(BODY, stream=True))
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
    assert r.json["error"]["type"] == "not_found_error"
