"""The Responses routes through the Flask test client, with Gemini mocked by `responses`: create,
stream, stored responses and their owners, count, compact, and every error in OpenAI's shape."""

import json

import pytest

from app import create_app
from app.openai.responses.ids import encrypted_summary
from app.openai.responses.to_gemini import COMPACT_INSTRUCTION, SUMMARY_HEADING
from app.state import state_of
from tests.conftest import AUTH, BASE, SEED_KEY, fixture_bytes, make_env
from tests.openai.responses.grammar import check_stream, parse_events
from tests.openai.test_views import error_of, sent

RESPONSES = "/v1/responses"
GEN = BASE + "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = BASE + "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
COUNT = BASE + "/v1beta/models/gemini-2.5-flash:countTokens"
OTHER = {"Authorization": f"Bearer {SEED_KEY}"}
HI = {"model": "gemini-2.5-flash", "input": "Hi"}


@pytest.fixture
def records(app):
    seen = []
    state_of(app).finish = seen.append
    return seen


def create(client, mocked, body=None, answer="gemini/generate_text.json", headers=AUTH):
    mocked.post(GEN, body=fixture_bytes(answer))
    r = client.post(RESPONSES, json=body or HI, headers=headers)
    assert r.status_code == 200, r.data
    return r.get_json()


def text_answer(text: str) -> bytes:
    return json.dumps(
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
        }
    ).encode()


# -- create ---------------------------------------------------------------------------------------------


def test_create_answers_a_response_and_records_usage(client, mocked, records):
    body = create(client, mocked, {**HI, "instructions": "Be brief.", "client_metadata": {"x": "y"}})
    assert body["status"] == "completed" and body["output"][0]["content"][0]["text"] == "Paris"
    assert body["store"] is True and body["model"] == "gemini-2.5-flash"
    upstream = sent(mocked)
    assert upstream["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert "client_metadata" not in json.dumps(upstream)
    (rec,) = records
    assert rec.model == "gemini-2.5-flash" and rec.prompt_tokens == 11 and rec.status == 200


def test_stream_follows_openais_order_and_records_usage(client, mocked, records):
    mocked.post(
        STREAM,
        body=fixture_bytes("gemini/stream_thinking_include_thoughts.sse"),
        content_type="text/event-stream",
    )
    r = client.post(RESPONSES, json={**HI, "stream": True, "reasoning": {"summary": "auto"}}, headers=AUTH)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    final = check_stream(parse_events(r.data))
    assert [i["type"] for i in final["output"]] == ["reasoning", "message"]
    assert b"[DONE]" not in r.data
    assert sent(mocked)["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    (rec,) = records
    assert rec.stream and rec.thought_tokens > 0


def _with_logprobs(text: str, finish: str | None = None) -> dict:
    chosen = [{"token": t, "logProbability": -0.5} for t in text.split()]
    top = [{"candidates": [c, {"token": "x", "logProbability": -3.0}]} for c in chosen]
    candidate: dict = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "logprobsResult": {"chosenCandidates": chosen, "topCandidates": top},
    }
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}}


