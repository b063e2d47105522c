"""The native relay through the Flask test client, with Gemini mocked by `responses`."""

import json

import pytest
import requests

from app import create_app
from tests.conftest import AUTH, BASE, CLIENT_KEY, UPSTREAM_KEYS, fixture_bytes, fixture_json, make_env

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


def test_generate_content_relays_gemini_answer_byte_for_byte(client, mocked):
    answer = fixture_bytes("gemini/generate_text.json")
    mocked.post(BASE + GEN, body=answer, content_type="application/json; charset=UTF-8")
    r = client.post(GEN, json=BODY, headers=AUTH)
    assert r.status_code == 200 and r.data == answer
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.headers["x-request-id"].startswith("req_")


def test_client_key_and_key_param_never_go_upstream(client, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    client.post(GEN + f"?key={CLIENT_KEY}", json=BODY)
    client.post(GEN, json=BODY, headers={"x-goog-api-key": CLIENT_KEY})
    client.post(GEN, json=BODY, headers=AUTH)
    for call in mocked.calls:
        sent = call.request
        assert "key=" not in sent.url
        assert sent.headers["x-goog-api-key"] in UPSTREAM_KEYS
        assert "Authorization" not in sent.headers
        assert CLIENT_KEY not in json.dumps(dict(sent.headers)) + sent.url + sent.body.decode()


def test_default_safety_settings_only_when_the_request_has_none(tmp_path, mocked):
    app = create_app(make_env(DATA_DIR=str(tmp_path), SAFETY_THRESHOLD="BLOCK_ONLY_HIGH"))
    client = app.test_client()
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    client.post(GEN, json=BODY, headers=AUTH)
    own = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}]
    client.post(GEN, json={**BODY, "safetySettings": own, "newField": {"x": 1}}, headers=AUTH)
    first, second = (json.loads(c.request.body) for c in mocked.calls)
    assert {s["threshold"] for s in first["safetySettings"]} == {"BLOCK_ONLY_HIGH"}
    assert len(first["safetySettings"]) == 4
    assert second["safetySettings"] == own
    assert second["newField"] == {"x": 1}  # unknown fields pass through untouched


def test_proto_json_bodies_are_forwarded_as_the_client_sent_them(client, mocked):
    # snake_case names and numbers as strings, as Gemini's own parser takes them; only the default
    # safety settings are added, and nothing the client wrote is re-encoded.
    raw = (
        b'{"contents": [{"role": "user", "parts": [{"text": "What is this?"}, '
        b'{"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}}]}], '
        b'"generation_config": {"max_output_tokens": "64", "temperature": "0.5"}}'
    )
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/generate_text.json"))
    response = client.post(GEN, data=raw, content_type="application/json", headers=AUTH)
    assert response.status_code == 200
    sent = mocked.calls[0].request.body
    assert sent.startswith(raw[:-1]) and sent.endswith(b"}")
    forwarded = json.loads(sent)
    assert forwarded["generation_config"] == {"max_output_tokens": "64", "temperature": "0.5"}
    assert len(forwarded["safetySettings"]) == 4
    with_own = raw[:-1] + b', "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": 4}]}'
    assert client.post(GEN, data=with_own, content_type="application/json", headers=AUTH).status_code == 200
    assert mocked.calls[1].request.body == with_own  # the client's own settings: forwarded byte for byte


@pytest.mark.parametrize(
    "action, fixture, body",
    [
        ("countTokens", "gemini/count_tokens.json", BODY),
        ("embedContent", None, {"content": {"parts": [{"text": "x"}]}, "taskType": "RETRIEVAL_QUERY"}),
        ("batchEmbedContents", "gemini/embed_batch.json", fixture_json("gemini/embed_batch.request.json")),
        ("predict", "gemini/imagen_predict.json", fixture_json("gemini/imagen_predict.request.json")),
    ],
)
def test_other_actions_relay(client, mocked, action, fixture, body):
    answer = fixture_bytes(fixture) if fixture else b'{"embedding": {"values": [0.1, 0.2]}}'
    url = f"{BASE}/v1beta/models/some-model:{action}"
    mocked.post(url, body=answer)
    r = client.post(f"/v1beta/models/some-model:{action}", json=body, headers=AUTH)
    assert r.status_code == 200 and r.data == answer
    assert json.loads(mocked.calls[0].request.body) == body


def test_v1_alias_goes_to_v1_upstream(client, mocked):
    mocked.post(
        BASE + "/v1/models/gemini-2.5-flash:generateContent", body=fixture_bytes("gemini/generate_text.json")
    )
    r = client.post(
        "/v1/models/gemini-2.5-flash:generateContent", json=BODY, headers={"x-goog-api-key": CLIENT_KEY}
    )
    assert r.status_code == 200


