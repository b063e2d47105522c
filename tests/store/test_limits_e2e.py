"""Client limits under real concurrency (two gunicorn workers, SQLite and Redis): token limits hold because
each request's estimate is held before Gemini is called, and concurrency slots are freed however a
request ends."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.reliability.procs import hang_up, open_stream

CAROL = "carol-key-0123456789"
DAVE = "dave-key-0123456789"
CHAT = "/v1/chat/completions"
GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
PROMPT, OUTPUT = 20, 40  # the tokens Gemini reports for each answer here


def answer(text: str = "ok") -> dict:
    return {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": PROMPT,
            "candidatesTokenCount": OUTPUT,
            "totalTokenCount": PROMPT + OUTPUT,
        },
    }


@pytest.fixture
def limited(launch, backend, request, tmp_path):
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        f"keys:\n  - name: carol\n    key: {CAROL}\n    tokens_per_minute: 100\n"
        f"  - name: dave\n    key: {DAVE}\n    concurrent_requests: 2\n"
    )
    env = {"WEB_CONCURRENCY": 2, "CLIENT_KEYS_FILE": keys, "HEARTBEAT_INTERVAL": 0.2}
    if backend == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    return launch(**env)


def fire(gateway, count: int, path: str, body: dict, headers: dict) -> list[requests.Response]:
    def one(_):
        return requests.post(gateway.url(path), json=body, headers=headers, timeout=20)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_twenty_concurrent_requests_stay_within_one_estimate_of_the_token_limit(limited, upstream):
    upstream.script({"match": ":generateContent", "body": answer(), "delay": 0.5, "repeat": -1})
    body = {"model": "gemini-2.5-flash", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    estimate = len(json.dumps(body)) // 4 + 50  # the body's size in tokens, plus its own output cap
    answers = fire(limited, 20, CHAT, body, {"Authorization": f"Bearer {CAROL}"})
    served = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(served) + len(refused) == 20 and served
    assert all(r.json()["error"]["type"] == "rate_limit_error" and r.headers["Retry-After"] for r in refused)
    charged = sum(r.json()["usage"]["total_tokens"] for r in served)
    assert charged <= 100 + estimate, f"{len(served)} served, {charged} tokens in the minute"
    assert len(upstream.calls()) == len(served)


def test_a_concurrency_limit_holds_across_workers_and_every_ending_frees_its_slot(limited, upstream):
    upstream.script({"match": ":generateContent", "body": answer(), "delay": 0.6, "repeat": -1})
    dave = {"x-goog-api-key": DAVE}
    answers = fire(limited, 6, GEN, {"contents": [{"parts": [{"text": "hi"}]}]}, dave)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 200, 429, 429, 429, 429], statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert (
        "2 concurrent requests" in refused.json()["error"]["message"]
        and refused.headers["Retry-After"] == "1"
    )
    # Finished requests gave their slots back.
    assert requests.post(limited.url(GEN), json={"contents": []}, headers=dave, timeout=10).status_code in (
        200,
        400,
    )

    # Streams hold theirs until they end, also when the client hangs up mid-stream.
    upstream.reset()
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [answer("tick")],
            "count": 200,
            "interval": 0.1,
            "repeat": -1,
        }
    )
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    socks = [open_stream(limited, STREAM, body, dave, until=b"tick")[0] for _ in range(2)]
    assert requests.post(limited.url(GEN), json=body, headers=dave, timeout=10).status_code == 429
    for sock in socks:
        hang_up(sock)
    deadline = time.monotonic() + 3
    while True:
        status = requests.post(limited.url(GEN), json=body, headers=dave, timeout=10).status_code
        if status != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200