def test_logprobs_come_with_the_text_when_included(client, mocked):
    asked = {**HI, "include": ["message.output_text.logprobs"], "top_logprobs": 2}
    mocked.post(GEN, json=_with_logprobs("Hello there", "STOP"))
    body = client.post(RESPONSES, json=asked, headers=AUTH).get_json()
    assert sent(mocked)["generationConfig"] == {"responseLogprobs": True, "logprobs": 2}
    [content] = body["output"][0]["content"]
    assert [e["token"] for e in content["logprobs"]] == ["Hello", "there"]
    assert content["logprobs"][0]["top_logprobs"][1] == {"token": "x", "logprob": -3.0, "bytes": [120]}
    assert body["top_logprobs"] == 2

    frames = b"".join(
        b"data: " + json.dumps(e).encode() + b"\r\n\r\n"
        for e in (_with_logprobs("Hello there"), _with_logprobs(" again", "STOP"))
    )
    mocked.post(STREAM, body=frames, content_type="text/event-stream")
    r = client.post(RESPONSES, json={**asked, "stream": True}, headers=AUTH)
    events = parse_events(r.data)
    final = check_stream(events)
    deltas = [e["logprobs"] for e in events if e["type"] == "response.output_text.delta"]
    assert [[t["token"] for t in d] for d in deltas] == [["Hello", "there"], ["again"]]
    [done] = [e for e in events if e["type"] == "response.output_text.done"]
    assert [t["token"] for t in done["logprobs"]] == ["Hello", "there", "again"]
    assert final["output"][0]["content"][0]["logprobs"] == done["logprobs"]

    mocked.calls.reset()
    plain = create(client, mocked, HI)  # not included: none asked for, none shown
    assert "responseLogprobs" not in sent(mocked).get("generationConfig", {})
    assert plain["output"][0]["content"][0]["logprobs"] == []


def test_a_failure_mid_stream_is_response_failed_never_an_error_frame(client, mocked, records):
    first = fixture_bytes("gemini/stream_text.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    mocked.post(
        STREAM,
        body=first + fixture_bytes("gemini/error_503_unavailable.json"),
        content_type="text/event-stream",
    )
    r = client.post(RESPONSES, json={**HI, "stream": True}, headers=AUTH)
    assert r.status_code == 200
    events = parse_events(r.data)
    final = check_stream(events)
    assert final["status"] == "failed" and final["error"]["code"] == "server_error"
    assert final["error"]["message"] == "The model is overloaded. Please try again later."
    assert records[0].error == "overloaded"


