"""The OpenAI routes through the Flask test client, with Gemini mocked by `responses`."""

import base64
import json
import struct

import pytest

from app.state import state_of
from tests.conftest import AUTH, BASE, CLIENT_KEY, UPSTREAM_KEYS, fixture_bytes, fixture_json

CHAT = "/v1/chat/completions"
GEN = BASE + "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = BASE + "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
HELLO = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
def records(app):
    seen = []
    state_of(app).finish = seen.append
    return seen


def sent(mocked, i=-1) -> dict:
    return json.loads(mocked.calls[i].request.body)


def error_of(r) -> dict:
    body = r.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def sse_payloads(data: bytes) -> list:
    return [
        json.loads(line[6:]) if line != b"data: [DONE]" else "[DONE]"
        for line in data.split(b"\n")
        if line.startswith(b"data: ")
    ]


# -- chat completions -------------------------------------------------------------------------------


def test_chat_completion(client, mocked, records):
    mocked.post(GEN, body=fixture_bytes("gemini/generate_text.json"))
    r = client.post(CHAT, json=HELLO, headers=AUTH)
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert body["object"] == "chat.completion" and body["model"] == "gemini-2.5-flash"
    assert body["choices"][0]["message"]["content"] == "Paris"
    assert body["usage"]["completion_tokens"] == 35
    upstream = sent(mocked)
    assert upstream["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]
    assert {s["threshold"] for s in upstream["safetySettings"]} == {"OFF"} and len(
        upstream["safetySettings"]
    ) == 4
    request = mocked.calls[0].request
    assert request.headers["x-goog-api-key"] in UPSTREAM_KEYS and "Authorization" not in request.headers
    assert CLIENT_KEY not in request.body.decode() + request.url
    [rec] = records
    assert (rec.model, rec.status, rec.prompt_tokens, rec.completion_tokens, rec.thought_tokens) == (
        "gemini-2.5-flash",
        200,
        11,
        1,
        34,
    )
    assert rec.key_label and rec.attempts == 1 and rec.dialect == "openai"


def test_model_directives_reach_gemini(client, mocked):
    mocked.post(GEN, body=fixture_bytes("gemini/generate_text.json"))
    r = client.post(CHAT, json={**HELLO, "model": "gemini-2.5-flash-search-low"}, headers=AUTH)
    assert r.status_code == 200 and r.get_json()["model"] == "gemini-2.5-flash-search-low"
    upstream = sent(mocked)
    assert {"googleSearch": {}} in upstream["tools"]
    assert upstream["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 1024


def test_client_safety_settings_are_kept(client, mocked):
    mocked.post(GEN, body=fixture_bytes("gemini/generate_text.json"))
    own = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}]
    client.post(CHAT, json={**HELLO, "extra_body": {"google": {"safety_settings": own}}}, headers=AUTH)
    assert sent(mocked)["safetySettings"] == own


