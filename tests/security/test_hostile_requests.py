"""Hostile requests to the OpenAI and Anthropic routes of a real server (tests/test_hostile.py does the
native ones): deep, huge, malformed, lying, oversized. Each gets a clear 4xx in the dialect's shape
naming the field at fault, and nothing reaches Gemini that should not."""

from __future__ import annotations

import base64
import json
import socket
import time

import pytest
import requests

from tests.conftest import CLIENT_KEY, fixture_json

LIMIT = 65536
OPENAI = {"Authorization": f"Bearer {CLIENT_KEY}"}
ANTHROPIC = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
CHAT = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "gemini-2.5-flash", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
ROUTES = {  # path -> (headers, a good body)
    "/v1/chat/completions": (OPENAI, CHAT),
    "/v1/embeddings": (OPENAI, {"model": "gemini-embedding-001", "input": "hi"}),
    "/v1/images/generations": (OPENAI, {"model": "imagen-4.0-generate-001", "prompt": "a cat"}),
    "/v1/audio/speech": (OPENAI, {"model": "gemini-2.5-flash-preview-tts", "input": "hi", "voice": "alloy"}),
    "/v1/messages": (ANTHROPIC, MESSAGE),
    "/v1/messages/count_tokens": (
        ANTHROPIC,
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]},
    ),
}
PNG = base64.b64decode(
    fixture_json("gemini/image_generation.json")["candidates"][0]["content"]["parts"][1]["inlineData"]["data"]
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32
ids = list(ROUTES)


@pytest.fixture(scope="module")
def gw(start_gateway):
    return start_gateway(MAX_REQUEST_BYTES=LIMIT)


def post(
    gw, path: str, body, headers: dict | None = None, content_type: str = "application/json", **kwargs
) -> requests.Response:
    headers = {**(headers if headers is not None else ROUTES[path][0]), "Content-Type": content_type}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(gw.url(path), data=data, headers=headers, timeout=10, **kwargs)


def assert_refused(
    path: str, response: requests.Response, status: int = 400, param: str | None = None
) -> dict:
    """A 4xx in the route's dialect, naming `param` when one is given."""
    assert response.status_code == status, response.text[:500]
    assert "Traceback" not in response.text
    body = response.json()
    if path.startswith("/v1/messages"):
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        kinds = {400: "invalid_request_error", 413: "request_too_large"}
        assert body["error"]["type"] == kinds[status]
        if param:
            assert param in body["error"]["message"], body
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
        if param:
            assert body["error"]["param"] == param, body
    return body


def generate_calls(upstream) -> list[dict]:
    return [
        c for c in upstream.calls() if "enerate" in c["path"] or "predict" in c["path"] or "mbed" in c["path"]
    ]


# -- the body as a whole ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ids)
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 30000 + b"]" * 30000,
        b'{"model": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}",
    ],
    ids=["deep-array", "deep-object"],
)
def test_deeply_nested_json_is_refused_without_a_crash(gw, upstream, path, body):
    response = post(gw, path, body)
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("application/json")
    assert_refused(path, response)
    assert not upstream.calls()


@pytest.mark.parametrize("path", ids)
def test_deep_nesting_inside_a_valid_body_is_refused_or_passed_whole(gw, upstream, path):
    headers, good = ROUTES[path]
    nested: object = "x"
    for _ in range(900):  # under the parser's limit, past Python's default recursion for naive walkers
        nested = {"a": nested}
    response = post(
        gw, path, {**good, "metadata": nested, "extra_body": {"google": {"thinking_config": nested}}}
    )
    assert response.status_code in (200, 400), response.text[:300]
    if response.status_code == 400:
        assert_refused(path, response)


@pytest.mark.parametrize("path", ids)
@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "\xc3\x28"}]}',
        b"\xff\xfe{\x00}\x00",
        b"\x00\x01\x02\x03",
        b'{"model": "m"',
        b"{} {}",
        b"",
        b'{"model": "gemini-2.5-flash", "messages": [], "x": NaN}',
        b'{"model": "gemini-2.5-flash", "temperature": 1e999}',
        b'{"model": "gemini-2.5-flash", "input": "\\ud800"}',
    ],
    ids=[
        "invalid-utf8",
        "utf16",
        "binary",
        "truncated",
        "two-objects",
        "empty",
        "nan",
        "inf",
        "lone-surrogate",
    ],
)
def test_malformed_bodies_are_refused(gw, upstream, path, body):
    assert_refused(path, post(gw, path, body))
    assert not upstream.calls()


