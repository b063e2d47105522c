"""The fault matrix end to end: each dialect, whole and streamed, against a failing Gemini.

Real gunicorn + gevent gateway, the scriptable fake upstream, short timeouts. Before the first byte
a fault is retried on another key (or ends in a clear error in the dialect's shape); after it, the
client gets the events so far, once and in order, then one in-stream error event, and the stream ends.
"""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import UPSTREAM_KEYS, fixture_json, free_port
from tests.reliability.wire import (
    STREAMS,
    VARIANTS,
    WHOLE,
    Variant,
    assert_error_shape,
    chunk,
    expected_status,
    read,
)

COOLDOWN = 1.0  # KEY_COOLDOWN, and the RetryInfo delay of the scripted 429s
TIMEOUT = 0.5  # UPSTREAM_TIMEOUT and STREAM_IDLE_TIMEOUT
BACKOFF_MAX = 0.2
SETTINGS = {
    "KEY_COOLDOWN": COOLDOWN,
    "UPSTREAM_RETRIES": 2,
    "UPSTREAM_BACKOFF": 0.05,
    "UPSTREAM_BACKOFF_MAX": BACKOFF_MAX,
    "UPSTREAM_TIMEOUT": TIMEOUT,
    "STREAM_IDLE_TIMEOUT": TIMEOUT,
    "UPSTREAM_CONNECT_TIMEOUT": 0.3,
    "HEARTBEAT_INTERVAL": 0.2,  # as in production: heartbeats flow while upstream is silent
}
ATTEMPTS = SETTINGS["UPSTREAM_RETRIES"] + 1
TEXTS = ["alpha ", "beta ", "gamma ", "delta ", "epsilon"]
EVENTS = [chunk(t) for t in TEXTS[:-1]] + [chunk(TEXTS[-1], finish="STOP")]
FULL = "".join(TEXTS)
ANSWER = chunk(FULL, finish="STOP")
ids = [v.name for v in VARIANTS]


@pytest.fixture(scope="module")
def gw(start_gateway):
    return start_gateway(**SETTINGS)


@pytest.fixture
def fake(upstream, gw):
    """The fake upstream, reset, and every key healthy again for every model (cooldowns from an
    earlier test ended)."""
    wait_for_healthy_keys(gw)
    yield upstream