def test_chat_stream(client, mocked, records):
    mocked.post(STREAM, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    r = client.post(
        CHAT, json={**HELLO, "stream": True, "stream_options": {"include_usage": True}}, headers=AUTH
    )
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    events = sse_payloads(r.data)
    assert (
        events[-1] == "[DONE]" and events[-2]["choices"] == [] and events[-2]["usage"]["prompt_tokens"] == 29
    )
    assert mocked.calls[0].request.url.endswith(":streamGenerateContent?alt=sse")
    [rec] = records
    assert rec.stream and rec.completion_tokens == 115 and rec.thought_tokens == 199


def test_failure_mid_stream_becomes_an_error_event(client, mocked, records):
    first = fixture_bytes("gemini/stream_text.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    trailer = fixture_bytes("gemini/error_503_unavailable.json")
    mocked.post(STREAM, body=first + trailer, content_type="text/event-stream")
    r = client.post(CHAT, json={**HELLO, "stream": True}, headers=AUTH)
    assert r.status_code == 200
    events = sse_payloads(r.data)
    assert events[1]["choices"][0]["delta"]["content"]
    assert events[-1] == {
        "error": {
            "message": "The model is overloaded. Please try again later.",
            "type": "server_error",
            "param": None,
            "code": "overloaded",
        }
    }
    assert "[DONE]" not in events
    assert records[0].error == "overloaded"


@pytest.mark.parametrize(
    "fixture, status, type_, code",
    [
        ("error_404_model_not_found.json", 404, "invalid_request_error", "model_not_found"),
        ("error_400_missing_thought_signature.json", 400, "invalid_request_error", None),
        ("error_500_internal.json", 500, "server_error", None),
        ("error_503_unavailable.json", 503, "server_error", "overloaded"),
    ],
)
def test_gemini_errors_in_openai_shape(client, mocked, fixture, status, type_, code):
    gemini = fixture_json(f"gemini/{fixture}")
    mocked.post(GEN, json=gemini, status=status)
    r = client.post(CHAT, json=HELLO, headers=AUTH)
    assert r.status_code == status
    error = error_of(r)
    assert (error["type"], error["code"]) == (type_, code)
    assert error["message"] == gemini["error"]["message"]


def test_rate_limit_is_429_with_retry_after(client, mocked):
    mocked.post(GEN, body=fixture_bytes("gemini/error_429_resource_exhausted.json"), status=429)
    r = client.post(CHAT, json=HELLO, headers=AUTH)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert error_of(r)["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    "desc, kwargs, status, param, needle",
    [
        ("no messages", {"json": {"model": "m"}}, 400, "messages", "Missing data"),
        ("empty messages", {"json": {"model": "m", "messages": []}}, 400, "messages", "Shorter than minimum"),
        (
            "bad role",
            {"json": {"model": "m", "messages": [{"role": "robot", "content": "x"}]}},
            400,
            "messages[0].role",
            "Must be one of",
        ),
        (
            "bad part",
            {"json": {"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}},
            400,
            "messages[0].content[0].type",
            "Must be one of",
        ),
        ("string temperature", {"json": {**HELLO, "temperature": "hot"}}, 400, "temperature", "number"),
        ("bad model name", {"json": {**HELLO, "model": "../etc"}}, 400, "model", "Invalid model"),
        ("bad tool_choice", {"json": {**HELLO, "tool_choice": "always"}}, 400, "tool_choice", "Must be"),
        ("not json", {"data": b"{", "content_type": "application/json"}, 400, None, "not valid JSON"),
        (
            "form body",
            {"data": b"a=b", "content_type": "application/x-www-form-urlencoded"},
            400,
            "Content-Type",
            "application/json",
        ),
    ],
)
def test_bad_requests_are_clear_400s(client, mocked, desc, kwargs, status, param, needle):
    r = client.post(CHAT, headers=AUTH, **kwargs)
    assert r.status_code == status, r.data
    error = error_of(r)
    assert error["type"] == "invalid_request_error" and error["param"] == param and needle in error["message"]
    assert not mocked.calls


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_bad_key_is_401_invalid_api_key(client, headers):
    r = client.post(CHAT, json=HELLO, headers=headers)
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_api_key"


def test_unknown_route_is_an_openai_404(client):
    r = client.post("/v1/completions", json={}, headers=AUTH)
    assert r.status_code == 404 and error_of(r)["type"] == "invalid_request_error"


# -- models ---------------------------------------------------------------------------------------


def test_models_list_in_openai_shape(client, mocked):
    page = fixture_json("gemini/models_list_page.json")
    mocked.get(BASE + "/v1beta/models", json=page)
    r = client.get("/v1/models", headers=AUTH)
    assert r.status_code == 200
    body = r.get_json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert ids == [m["name"].removeprefix("models/") for m in page["models"]]  # the repeated pages are folded
    assert all(
        m == {"id": m["id"], "object": "model", "created": 0, "owned_by": "google"} for m in body["data"]
    )


def test_get_model(client, mocked):
    mocked.get(BASE + "/v1beta/models/gemini-2.5-flash", json=fixture_json("gemini/models_get.json"))
    r = client.get("/v1/models/gemini-2.5-flash-high", headers=AUTH)
    assert r.get_json() == {
        "id": "gemini-2.5-flash-high",
        "object": "model",
        "created": 0,
        "owned_by": "google",
    }
    mocked.get(
        BASE + "/v1beta/models/unknown-x",
        json=fixture_json("gemini/error_404_model_not_found.json"),
        status=404,
    )
    r = client.get("/v1/models/unknown-x", headers=AUTH)
    assert r.status_code == 404 and error_of(r)["code"] == "model_not_found"


# -- embeddings -----------------------------------------------------------------------------------

EMBED = BASE + "/v1beta/models/gemini-embedding-001:batchEmbedContents"


def embed_answer(request):
    body = json.loads(request.body)
    values = [
        [float(i), float(len(r["content"]["parts"][0]["text"]))] for i, r in enumerate(body["requests"])
    ]
    return 200, {}, json.dumps({"embeddings": [{"values": v} for v in values]})


def test_embeddings_split_over_100_per_call_in_order(client, mocked, records):
    mocked.add_callback("POST", EMBED, callback=embed_answer)
    texts = ["x" * (i + 1) for i in range(150)]
    r = client.post(
        "/v1/embeddings",
        json={"model": "gemini-embedding-001", "input": texts, "dimensions": 2, "encoding_format": "float"},
        headers=AUTH,
    )
    assert r.status_code == 200
    body = r.get_json()
    assert body["object"] == "list" and body["model"] == "gemini-embedding-001"
    assert [d["index"] for d in body["data"]] == list(range(150))
    assert [d["embedding"][1] for d in body["data"]] == [float(i + 1) for i in range(150)]
    assert body["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
    batches = [json.loads(c.request.body)["requests"] for c in mocked.calls]
    assert [len(b) for b in batches] == [100, 50]
    assert batches[0][0] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "x"}]},
        "outputDimensionality": 2,
    }
    assert records[0].model == "gemini-embedding-001"


def test_embeddings_base64_and_openai_model_names(client, mocked):
    mocked.post(EMBED, json={"embeddings": [{"values": [0.5, -1.25, 3.0]}]})
    r = client.post(
        "/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "hi", "encoding_format": "base64"},
        headers=AUTH,
    )
    data = r.get_json()["data"][0]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(data)) == (0.5, -1.25, 3.0)
    assert r.get_json()["model"] == "text-embedding-3-small"