@pytest.mark.parametrize("path", ids)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "image/png",
        "application/octet-stream",
    ],
)
def test_wrong_content_types_are_refused_naming_the_header(gw, upstream, path, content_type):
    assert_refused(path, post(gw, path, ROUTES[path][1], content_type=content_type), param="Content-Type")
    assert not upstream.calls()


def test_duplicate_keys_take_the_last_value(gw, upstream):
    body = (
        b'{"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "first"}], '
        b'"messages": [{"role": "user", "content": "second"}], "max_tokens": 5, "max_tokens": 7}'
    )
    for path in ("/v1/chat/completions", "/v1/messages"):
        response = post(gw, path, body)
        assert response.status_code == 200, response.text
    first, second = generate_calls(upstream)
    for call in (first, second):
        assert call["body"]["contents"] == [{"role": "user", "parts": [{"text": "second"}]}]
        assert call["body"]["generationConfig"]["maxOutputTokens"] == 7


# -- sizes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ids)
def test_a_declared_oversize_body_is_refused_before_it_is_sent(gw, upstream, path):
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\nx-api-key: {CLIENT_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(head + b'{"model": "')
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        header, _, rest = answer.partition(b"\r\n\r\n")
        length = int(
            [h for h in header.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1]
        )
        while len(rest) < length:
            rest += sock.recv(65536)
    assert header.startswith(b"HTTP/1.1 413"), header
    assert time.monotonic() - started < 3  # it did not wait for 200 MB
    body = json.loads(rest)
    if path.startswith("/v1/messages"):
        assert body["error"]["type"] == "request_too_large"
    else:
        assert body["error"]["code"] == "request_too_large"
    assert not upstream.calls()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_a_chunked_oversize_body_is_refused(gw, upstream, path):
    def chunks():
        yield b'{"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "'
        for _ in range(LIMIT // 1024 + 10):
            yield b"x" * 1024
        yield b'"}]}'

    response = requests.post(
        gw.url(path),
        data=chunks(),
        timeout=10,
        headers={**ROUTES[path][0], "Content-Type": "application/json"},
    )
    assert_refused(path, response, status=413)
    assert not upstream.calls()


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/audio/speech"]
)
def test_a_huge_string_under_the_limit_goes_through_whole(gw, upstream, path):
    headers, good = ROUTES[path]
    text = "z" * (LIMIT - 2000)
    body = dict(good)
    if "messages" in body:
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["input"] = text
    response = post(gw, path, body)
    assert response.status_code == 200, response.text[:300]
    assert text in json.dumps(generate_calls(upstream)[0]["body"])


# -- numbers ---------------------------------------------------------------------------------------------

OUT_OF_RANGE = [
    ("/v1/chat/completions", {"temperature": 1e308}, "temperature"),
    ("/v1/chat/completions", {"temperature": -0.5}, "temperature"),
    ("/v1/chat/completions", {"top_p": 1.5}, "top_p"),
    ("/v1/chat/completions", {"n": 0}, "n"),
    ("/v1/chat/completions", {"n": 10**30}, "n"),
    ("/v1/chat/completions", {"max_tokens": -1}, "max_tokens"),
    ("/v1/chat/completions", {"max_tokens": 1.5}, "max_tokens"),
    ("/v1/chat/completions", {"max_tokens": "100"}, "max_tokens"),
    ("/v1/chat/completions", {"seed": 2**40}, "seed"),
    ("/v1/chat/completions", {"temperature": "NaN"}, "temperature"),
    ("/v1/chat/completions", {"presence_penalty": 3}, "presence_penalty"),
    ("/v1/chat/completions", {"top_logprobs": 21}, "top_logprobs"),
    ("/v1/embeddings", {"dimensions": 0}, "dimensions"),
    ("/v1/images/generations", {"n": 99}, "n"),
    ("/v1/audio/speech", {"speed": 100}, "speed"),
    ("/v1/messages", {"max_tokens": 0}, "max_tokens"),
    ("/v1/messages", {"max_tokens": 10**30}, "max_tokens"),
    ("/v1/messages", {"temperature": 2.5}, "temperature"),
    ("/v1/messages", {"top_k": 2**40}, "top_k"),
    ("/v1/messages", {"top_k": -1}, "top_k"),
    ("/v1/messages", {"thinking": {"type": "enabled", "budget_tokens": -5}}, "thinking.budget_tokens"),
]


@pytest.mark.parametrize(
    "path, change, param", OUT_OF_RANGE, ids=[f"{p}-{param}" for p, _, param in OUT_OF_RANGE]
)
def test_numbers_out_of_range_are_refused_naming_the_field(gw, upstream, path, change, param):
    assert_refused(path, post(gw, path, {**ROUTES[path][1], **change}), param=param)
    assert not generate_calls(upstream)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_max_tokens_past_int32_means_no_limit(gw, upstream, path):
    response = post(gw, path, {**ROUTES[path][1], "max_tokens": 2**40})
    assert response.status_code == 200, response.text[:300]
    assert generate_calls(upstream)[0]["body"]["generationConfig"]["maxOutputTokens"] == 2**31 - 1


# -- media that lies ----------------------------------------------------------------------------------------


def openai_part(part: dict) -> dict:
    return {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, part]}]}