def wait_for_healthy_keys(gw, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        keys = requests.get(gw.url("/healthz"), timeout=5).json()["upstream_keys"]
        if (keys["healthy"] == keys["total"] and not keys["models"]) or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def answer_of(variant: Variant, **extra) -> dict:
    """A scripted good answer for the variant's upstream action."""
    if variant.stream:
        return {"match": variant.action, "events": EVENTS, **extra}
    return {"match": variant.action, "body": ANSWER, **extra}


def all_at_once(variants, fn):
    """fn(variant) for every variant concurrently (slow faults cost their time once, not six times)."""
    with ThreadPoolExecutor(len(variants)) as pool:
        return dict(zip([v.name for v in variants], pool.map(fn, variants), strict=False))


def assert_ok(variant: Variant, response: requests.Response, text: str = FULL) -> None:
    assert response.status_code == 200, response.text[:500]
    reading = read(variant, response)
    assert reading.error is None, reading.error
    assert reading.text == text and reading.finished


def assert_error(
    variant: Variant, response: requests.Response, status: int, overloaded: bool = False
) -> dict:
    assert response.status_code == expected_status(variant, status, overloaded), response.text[:500]
    body = response.json()
    assert_error_shape(variant, body, response.status_code)
    return body


def retry_info(seconds: float) -> dict:
    body = fixture_json("gemini/error_429_resource_exhausted.json")
    for detail in body["error"]["details"]:
        if detail["@type"].endswith("RetryInfo"):
            detail["retryDelay"] = f"{seconds}s"
    return body


BARE_429 = fixture_json("gemini/error_429_resource_exhausted_bare.json")


# -- 429: some keys, then every key ---------------------------------------------------------------


@pytest.mark.parametrize(
    "throttled, with_retry_info", [(1, True), (2, False)], ids=["1-of-3-retryinfo", "2-of-3-bare"]
)
def test_throttled_keys_are_skipped_until_their_cooldown_ends(gw, fake, throttled, with_retry_info):
    hot = UPSTREAM_KEYS[:throttled]
    body = retry_info(COOLDOWN) if with_retry_info else BARE_429
    fake.script(
        *({"key": key, "status": 429, "body": body, "repeat": -1} for key in hot),
        *(answer_of(v, repeat=-1) for v in (VARIANTS[0], VARIANTS[1])),
    )  # a good whole answer, and stream

    started = time.monotonic()  # no cooldown can have begun before this
    first = all_at_once(VARIANTS, lambda v: v.post(gw))
    for variant in VARIANTS:
        assert_ok(variant, first[variant.name])
        calls = variant.calls(fake.calls())
        assert calls[-1]["key"] not in hot and all(c["key"] in hot for c in calls[:-1])
    seen = len(fake.calls())
    for variant in VARIANTS:  # while they cool down, the throttled keys are not even tried
        assert variant.post(gw).status_code == 200
    assert time.monotonic() - started < COOLDOWN, "too slow to observe the cooldown"
    assert not [c for c in fake.calls()[seen:] if c["key"] in hot]

    time.sleep(max(0.0, COOLDOWN - (time.monotonic() - started)) + 0.1)
    fake.reset()
    for _ in range(2):
        for variant in VARIANTS:
            assert variant.post(gw).status_code == 200
    used = {c["key"] for c in fake.calls()}
    assert set(hot) <= used, "a key whose cooldown ended is used again"


def test_every_key_throttled_answers_429_with_retry_after(gw, fake):
    fake.script({"status": 429, "body": retry_info(COOLDOWN), "repeat": -1})
    answers = all_at_once(VARIANTS, lambda v: v.post(gw))
    for variant in VARIANTS:
        response = answers[variant.name]
        assert_error(variant, response, 429)
        assert 1 <= int(response.headers["Retry-After"]) <= 2
    assert len({c["key"] for c in fake.calls()}) == len(UPSTREAM_KEYS)
    # While every key cools down, the gateway answers 429 itself, without calling Gemini.
    seen = len(fake.calls())
    for variant in VARIANTS:
        response = variant.post(gw)
        assert_error(variant, response, 429)
        assert int(response.headers["Retry-After"]) >= 1
    assert len(fake.calls()) == seen
    fake.reset()
    wait_for_healthy_keys(gw)
    for variant in VARIANTS:
        assert variant.post(gw).status_code == 200


# -- before the first byte: retried on another key, or a clear error after the budget --------------

ONE_SHOT = {
    "503": {"status": 503, "body": fixture_json("gemini/error_503_unavailable.json")},
    "500": {"status": 500, "body": fixture_json("gemini/error_500_internal.json")},
    "reset": {"fault": "reset"},
    "stall": {"fault": "stall"},
}


@pytest.mark.parametrize("fault", list(ONE_SHOT))
@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
def test_a_fault_before_the_first_byte_is_retried_on_another_key(gw, fake, variant, fault):
    fake.script({"match": variant.action, **ONE_SHOT[fault]}, answer_of(variant))
    assert_ok(variant, variant.post(gw))
    first, second = variant.calls(fake.calls())
    assert first["key"] != second["key"]


@pytest.mark.parametrize("fault", ["headers-then-reset", "headers-then-stall"])
@pytest.mark.parametrize("variant", STREAMS, ids=[v.name for v in STREAMS])
def test_a_stream_that_breaks_before_its_first_event_is_reopened(gw, fake, variant, fault):
    kind = "reset_after" if fault.endswith("reset") else "stall_after"
    fake.script(
        {"match": variant.action, "events": EVENTS, "prelude": ": opening\n\n", "fault": kind, "after": 0},
        answer_of(variant),
    )
    assert_ok(variant, variant.post(gw))
    first, second = variant.calls(fake.calls())
    assert first["key"] != second["key"]


@pytest.mark.parametrize("variant", WHOLE, ids=[v.name for v in WHOLE])
def test_a_whole_answer_cut_short_is_retried(gw, fake, variant):
    fake.script({"match": variant.action, "body": ANSWER, "fault": "truncate"}, answer_of(variant))
    assert_ok(variant, variant.post(gw))
    assert len(variant.calls(fake.calls())) == 2


STORMS = {
    "503": ({"status": 503, "body": fixture_json("gemini/error_503_high_demand.json")}, 503, True),
    "500": ({"status": 500, "body": fixture_json("gemini/error_500_internal.json")}, 500, False),
    "reset": ({"fault": "reset"}, 503, False),  # unreachable, not overloaded: no 529 for Anthropic
    "stall": ({"fault": "stall"}, 504, False),
}


@pytest.mark.parametrize("storm", list(STORMS))
def test_a_storm_ends_in_a_clear_error_after_the_retry_budget(gw, fake, storm):
    script, status, overloaded = STORMS[storm]
    fake.script({**script, "repeat": -1})

    def call(variant):
        started = time.monotonic()
        response = variant.post(gw)
        return response, time.monotonic() - started

    answers = all_at_once(VARIANTS, call)
    per_attempt = TIMEOUT if storm == "stall" else 0.1
    for variant in VARIANTS:
        response, elapsed = answers[variant.name]
        assert_error(variant, response, status, overloaded)
        calls = variant.calls(fake.calls())
        assert len(calls) == ATTEMPTS, [c["key"] for c in calls]
        assert all(a["key"] != b["key"] for a, b in zip(calls, calls[1:], strict=False)), (
            "each retry prefers another key"
        )
        # Capped backoff: the whole budget costs at most its attempts plus the capped waits.
        assert elapsed < ATTEMPTS * per_attempt + (ATTEMPTS - 1) * BACKOFF_MAX + 1.0, elapsed


# -- after the first byte: no retry, nothing twice, an in-stream error, a clean end -----------------

AFTER_FIRST_BYTE = {
    "reset": ({"fault": "reset_after", "after": 2}, 503),
    "stall": ({"fault": "stall_after", "after": 2}, 504),
    "error-event": ({"events": EVENTS[:2] + [fixture_json("gemini/error_503_unavailable.json")]}, 503),
    "error-trailer": (
        {
            "events": EVENTS[:2],
            "trailer": json.dumps(fixture_json("gemini/error_500_internal.json"), indent=2),
        },
        500,
    ),
    "garbage-event": (
        {"events": EVENTS[:2], "raw_events": [json.dumps(e) for e in EVENTS[:2]] + ["{not json"]},
        503,
    ),
}


@pytest.mark.parametrize("fault", list(AFTER_FIRST_BYTE))
@pytest.mark.parametrize("variant", STREAMS, ids=[v.name for v in STREAMS])
def test_a_fault_after_the_first_byte_ends_the_stream_with_an_error_event(gw, fake, variant, fault):
    script, status = AFTER_FIRST_BYTE[fault]
    fake.script({"match": variant.action, "events": EVENTS, **script})
    response = variant.post(gw)  # reads the whole body: a stream that does not end cleanly raises here
    assert response.status_code == 200
    reading = read(variant, response)
    assert reading.text == "".join(TEXTS[:2]), "the events before the fault, once each and in order"
    assert reading.error is not None and not reading.after_error, "one error event, and nothing after it"
    assert_error_shape(variant, reading.error, 503 if status == 503 and variant.dialect == "gemini" else None)
    if variant.dialect == "gemini":
        assert reading.error["error"]["code"] == status
    assert len(variant.calls(fake.calls())) == 1, "no retry once the client has bytes"


# -- Gemini unreachable: refused, or no answer to the connect ---------------------------------------


@pytest.fixture(scope="module")
def refusing_gateway(start_gateway):
    port = free_port()  # nothing listens there: every connect is refused at once
    return start_gateway(GEMINI_BASE_URL=f"http://127.0.0.1:{port}", **SETTINGS)


@pytest.fixture(scope="module")
def full_backlog():
    """A loopback port whose accept queue is full: a connect there waits for an answer that never comes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname())  # takes the one place in the queue
    yield server.getsockname()[1]
    filler.close()
    server.close()


@pytest.fixture(scope="module")
def unanswering_gateway(start_gateway, full_backlog):
    return start_gateway(GEMINI_BASE_URL=f"http://127.0.0.1:{full_backlog}", **SETTINGS)


def test_connection_refused_is_retried_then_a_clear_error(refusing_gateway):
    def call(variant):
        started = time.monotonic()
        return variant.post(refusing_gateway), time.monotonic() - started

    for variant, (response, elapsed) in zip(VARIANTS, all_at_once(VARIANTS, call).values(), strict=False):
        body = assert_error(variant, response, 503)  # unreachable, not overloaded (no 529 for Anthropic)
        assert "Could not reach Gemini: 127.0.0.1:" in json.dumps(body)
        assert "refused the connection" in json.dumps(body)
        assert elapsed < (ATTEMPTS - 1) * BACKOFF_MAX + 1.0


def test_connect_timeout_is_retried_then_a_clear_error(unanswering_gateway):
    def call(variant):
        started = time.monotonic()
        return variant.post(unanswering_gateway), time.monotonic() - started

    for variant, (response, elapsed) in zip(VARIANTS, all_at_once(VARIANTS, call).values(), strict=False):
        assert_error(variant, response, 504)
        assert 3 * 0.3 <= elapsed < ATTEMPTS * 0.3 + (ATTEMPTS - 1) * BACKOFF_MAX + 1.0, elapsed


# -- garbage from upstream: mapped, never a 500 -------------------------------------------------------

PNG = fixture_json("gemini/image_generation.json")["candidates"][0]["content"]["parts"][1]["inlineData"][
    "data"
]
BIG = (PNG * (1 + (3 << 19) // len(PNG)))[: (3 << 19) // 4 * 4]  # base64 of more than 1 MiB
BIG_EVENT = {
    "candidates": [
        {
            "content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": BIG}}], "role": "model"},
            "index": 0,
        }
    ]
}
USAGE_ONLY = {
    "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
    "modelVersion": "gemini-2.5-flash",
}
BLOCKED = fixture_json("gemini/prompt_blocked_safety.json")
EMPTY_TEXT = {
    "candidates": [
        {"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}
    ]
}


def garbage(variant: Variant, events: list | None = None, raw: str | None = None) -> dict:
    """The same content as a whole answer (merged) or as a stream of events."""
    if variant.stream:
        return (
            {"match": variant.action, "raw_events": [raw]}
            if raw is not None
            else {"match": variant.action, "events": events}
        )
    if raw is not None:
        return {"match": variant.action, "raw": raw}
    merged = json.loads(json.dumps(events[0]))
    for event in events[1:]:
        for key, value in event.items():
            if key == "candidates" and "candidates" in merged:
                merged["candidates"][0]["content"]["parts"] += value[0]["content"]["parts"]
                merged["candidates"][0].update({k: v for k, v in value[0].items() if k != "content"})
            else:
                merged[key] = value
    return {"match": variant.action, "body": merged}


@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
def test_invalid_json_in_a_200_is_a_clear_error(gw, fake, variant):
    fake.script(garbage(variant, raw='{"candidates": [{"content": '))
    response = variant.post(gw)
    if variant.stream:
        assert response.status_code == 200
        reading = read(variant, response)
        assert reading.error is not None and not reading.after_error
        assert_error_shape(variant, reading.error)
    else:
        assert_error(variant, response, 503, overloaded=True)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 1000])
@pytest.mark.parametrize("variant", STREAMS, ids=[v.name for v in STREAMS])
def test_frames_split_anywhere_arrive_whole(gw, fake, variant, size):
    fake.script(
        {"match": variant.action, "events": EVENTS, "fault": "split", "split_size": size, "split_pause": 0}
    )
    assert_ok(variant, variant.post(gw))


@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
def test_a_frame_over_one_mebibyte_passes(gw, fake, variant):
    fake.script(garbage(variant, [chunk("Here: "), BIG_EVENT, chunk("", finish="STOP")]))
    response = variant.post(gw)
    assert response.status_code == 200
    reading = read(variant, response)
    assert reading.error is None and reading.finished
    if variant.dialect == "gemini":
        assert BIG.encode() in response.content
    else:  # as the Markdown image chat UIs render (an image block too, in a whole Anthropic message)
        assert (
            reading.text == f"Here: ![image](data:image/png;base64,{BIG})"
            or reading.text.replace("\n", "") == f"Here: ![image](data:image/png;base64,{BIG})"
        )


ODD_ANSWERS = {
    "missing-candidates": [USAGE_ONLY],
    "blocked-prompt": [{**BLOCKED, **USAGE_ONLY}],
    "empty-text-part": [chunk("alpha "), EMPTY_TEXT],
    "content-not-an-object": [{"candidates": [{"content": "text", "index": 0}]}],
    "parts-not-a-list": [{"candidates": [{"content": {"parts": "text"}, "index": 0}]}],
    "feedback-not-an-object": [{"promptFeedback": "SAFETY"}],
    "part-of-another-type": [
        {
            "candidates": [
                {"content": {"parts": [None, 5, {"functionCall": "f"}, {"inlineData": "x"}]}, "index": 0}
            ]
        }
    ],
}


@pytest.mark.parametrize("answer", list(ODD_ANSWERS))
@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
def test_odd_answers_are_mapped(gw, fake, variant, answer):
    fake.script(garbage(variant, ODD_ANSWERS[answer]))
    response = variant.post(gw)
    assert response.status_code in (200, 503, 529), response.text[:300]
    reading = read(variant, response)
    if reading.error is not None:
        assert_error_shape(variant, reading.error)
        assert not reading.after_error
    else:
        assert reading.finished or (variant.dialect == "gemini" and variant.stream)
    if answer == "empty-text-part":
        assert response.status_code == 200 and reading.text == "alpha "
    if answer == "blocked-prompt" and variant.dialect != "gemini":
        assert response.status_code == 200
        reasons = json.dumps(reading.frames if variant.stream else response.json())
        assert ('"refusal"' if variant.dialect == "anthropic" else '"content_filter"') in reasons