def test_sse_stream_is_relayed_event_by_event_in_google_framing(client, mocked):
    sse = fixture_bytes("gemini/stream_text.sse")
    mocked.post(BASE + STREAM, body=sse, content_type="text/event-stream")
    r = client.post(STREAM + "?alt=sse", json=BODY, headers=AUTH)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Cache-Control"] == "no-cache" and r.headers["X-Accel-Buffering"] == "no"
    assert r.data == sse  # the recorded stream uses Google's framing, so it comes back byte for byte
    assert mocked.calls[0].request.url.endswith(":streamGenerateContent?alt=sse")


def test_json_array_stream_without_alt(client, mocked):
    mocked.post(BASE + STREAM, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    r = client.post(STREAM, json=BODY, headers=AUTH)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json; charset=UTF-8"
    chunks = json.loads(r.data)
    assert len(chunks) == 4 and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert r.data.startswith(b"[{\n") and b"\n,\r\n{" in r.data and r.data.endswith(b"}\n]")


def test_json_array_stream_errors_are_wrapped_in_an_array(client, mocked):
    mocked.post(BASE + STREAM, body=fixture_bytes("gemini/error_404_model_not_found.json"), status=404)
    r = client.post(STREAM, json=BODY, headers=AUTH)
    assert r.status_code == 404
    assert json.loads(r.data)[0]["error"]["status"] == "NOT_FOUND"


def test_upstream_failure_mid_stream_becomes_an_error_event(client, mocked):
    first = (
        b'data: {"candidates": [{"content": {"parts": [{"text": "Hi"}],"role": "model"},"index": 0}]}\r\n\r\n'
    )
    trailer = fixture_bytes("gemini/error_500_internal.json")
    mocked.post(BASE + STREAM, body=first + trailer, content_type="text/event-stream")
    r = client.post(STREAM + "?alt=sse", json=BODY, headers=AUTH)
    events = [e for e in r.data.split(b"\r\n\r\n") if e]
    assert events[0] == first.rstrip()
    assert json.loads(events[1][6:])["error"]["status"] == "INTERNAL"


def test_garbage_event_from_upstream_is_mapped(client, mocked):
    mocked.post(BASE + STREAM, body=b"data: {not json\r\n\r\n", content_type="text/event-stream")
    r = client.post(STREAM + "?alt=sse", json=BODY, headers=AUTH)
    error = json.loads(r.data.split(b"\r\n\r\n")[0][6:])["error"]
    assert error["code"] == 503 and "not a JSON object" in error["message"]


def test_upstream_errors_reach_the_native_client_intact(client, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/error_400_invalid_argument.json"), status=400)
    r = client.post(GEN, json=BODY, headers=AUTH)
    assert r.status_code == 400 and r.data == fixture_bytes("gemini/error_400_invalid_argument.json")


def test_all_keys_rate_limited_gives_429_with_retry_info_and_retry_after(client, mocked):
    mocked.post(BASE + GEN, body=fixture_bytes("gemini/error_429_resource_exhausted.json"), status=429)
    r = client.post(GEN, json=BODY, headers=AUTH)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) in (25, 26)
    assert r.json["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert any(d["@type"].endswith("RetryInfo") for d in r.json["error"]["details"])
    again = client.post(GEN, json=BODY, headers=AUTH)  # every key is now cooling: nothing goes upstream
    assert again.status_code == 429 and len(mocked.calls) == 3
    assert again.json["error"]["details"][0]["retryDelay"].endswith("s")


def test_no_upstream_keys_answers_503_saying_what_to_set(tmp_path):
    client = create_app(make_env(DATA_DIR=str(tmp_path), GEMINI_API_KEYS="")).test_client()
    r = client.post(GEN, json=BODY, headers=AUTH)
    assert r.status_code == 503 and "GEMINI_API_KEYS" in r.json["error"]["message"]
    health = client.get("/healthz")
    assert health.json["status"] == "degraded" and "GEMINI_API_KEYS" in health.json["message"]


def test_models_list_and_get_are_cached(client, mocked):
    mocked.get(BASE + "/v1beta/models", body=fixture_bytes("gemini/models_list_page.json"))
    mocked.get(BASE + "/v1beta/models/gemini-2.5-flash", body=fixture_bytes("gemini/models_get.json"))
    for _ in range(3):
        assert client.get("/v1beta/models", headers=AUTH).json == fixture_json("gemini/models_list_page.json")
        assert client.get("/v1beta/models/gemini-2.5-flash", headers=AUTH).json["name"].startswith("models/")
    assert len(mocked.calls) == 2
    mocked.get(BASE + "/v1/models", body=fixture_bytes("gemini/models_list_page.json"))
    gemini_shape = client.get("/v1/models", headers={"x-goog-api-key": CLIENT_KEY})
    assert "models" in gemini_shape.json and mocked.calls[2].request.url == BASE + "/v1/models"


def test_unknown_model_is_gemini_404(client, mocked):
    mocked.get(
        BASE + "/v1beta/models/nope", body=fixture_bytes("gemini/error_404_model_not_found.json"), status=404
    )
    r = client.get("/v1beta/models/nope", headers=AUTH)
    assert r.status_code == 404 and r.json["error"]["status"] == "NOT_FOUND"


BAD_INPUTS = [
    # (description, path, kwargs, status, field named in the message)
    ("malformed JSON", GEN, dict(data=b"{nope", content_type="application/json"), 400, "not valid JSON"),
    ("empty body", GEN, dict(data=b"", content_type="application/json"), 400, "empty"),
    ("a JSON array", GEN, dict(json=[1, 2]), 400, "JSON object"),
    (
        "wrong content type",
        GEN,
        dict(data=b"a=b", content_type="application/x-www-form-urlencoded"),
        400,
        "Content-Type",
    ),
    ("no contents", GEN, dict(json={}), 400, "contents"),
    ("empty contents", GEN, dict(json={"contents": []}), 400, "contents"),
    ("parts not a list", GEN, dict(json={"contents": [{"parts": "hi"}]}), 400, "contents[0].parts"),
    (
        "text not a string",
        GEN,
        dict(json={"contents": [{"parts": [{"text": 5}]}]}),
        400,
        "contents[0].parts[0].text",
    ),
    (
        "inlineData without data",
        GEN,
        dict(json={"contents": [{"parts": [{"inlineData": {"mimeType": "image/png"}}]}]}),
        400,
        "contents[0].parts[0].inlineData.data",
    ),
    (
        "bad temperature",
        GEN,
        dict(json={**BODY, "generationConfig": {"temperature": "hot"}}),
        400,
        "generationConfig.temperature",
    ),
    (
        "bad maxOutputTokens",
        GEN,
        dict(json={**BODY, "generationConfig": {"maxOutputTokens": 0}}),
        400,
        "generationConfig.maxOutputTokens",
    ),
    (
        "NaN",
        GEN,
        dict(data=b'{"contents": [], "x": NaN}', content_type="application/json"),
        400,
        "not valid JSON",
    ),
    (
        "invalid UTF-8",
        GEN,
        dict(data=b'{"contents": "\xff"}', content_type="application/json"),
        400,
        "not valid JSON",
    ),
    (
        "deep nesting",
        GEN,
        dict(data=b"[" * 100000 + b"]" * 100000, content_type="application/json"),
        400,
        "not valid JSON",
    ),
    (
        "sampleCount 5",
        "/v1beta/models/imagen-4.0-generate-001:predict",
        dict(json={"instances": [{"prompt": "x"}], "parameters": {"sampleCount": 5}}),
        400,
        "parameters.sampleCount",
    ),
    (
        "no instances",
        "/v1beta/models/imagen-4.0-generate-001:predict",
        dict(json={"parameters": {}}),
        400,
        "instances",
    ),
    (
        "batch without requests",
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        dict(json={}),
        400,
        "requests",
    ),
    (
        "embed without content",
        "/v1beta/models/gemini-embedding-001:embedContent",
        dict(json={"taskType": "X"}),
        400,
        "content",
    ),
    ("unknown method", "/v1beta/models/gemini-2.5-flash:fly", dict(json=BODY), 404, "fly"),
    ("bad model name", "/v1beta/models/..:generateContent", dict(json=BODY), 400, "model"),
    ("no action", "/v1beta/models/gemini-2.5-flash", dict(json=BODY), 404, ":generateContent"),
    ("unknown route", "/v1beta/nothing", dict(json=BODY), 404, "/v1beta/nothing"),
]


@pytest.mark.parametrize("desc, path, kwargs, status, needle", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_get_clear_gemini_errors(client, mocked, desc, path, kwargs, status, needle):
    r = client.post(path, headers=AUTH, **kwargs)
    assert r.status_code == status, r.data
    error = r.json["error"]
    assert error["code"] == status and error["status"] and needle in error["message"]
    assert not mocked.calls  # nothing bad goes upstream


def test_body_over_the_limit_is_413_before_reading_it(tmp_path, mocked):
    client = create_app(make_env(DATA_DIR=str(tmp_path), MAX_REQUEST_BYTES=2048)).test_client()
    r = client.post(GEN, data=b"x" * 4096, content_type="application/json", headers=AUTH)
    assert r.status_code == 413 and r.json["error"]["code"] == 413


def test_upstream_unreachable_is_a_mapped_503(client, mocked):
    mocked.post(BASE + GEN, body=requests.ConnectionError("refused"))
    r = client.post(GEN, json=BODY, headers=AUTH)
    assert r.status_code == 503 and r.json["error"]["status"] == "UNAVAILABLE"
    assert "Traceback" not in r.get_data(as_text=True)