@pytest.mark.parametrize(
    "value, needle",
    [([[1, 2, 3]], "Token arrays"), ([1, 2], "Token arrays"), ("", "empty"), ([], "non-empty")],
)
def test_embeddings_bad_input(client, mocked, value, needle):
    r = client.post("/v1/embeddings", json={"model": "gemini-embedding-001", "input": value}, headers=AUTH)
    assert r.status_code == 400 and error_of(r)["param"] == "input" and needle in error_of(r)["message"]
    assert not mocked.calls


def test_embeddings_upstream_404(client, mocked):
    mocked.post(
        BASE + "/v1beta/models/nope:batchEmbedContents",
        body=fixture_bytes("gemini/error_404_model_not_found_embed.json"),
        status=404,
    )
    r = client.post("/v1/embeddings", json={"model": "nope", "input": "x"}, headers=AUTH)
    assert r.status_code == 404 and error_of(r)["code"] == "model_not_found"


# -- images ---------------------------------------------------------------------------------------

PREDICT = BASE + "/v1beta/models/imagen-4.0-generate-001:predict"


def test_imagen_generation(client, mocked):
    image = fixture_json("gemini/imagen_predict.json")["predictions"][0]
    mocked.post(PREDICT, json={"predictions": [image, image]})
    r = client.post(
        "/v1/images/generations",
        json={"prompt": "a cat", "n": 2, "size": "1792x1024", "response_format": "b64_json"},
        headers=AUTH,
    )
    assert r.status_code == 200
    body = r.get_json()
    assert body["data"] == [{"b64_json": image["bytesBase64Encoded"]}] * 2 and body["output_format"] == "png"
    assert sent(mocked) == {
        "instances": [{"prompt": "a cat"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "16:9"},
    }


def test_image_url_format_gives_data_urls(client, mocked):
    mocked.post(PREDICT, json=fixture_json("gemini/imagen_predict.json"))
    r = client.post(
        "/v1/images/generations",
        json={"prompt": "a cat", "model": "dall-e-3", "response_format": "url"},
        headers=AUTH,
    )
    assert r.get_json()["data"][0]["url"].startswith("data:image/png;base64,iVBOR")


def test_every_image_filtered_is_a_400_content_policy_violation(client, mocked):
    mocked.post(PREDICT, json={"predictions": [{"raiFilteredReason": "Unsafe prompt."}]})
    r = client.post("/v1/images/generations", json={"prompt": "bad"}, headers=AUTH)
    assert r.status_code == 400
    error = error_of(r)
    assert error["code"] == "content_policy_violation" and "Unsafe prompt." in error["message"]


def test_gemini_image_model_draws_one_image_per_call(client, mocked):
    url = BASE + "/v1beta/models/gemini-2.5-flash-image:generateContent"
    mocked.post(url, body=fixture_bytes("gemini/image_generation.json"))
    r = client.post(
        "/v1/images/generations",
        json={"prompt": "a kitten", "model": "gemini-2.5-flash-image", "n": 2, "size": "1024x1536"},
        headers=AUTH,
    )
    assert r.status_code == 200 and len(r.get_json()["data"]) == 2
    assert r.get_json()["usage"]["input_tokens"] == 34
    assert len(mocked.calls) == 2
    assert sent(mocked)["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "2:3"},
    }


def test_image_errors(client, mocked):
    r = client.post("/v1/images/generations", json={"prompt": "x", "model": "gemini-2.5-flash"}, headers=AUTH)
    assert r.status_code == 400 and error_of(r)["param"] == "model"
    r = client.post("/v1/images/generations", json={"prompt": "x", "size": "huge"}, headers=AUTH)
    assert r.status_code == 400 and error_of(r)["param"] == "size"
    r = client.post("/v1/images/generations", json={"prompt": "x", "n": 9}, headers=AUTH)
    assert r.status_code == 400 and error_of(r)["param"] == "n"
    assert not mocked.calls
    mocked.post(
        BASE + "/v1beta/models/gemini-2.5-flash-image:generateContent",
        body=fixture_bytes("gemini/image_generation_no_image.json"),
    )
    r = client.post(
        "/v1/images/generations", json={"prompt": "x", "model": "gemini-2.5-flash-image"}, headers=AUTH
    )
    assert r.status_code == 400 and "NO_IMAGE" in error_of(r)["message"]


# -- speech ---------------------------------------------------------------------------------------

TTS = BASE + "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent"


def tts_pcm() -> bytes:
    return base64.b64decode(
        fixture_json("gemini/tts.json")["candidates"][0]["content"]["parts"][0]["inlineData"]["data"]
    )


def test_speech_wav_and_pcm(client, mocked):
    mocked.post(TTS, body=fixture_bytes("gemini/tts.json"))
    r = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "Hello", "voice": "alloy", "response_format": "wav"},
        headers=AUTH,
    )
    assert r.status_code == 200 and r.mimetype == "audio/wav"
    assert r.data[:4] == b"RIFF" and r.data[44:] == tts_pcm()
    upstream = sent(mocked)
    assert upstream["generationConfig"] == {
        "responseModalities": ["AUDIO"],
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
    }
    assert upstream["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]
    r = client.post(
        "/v1/audio/speech",
        json={
            "model": "gemini-2.5-flash-preview-tts",
            "input": "Hi",
            "voice": "puck",
            "response_format": "pcm",
        },
        headers=AUTH,
    )
    assert r.mimetype == "audio/pcm" and r.data == tts_pcm()
    assert (
        sent(mocked)["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"]
        == "Puck"
    )


def test_speech_instructions_and_speed_go_into_the_prompt(client, mocked):
    mocked.post(TTS, body=fixture_bytes("gemini/tts.json"))
    client.post(
        "/v1/audio/speech",
        json={
            "model": "tts-1",
            "input": "Good night.",
            "instructions": "Whisper softly",
            "speed": 0.5,
            "response_format": "wav",
        },
        headers=AUTH,
    )
    text = sent(mocked)["contents"][0]["parts"][0]["text"]
    assert text.startswith("Whisper softly. Speak very slowly.") and text.endswith("\nGood night.")


@pytest.mark.parametrize(
    "fmt, magic",
    [
        ("mp3", (b"ID3", b"\xff\xf3", b"\xff\xfb")),
        ("flac", (b"fLaC",)),
        ("opus", (b"OggS",)),
        ("aac", (b"\xff\xf1", b"\xff\xf9")),
    ],
)
def test_speech_encoded_formats(client, mocked, fmt, magic):
    mocked.post(TTS, body=fixture_bytes("gemini/tts.json"))
    r = client.post(
        "/v1/audio/speech", json={"model": "tts-1", "input": "Hello", "response_format": fmt}, headers=AUTH
    )
    assert r.status_code == 200 and r.data.startswith(magic)


def test_speech_bad_requests(client, mocked):
    for body, param in [
        ({"model": "tts-1", "input": "x", "response_format": "midi"}, "response_format"),
        ({"model": "tts-1", "input": "x", "voice": "darth"}, "voice"),
        ({"model": "gemini-2.5-flash", "input": "x"}, "model"),
        ({"model": "tts-1", "input": ""}, "input"),
        ({"model": "tts-1", "input": "x", "speed": 9}, "speed"),
    ]:
        r = client.post("/v1/audio/speech", json=body, headers=AUTH)
        assert r.status_code == 400 and error_of(r)["param"] == param, (body, r.data)
    assert (
        "wav"
        in error_of(
            client.post(
                "/v1/audio/speech",
                json={"model": "tts-1", "input": "x", "response_format": "midi"},
                headers=AUTH,
            )
        )["message"]
    )
    assert not mocked.calls


def test_speech_sse_stream_format(client, mocked):
    mocked.post(TTS, body=fixture_bytes("gemini/tts.json"))
    r = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "Hi", "response_format": "pcm", "stream_format": "sse"},
        headers=AUTH,
    )
    events = sse_payloads(r.data)
    assert [e["type"] for e in events] == ["speech.audio.delta", "speech.audio.done"]
    assert base64.b64decode(events[0]["audio"]) == tts_pcm() and events[1]["usage"]["input_tokens"] == 9


def test_speech_voice_object(client, mocked):
    mocked.post(TTS, body=fixture_bytes("gemini/tts.json"))
    r = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "input": "Hi", "voice": {"id": "ash"}, "response_format": "pcm"},
        headers=AUTH,
    )
    assert r.status_code == 200
    assert (
        sent(mocked)["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"]
        == "Charon"
    )
    r = client.post(CHAT, json={**HELLO, "modalities": ["audio"], "audio": {"voice": 7}}, headers=AUTH)
    assert r.status_code == 400 and error_of(r)["param"] == "audio.voice"
