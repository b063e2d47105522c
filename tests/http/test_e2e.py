"""Streaming modes end to end, with every dialect's official SDK: fake streams over a Gemini that takes 12 s
to answer (heartbeats seen on the wire, the stream parsed as normal), whitespace before slow whole
answers, and streams Gemini cuts before its finish reason."""

import threading
import time

import anthropic
import httpx2 as httpx
import openai
import pytest
from google import genai
from google.genai import types

from app.http.generate import QUICK_ANSWER
from tests.conftest import CLIENT_KEY

THINKING_TIME = 12  # seconds the fake Gemini takes over a whole answer
MODELS = {"openai": "gemini-2.5-flash", "anthropic": "gemini-2.5-pro", "gemini": "gemini-2.5-flash-lite"}


def answer(text: str, model: str) -> dict:
    return {
        "candidates": [
            {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13},
        "modelVersion": model,
    }


class Recording(httpx.HTTPTransport):
    """An SDK's transport that notes when each piece of a response body arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.started = 0.0
        self.pieces: list[tuple[float, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.started = time.monotonic()
        response = super().handle_request(request)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, self),
            extensions=response.extensions,
        )

    def before_content(self, marker: bytes) -> list[tuple[float, bytes]]:
        """The pieces (seconds since the request, bytes) that came before `marker`."""
        out = []
        for at, piece in self.pieces:
            if marker in piece:
                break
            out.append((at, piece))
        return out

    def arrival(self, marker: bytes) -> float:
        return next(at for at, piece in self.pieces if marker in piece)


class _Tee(httpx.SyncByteStream):
    def __init__(self, inner, recording: Recording):
        self.inner = inner
        self.recording = recording

    def __iter__(self):
        for piece in self.inner:
            self.recording.pieces.append((time.monotonic() - self.recording.started, piece))
            yield piece

    def close(self) -> None:
        self.inner.close()


def clients(gateway, recording: Recording):
    """The three official SDKs, each on its own recording transport."""
    http = httpx.Client(transport=recording, timeout=60)
    return {
        "openai": openai.OpenAI(
            base_url=gateway.url("/v1"), api_key=CLIENT_KEY, max_retries=0, http_client=http
        ),
        "anthropic": anthropic.Anthropic(
            base_url=gateway.base_url, api_key=CLIENT_KEY, max_retries=0, http_client=http
        ),
        "gemini": genai.Client(
            api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=gateway.base_url, httpx_client=http)
        ),
    }


def stream_text(dialect: str, client) -> str:
    """Ask for a stream the way each SDK's users do, and return the text the SDK assembled."""
    model = MODELS[dialect]
    if dialect == "openai":
        chunks = list(
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert chunks[-1].usage.prompt_tokens == 9  # include_usage: the last chunk, as OpenAI sends it
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
            "stop"
        ]
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    if dialect == "anthropic":
        with client.messages.stream(
            model=model, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = stream.get_final_message()
        assert message.stop_reason == "end_turn" and message.usage.input_tokens == 9
        return message.content[0].text
    chunks = list(client.models.generate_content_stream(model=model, contents="hi"))
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    return "".join(c.text or "" for c in chunks)


def whole_text(dialect: str, client) -> str:
    model = MODELS[dialect]
    if dialect == "openai":
        done = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        return done.choices[0].message.content
    if dialect == "anthropic":
        return (
            client.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": "hi"}])
            .content[0]
            .text
        )
    return client.models.generate_content(model=model, contents="hi").text


def run_all(work) -> dict:
    """`work(dialect)` for the three dialects at once; their results, or the first failure raised."""
    results: dict = {}

    def run(dialect: str) -> None:
        try:
            results[dialect] = work(dialect)
        except BaseException as exc:  # raised below, in the test
            results[dialect] = exc

    threads = [threading.Thread(target=run, args=(d,)) for d in MODELS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=THINKING_TIME + 30)
    for dialect in MODELS:
        if isinstance(results.get(dialect), BaseException):
            raise results[dialect]
    return results


# Heartbeats as each dialect writes them, and what marks the answer's arrival on the wire.
HEARTBEATS = {"openai": b": ping\n\n", "anthropic": b"event: ping", "gemini": b"\r\n"}
ANSWER = b"the whole answer"


def test_fake_streams_heartbeat_while_gemini_thinks_then_each_sdk_reads_them_as_normal(
    start_gateway, upstream
):
    gateway = start_gateway(STREAMING_MODE="fake", FAKE_STREAM_HEARTBEAT=2)
    upstream.script(
        *(
            {
                "match": f"models/{model}:generateContent",
                "delay": THINKING_TIME,
                "body": answer("Here is the whole answer.", model),
            }
            for model in MODELS.values()
        )
    )
    recordings = {dialect: Recording() for dialect in MODELS}

    def work(dialect: str) -> str:
        return stream_text(dialect, clients(gateway, recordings[dialect])[dialect])

    texts = run_all(work)
    assert texts == dict.fromkeys(MODELS, "Here is the whole answer.")
    for dialect, recording in recordings.items():
        waiting = recording.before_content(ANSWER)
        beats = sum(piece.count(HEARTBEATS[dialect]) for _, piece in waiting)
        assert beats >= 4, (dialect, waiting)  # about one every 2 s of the 12
        # The headers go after a second (a quick refusal would still get its own status), the first
        # bytes by one heartbeat later.
        assert waiting[0][0] < QUICK_ANSWER + 2 + 0.5, (dialect, waiting[0])
        gaps = [b[0] - a[0] for a, b in zip(waiting, waiting[1:], strict=False)]
        assert max(gaps) < 3, (dialect, gaps)  # never silent for long: a proxy's idle limit is safe
        assert recording.arrival(ANSWER) >= THINKING_TIME - 0.5
    openai_wait = b"".join(p for _, p in recordings["openai"].before_content(ANSWER))
    assert openai_wait.startswith(b"data: ") and b'"role":"assistant"' in openai_wait
    anthropic_wait = b"".join(p for _, p in recordings["anthropic"].before_content(ANSWER))
    assert anthropic_wait.startswith(b"event: message_start")  # before the first ping, with an estimate
    assert b'"input_tokens":0' not in anthropic_wait
    paths = sorted(c["path"].split("/models/")[1] for c in upstream.calls())
    assert paths == sorted(f"{m}:generateContent" for m in MODELS.values())  # one whole call each, no stream


def test_whole_answers_slower_than_the_keepalive_come_after_whitespace_every_sdk_reads(
    start_gateway, upstream
):
    gateway = start_gateway(NONSTREAM_KEEPALIVE=1)
    upstream.script(
        *(
            {"match": f"models/{model}:generateContent", "delay": 4, "body": answer("Slow but whole.", model)}
            for model in MODELS.values()
        )
    )
    recordings = {dialect: Recording() for dialect in MODELS}
    texts = run_all(lambda d: whole_text(d, clients(gateway, recordings[d])[d]))
    assert texts == dict.fromkeys(MODELS, "Slow but whole.")
    for dialect, recording in recordings.items():
        waiting = recording.before_content(b"{")
        assert len(waiting) >= 2 and all(piece.strip() == b"" for _, piece in waiting), (dialect, waiting)
        assert waiting[0][0] < 2  # the first byte long before Gemini's answer


@pytest.mark.parametrize("dialect", list(MODELS))
def test_a_stream_cut_before_its_finish_reason_is_an_error_in_every_sdk(gateway, upstream, dialect):
    half = answer("Half an ans", MODELS[dialect])
    del half["candidates"][0]["finishReason"]
    upstream.script({"match": ":streamGenerateContent", "events": [half]})
    client = clients(gateway, Recording())[dialect]
    expected = {
        "openai": openai.APIError,
        "anthropic": anthropic.APIStatusError,
        "gemini": genai.errors.APIError,
    }
    with pytest.raises(expected[dialect]) as caught:
        stream_text(dialect, client)
    assert "no finish reason" in str(caught.value)