def anthropic_block(block: dict) -> dict:
    return {**MESSAGE, "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, block]}]}


NOT_BASE64 = ["@@@@", "not base64 at all!", "A", "=AAA", "A" * 5 + "====", "\u00e9t\u00e9"]


@pytest.mark.parametrize("data", NOT_BASE64)
@pytest.mark.parametrize(
    "where", ["image_url", "input_audio-data-url", "input_audio", "file_data-url", "file_data"]
)
def test_openai_base64_that_is_not_is_refused_naming_the_field(gw, upstream, where, data):
    path = "/v1/chat/completions"
    part, param = {
        "image_url": (
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
            "messages[0].content[1].image_url.url",
        ),
        "input_audio-data-url": (
            {"type": "input_audio", "input_audio": {"data": f"data:audio/wav;base64,{data}"}},
            "messages[0].content[1].input_audio.data",
        ),
        "input_audio": (
            {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
            "messages[0].content[1].input_audio.data",
        ),
        "file_data-url": (
            {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{data}"}},
            "messages[0].content[1].file.file_data",
        ),
        "file_data": (
            {"type": "file", "file": {"file_data": data, "filename": "a.pdf"}},
            "messages[0].content[1].file.file_data",
        ),
    }[where]
    assert_refused(path, post(gw, path, openai_part(part)), param=param)
    assert not generate_calls(upstream)


@pytest.mark.parametrize("data", NOT_BASE64)
@pytest.mark.parametrize("kind", ["image", "document"])
def test_anthropic_base64_that_is_not_is_refused_naming_the_field(gw, upstream, kind, data):
    path = "/v1/messages"
    media_type = "image/png" if kind == "image" else "application/pdf"
    block = {"type": kind, "source": {"type": "base64", "media_type": media_type, "data": data}}
    assert_refused(path, post(gw, path, anthropic_block(block)), param="messages[0].content[1].source.data")
    assert not generate_calls(upstream)


LIES = [
    ("image/png", JPEG, "image/jpeg"),
    ("image/jpeg", PNG, "image/png"),
    ("application/pdf", PNG, "image/png"),
    ("image/gif", b"%PDF-1.4\n%%EOF", "application/pdf"),
    ("text/plain", PNG, "image/png"),
]


@pytest.mark.parametrize("declared, data, real", LIES, ids=[f"{d}-is-{r}" for d, _, r in LIES])
def test_data_urls_with_lying_mime_types_reach_gemini_as_what_they_are(gw, upstream, declared, data, real):
    encoded = base64.b64encode(data).decode()
    post(
        gw,
        "/v1/chat/completions",
        openai_part({"type": "image_url", "image_url": {"url": f"data:{declared};base64,{encoded}"}}),
    ).raise_for_status()
    post(
        gw,
        "/v1/messages",
        anthropic_block(
            {"type": "image", "source": {"type": "base64", "media_type": declared, "data": encoded}}
        ),
    ).raise_for_status()
    for call in generate_calls(upstream):
        (blob,) = [p["inlineData"] for p in call["body"]["contents"][0]["parts"] if "inlineData" in p]
        assert blob == {"mimeType": real, "data": encoded}