def test_a_stream_cut_before_its_finish_reason_is_response_failed_never_completed(client, mocked, records):
    first = fixture_bytes("gemini/stream_text.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    mocked.post(STREAM, body=first, content_type="text/event-stream")
    r = client.post(RESPONSES, json={**HI, "stream": True}, headers=AUTH)
    final = check_stream(parse_events(r.data))
    assert final["status"] == "failed" and "no finish reason" in final["error"]["message"]
    assert records[0].error == "api_error"


@pytest.mark.parametrize(
    "fixture, status, type_",
    [
        ("error_429_resource_exhausted.json", 429, "rate_limit_error"),
        ("error_404_model_not_found.json", 404, "invalid_request_error"),
        ("error_400_missing_thought_signature.json", 400, "invalid_request_error"),
    ],
)
def test_gemini_errors_before_the_first_byte_are_openai_errors(client, mocked, fixture, status, type_):
    for _ in range(3 if status == 429 else 1):  # a rate limit moves to the next key
        mocked.post(STREAM, status=status, body=fixture_bytes(f"gemini/{fixture}"))
    r = client.post(RESPONSES, json={**HI, "stream": True}, headers=AUTH)
    assert r.status_code == status and error_of(r)["type"] == type_


@pytest.mark.parametrize(
    "body, param",
    [
        ({"input": "Hi"}, "model"),
        ({**HI, "input": 5}, "input"),
        ({**HI, "input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
        ({**HI, "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({**HI, "input": [{"type": "frobnicate"}]}, "input[0].type"),
        ({**HI, "input": [{"type": {"a": 1}}]}, "input[0].type"),
        ({**HI, "input": [{"type": ["message"]}]}, "input[0].type"),
        (
            {**HI, "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].image_url",
        ),
        ({**HI, "tools": [{"type": "function"}]}, "tools[0].name"),
        ({**HI, "tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type"),
        ({**HI, "tool_choice": "sometimes"}, "tool_choice"),
        ({**HI, "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({**HI, "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({**HI, "stream": "true"}, "stream"),
        ({**HI, "temperature": 3}, "temperature"),
        ({**HI, "background": True}, "background"),
        ({**HI, "conversation": "conv_1"}, "conversation"),
    ],
)
def test_bad_requests_name_the_field(client, body, param):
    r = client.post(RESPONSES, json=body, headers=AUTH)
    assert r.status_code == 400 and error_of(r)["param"] == param, r.get_json()


def test_what_clients_send_around_the_request_is_accepted(client, mocked):
    body = {
        **HI,
        "personality": "friendly",
        "prompt_cache_options": {"mode": "implicit"},
        "context_management": [{"type": "compaction"}],
        "verbosity": "low",
        "stream_options": {"include_obfuscation": False},
        "service_tier": "auto",
        "truncation": "auto",
        "include": ["reasoning.encrypted_content", "message.output_text.logprobs"],
        "prompt_cache_key": "thread-1",
        "safety_identifier": "u",
        "metadata": {"a": "b"},
        "tools": [{"type": "web_search", "external_web_access": False, "search_content_types": ["text"]}],
        "reasoning": {"effort": "max", "summary": "auto"},
        "input": [
            {"type": "message", "role": "user", "content": "Hi", "id": "msg_1"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "content": None, "encrypted_content": None},
        ],
    }
    assert create(client, mocked, body)["status"] == "completed"
    assert sent(mocked)["tools"] == [{"googleSearch": {}}]


# -- stored responses ---------------------------------------------------------------------------------------


def test_a_stored_response_is_read_back_and_deleted_by_its_key_only(client, mocked):
    body = create(client, mocked)
    path = f"{RESPONSES}/{body['id']}"
    assert client.get(path, headers=AUTH).get_json() == body
    other = client.get(path, headers=OTHER)
    assert other.status_code == 404 and body["id"] in error_of(other)["message"]
    assert client.delete(path, headers=OTHER).status_code == 404
    deleted = client.delete(path, headers=AUTH)
    assert deleted.get_json() == {"id": body["id"], "object": "response.deleted", "deleted": True}
    assert client.get(path, headers=AUTH).status_code == 404


def test_store_false_keeps_nothing_and_shows_the_signature_carrier(client, mocked):
    body = create(client, mocked, {**HI, "store": False}, answer="gemini/text_thought_signature_gemini3.json")
    assert body["store"] is False and body["output"][-1]["encrypted_content"].startswith("gg1.")
    assert client.get(f"{RESPONSES}/{body['id']}", headers=AUTH).status_code == 404


def test_stored_responses_hide_encrypted_content_unless_included(client, mocked):
    body = create(client, mocked, answer="gemini/text_thought_signature_gemini3.json")
    assert body["output"][-1]["encrypted_content"] is None
    path = f"{RESPONSES}/{body['id']}"
    shown = client.get(path + "?include[]=reasoning.encrypted_content", headers=AUTH).get_json()
    assert shown["output"][-1]["encrypted_content"].startswith("gg1.")


def test_previous_response_id_rebuilds_the_conversation_with_signatures(client, mocked):
    first = create(
        client,
        mocked,
        {**HI, "instructions": "First rules."},
        answer="gemini/text_thought_signature_gemini3.json",
    )
    signature = json.loads(fixture_bytes("gemini/text_thought_signature_gemini3.json"))["candidates"][0][
        "content"
    ]["parts"][0]["thoughtSignature"]
    second = create(client, mocked, {**HI, "input": "And then?", "previous_response_id": first["id"]})
    upstream = sent(mocked)
    assert "systemInstruction" not in upstream  # instructions are not carried over
    assert [c["role"] for c in upstream["contents"]] == ["user", "model", "user"]
    assert upstream["contents"][1]["parts"][0]["thoughtSignature"] == signature
    create(client, mocked, {**HI, "input": "Last", "previous_response_id": second["id"]})
    assert [c["role"] for c in sent(mocked)["contents"]] == ["user", "model", "user", "model", "user"]


def test_previous_response_id_of_another_key_or_unknown_is_404(client, mocked):
    first = create(client, mocked)
    for headers, previous in ((OTHER, first["id"]), (AUTH, "resp_unknown")):
        r = client.post(RESPONSES, json={**HI, "previous_response_id": previous}, headers=headers)
        assert r.status_code == 404 and error_of(r) == {
            "message": f"Previous response with id {previous!r} not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }


def test_input_items_newest_first_with_pages(client, mocked):
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    body = create(client, mocked, {**HI, "input": items})
    path = f"{RESPONSES}/{body['id']}/input_items"
    page = client.get(path + "?limit=2", headers=AUTH).get_json()
    assert [i["content"] for i in page["data"]] == ["m4", "m3"] and page["has_more"] is True
    assert page["object"] == "list" and page["first_id"] == page["data"][0]["id"]
    rest = client.get(f"{path}?limit=10&after={page['last_id']}", headers=AUTH).get_json()
    assert [i["content"] for i in rest["data"]] == ["m2", "m1", "m0"] and rest["has_more"] is False
    oldest = client.get(path + "?order=asc&limit=1", headers=AUTH).get_json()
    assert oldest["data"][0]["content"] == "m0" and oldest["data"][0]["id"].startswith("msg_")
    for query, param in (("?limit=0", "limit"), ("?order=up", "order"), ("?after=nope", "after")):
        r = client.get(path + query, headers=AUTH)
        assert r.status_code == 400 and error_of(r)["param"] == param
    assert client.get(path, headers=OTHER).status_code == 404


def test_item_reference_resolves_a_stored_item(client, mocked):
    first = create(client, mocked)
    message = first["output"][0]
    create(
        client,
        mocked,
        {
            **HI,
            "input": [{"type": "item_reference", "id": message["id"]}, {"role": "user", "content": "More"}],
        },
    )
    assert sent(mocked)["contents"][0] == {"role": "model", "parts": [{"text": "Paris"}]}
    r = client.post(
        RESPONSES, json={**HI, "input": [{"type": "item_reference", "id": "msg_nope"}]}, headers=AUTH
    )
    assert r.status_code == 404 and error_of(r)["param"] == "input[0].id"


def test_storing_off_answers_store_false(tmp_path, mocked):
    client = create_app(make_env(DATA_DIR=str(tmp_path), RESPONSES_STORE_DAYS="0")).test_client()
    body = create(client, mocked)
    assert body["store"] is False
    assert client.get(f"{RESPONSES}/{body['id']}", headers=AUTH).status_code == 404


def test_a_response_larger_than_the_keys_room_is_answered_but_not_stored(tmp_path, mocked):
    client = create_app(make_env(DATA_DIR=str(tmp_path), RESPONSES_STORE_BYTES="1024")).test_client()
    body = create(client, mocked, {**HI, "input": "x" * 200_000 + "y".join(str(i) for i in range(20000))})
    assert body["store"] is False and body["status"] == "completed"


def test_get_with_stream_is_refused_clearly(client, mocked):
    body = create(client, mocked)
    r = client.get(f"{RESPONSES}/{body['id']}?stream=true", headers=AUTH)
    assert r.status_code == 400 and error_of(r)["param"] == "stream"


# -- input tokens and compaction ------------------------------------------------------------------------


def test_input_tokens(client, mocked):
    mocked.post(COUNT, body=fixture_bytes("gemini/count_tokens.json"))
    r = client.post(f"{RESPONSES}/input_tokens", json={**HI, "instructions": "Be brief."}, headers=AUTH)
    expected = json.loads(fixture_bytes("gemini/count_tokens.json"))["totalTokens"]
    assert r.get_json() == {"object": "response.input_tokens", "input_tokens": expected}
    inner = sent(mocked)["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-flash" and inner["systemInstruction"]


def test_compact_then_continue_from_the_compaction_item(client, mocked):
    mocked.post(GEN, body=text_answer("The user wants a test for the parser."))
    conversation = [
        {"role": "developer", "content": "You are a coding agent."},
        {"role": "user", "content": "Fix the parser."},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Fixed."}]},
    ]
    r = client.post(f"{RESPONSES}/compact", json={**HI, "input": conversation}, headers=AUTH)
    body = r.get_json()
    assert body["object"] == "response.compaction" and body["usage"]["total_tokens"] == 4
    user, compaction = body["output"]
    assert user["role"] == "user" and user["content"] == "Fix the parser."
    assert compaction["type"] == "compaction" and compaction["encrypted_content"].startswith("ggc1.")
    asked = sent(mocked)
    assert (
        asked["contents"][-1]["parts"][-1] == {"text": COMPACT_INSTRUCTION}
        and "systemInstruction" not in asked
    )
    create(
        client, mocked, {**HI, "input": [*body["output"], {"role": "user", "content": "Now add the test."}]}
    )
    parts = sent(mocked)["contents"][0]["parts"]
    assert parts[1] == {"text": f"{SUMMARY_HEADING}\n\nThe user wants a test for the parser."}
    assert encrypted_summary("x") != compaction["encrypted_content"]


def test_compact_without_a_summary_is_an_upstream_error(client, mocked):
    mocked.post(GEN, body=fixture_bytes("gemini/prompt_blocked_safety.json"))
    r = client.post(f"{RESPONSES}/compact", json=HI, headers=AUTH)
    assert r.status_code == 400 and error_of(r)["code"] == "content_policy_violation"


def test_a_streamed_response_is_stored_before_its_last_event(client, mocked):
    mocked.post(STREAM, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    r = client.post(RESPONSES, json={**HI, "stream": True}, headers=AUTH)
    final = check_stream(parse_events(r.data))
    assert final["store"] is True
    assert client.get(f"{RESPONSES}/{final['id']}", headers=AUTH).get_json() == final


def test_model_aliases_apply_and_the_answer_keeps_the_clients_name(tmp_path, mocked):
    client = create_app(
        make_env(DATA_DIR=str(tmp_path), MODEL_ALIASES="gpt-5*=gemini-2.5-flash")
    ).test_client()
    body = create(client, mocked, {**HI, "model": "gpt-5-codex"})
    assert body["model"] == "gpt-5-codex"
    assert mocked.calls[0].request.url.startswith(GEN)


def test_output_replayed_as_it_came_is_accepted(client, mocked):
    mocked.post(GEN, body=fixture_bytes("gemini/function_call_thought_signature.json"))
    first = client.post(
        RESPONSES, json={**HI, "store": False, "tools": [{"type": "function", "name": "now"}]}, headers=AUTH
    )
    output = first.get_json()["output"]
    assert [i["type"] for i in output] == ["reasoning", "function_call"]
    call = output[1]
    replay = [
        {"role": "user", "content": "Hi"},
        *output,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "2027-01-01"},
    ]
    create(client, mocked, {**HI, "input": replay, "tools": [{"type": "function", "name": "now"}]})
    parts = sent(mocked)["contents"][1]["parts"]
    signature = json.loads(fixture_bytes("gemini/function_call_thought_signature.json"))["candidates"][0][
        "content"
    ]["parts"][1]["thoughtSignature"]
    assert parts == [{"functionCall": {"name": "now", "args": {}}, "thoughtSignature": signature}]


@pytest.mark.parametrize("kind", [["message"], {"a": 1}, 3])
def test_an_item_type_that_is_not_a_string_is_a_400(client, kind):
    for path in (RESPONSES, f"{RESPONSES}/input_tokens"):
        r = client.post(
            path, json={**HI, "input": [{"type": kind, "role": "user", "content": "x"}]}, headers=AUTH
        )
        assert r.status_code == 400 and error_of(r)["param"] == "input[0].type"
