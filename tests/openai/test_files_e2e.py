"""OpenAI's Files API end to end: the OpenAI SDK, unmodified, against gunicorn and a fake Gemini whose keys
own what they create; then a chat completion that reads the file, on the key that holds it."""

from __future__ import annotations

import io
import json

import openai
import pytest
import requests

from tests.conftest import CLIENT_KEY, SEED_KEY, UPSTREAM_KEYS

MODEL = "gemini-2.5-flash"


def sdk(gateway, key=CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url("/v1"), api_key=key, max_retries=0)


def ask(client, file_id: str):
    return client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What does the file say?"},
                    {"type": "file", "file": {"file_id": file_id}},
                ],
            }
        ],
    )


def test_files_create_list_retrieve_content_delete_and_a_chat_reads_the_file(gateway, upstream):
    alice, bob = sdk(gateway), sdk(gateway, SEED_KEY)
    made = alice.files.create(
        file=("notes.txt", io.BytesIO(b"The password is swordfish."), "text/plain"), purpose="user_data"
    )
    assert made.id.startswith("file-") and made.filename == "notes.txt" and made.bytes == 26
    assert made.purpose == "user_data" and made.status == "processed" and made.expires_at > made.created_at
    other = alice.files.create(file=("data.jsonl", io.BytesIO(b'{"a": 1}\n')), purpose="batch")
    assert other.purpose == "batch"

    gemini_name = "files/" + made.id.removeprefix("file-")
    held = requests.get(upstream.base_url + "/_resources", timeout=5).json()
    key = held[gemini_name]
    for _ in range(3):  # three keys rotate: only affinity reaches the one that holds the file
        reply = ask(alice, made.id)
        assert reply.choices[0].message.content
    sent = [c for c in upstream.calls() if c["path"].endswith(":generateContent")]
    assert {c["key"] for c in sent} == {key}
    assert all("files/" + made.id.removeprefix("file-") in json.dumps(c["body"]) for c in sent)

    assert alice.files.retrieve(made.id).filename == "notes.txt"
    assert {f.id for f in alice.files.list()} == {made.id, other.id}
    assert [f.id for f in alice.files.list(purpose="batch")] == [other.id]
    page = alice.files.list(limit=1, order="asc")
    assert [f.id for f in page.data] == [made.id] and page.has_more
    assert [f.id for f in page.get_next_page().data] == [other.id]
    with pytest.raises(openai.BadRequestError) as caught:  # Gemini keeps no readable copy of an upload
        alice.files.content(made.id)
    assert "uploaded" in caught.value.message

    # Another client: the file does not exist for it, and nothing of it reaches Gemini.
    before = len(upstream.calls())
    for call in (
        lambda: bob.files.retrieve(made.id),
        lambda: bob.files.delete(made.id),
        lambda: ask(bob, made.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert bob.files.list().data == []
    assert len(upstream.calls()) == before

    assert alice.files.delete(made.id).deleted
    with pytest.raises(openai.NotFoundError):
        alice.files.retrieve(made.id)
    alice.files.delete(other.id)
    assert alice.files.list().data == []


def test_a_batchs_results_file_is_readable_through_openais_files_api(gateway, upstream):
    from google import genai
    from google.genai import types

    native = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=gateway.base_url))
    lines = json.dumps({"key": "1", "request": {"contents": [{"parts": [{"text": "Q"}]}]}}).encode() + b"\n"
    source = native.files.upload(file=io.BytesIO(lines), config={"mime_type": "application/jsonl"})
    job = native.batches.create(model=MODEL, src=source.name)
    results = native.batches.get(name=job.name).dest.file_name
    alice = sdk(gateway)  # the same client key, in OpenAI's dialect
    body = alice.files.content("file-" + results.removeprefix("files/")).read()
    assert json.loads(body)["response"]["candidates"][0]["content"]["parts"][0]["text"] == "Paris"
    with pytest.raises(openai.NotFoundError):
        sdk(gateway, SEED_KEY).files.content("file-" + results.removeprefix("files/"))


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"purpose": "fine-tune"}, "purpose"),
        ({"purpose": "user_data", "file": ("empty.txt", io.BytesIO(b""))}, "file"),
    ],
)
def test_bad_uploads_are_400s_naming_the_field(gateway, upstream, kwargs, param):
    arguments = {"file": ("a.txt", io.BytesIO(b"x")), **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway).files.create(**arguments)
    assert caught.value.body["param"] == param
    assert upstream.calls() == []


def test_the_keys_stay_unseen(gateway, upstream):
    made = sdk(gateway).files.create(file=("a.txt", io.BytesIO(b"x")), purpose="assistants")
    text = json.dumps(made.model_dump())
    assert not any(key in text for key in UPSTREAM_KEYS) and CLIENT_KEY not in json.dumps(upstream.calls())


def test_the_responses_api_reads_an_uploaded_file_on_its_key(gateway, upstream):
    alice, bob = sdk(gateway), sdk(gateway, SEED_KEY)
    made = alice.files.create(file=("brief.txt", io.BytesIO(b"Ship on Friday.")), purpose="user_data")
    content = [{"type": "input_text", "text": "When do we ship?"}, {"type": "input_file", "file_id": made.id}]
    for _ in range(3):
        answer = alice.responses.create(
            model=MODEL, input=[{"role": "user", "content": content}], store=False
        )
        assert answer.output_text
    held = requests.get(upstream.base_url + "/_resources", timeout=5).json()
    sent = [c for c in upstream.calls() if c["path"].endswith(":generateContent")]
    assert {c["key"] for c in sent} == {held["files/" + made.id.removeprefix("file-")]}
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model=MODEL, input=[{"role": "user", "content": content}], store=False)
