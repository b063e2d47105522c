"""Gemini's resources end to end: google-genai, unmodified, against gunicorn and a fake Gemini whose keys own
what they create (another key gets Gemini's 403). Three upstream keys rotate, so only affinity makes a
second call on a resource reach the key that holds it; a second client never sees the first's."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import pytest
import requests

from tests.conftest import CLIENT_KEY, ROOT, SEED_KEY, UPSTREAM_KEYS

MODEL = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def native(start_gateway):
    """One gateway for this module: three keys, rotation, a short idle limit for uploads."""
    return start_gateway(STREAM_IDLE_TIMEOUT=5)


def genai_client(gateway, key=CLIENT_KEY, version=None):
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=gateway.base_url, api_version=version)
    return genai.Client(api_key=key, http_options=options)


def held(upstream) -> dict:
    """Each resource the fake holds, and the index of the key that created it."""
    found = requests.get(upstream.base_url + "/_resources", timeout=5).json()
    return {name: UPSTREAM_KEYS.index(key) for name, key in found.items()}


def usage_rows(gateway) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "app.usage", "export", "--format", "jsonl"],
        cwd=ROOT,
        env=gateway.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def not_found(call) -> None:
    """The call fails with 404, as google-genai reports it (its Interactions client has its own errors)."""
    from google import genai
    from google.genai import _interactions_errors

    with pytest.raises((genai.errors.ClientError, _interactions_errors.NotFoundError)) as caught:
        call()
    assert getattr(caught.value, "code", None) == 404 or caught.value.status_code == 404, caught.value


@pytest.mark.parametrize("version", [None, "v1beta"])  # google-genai's default (v1), and v1beta
def test_files_upload_get_list_and_generate_on_the_key_that_holds_them(native, upstream, version):
    alice, bob = genai_client(native, version=version), genai_client(native, SEED_KEY, version)
    uploaded = alice.files.upload(
        file=io.BytesIO(b"The secret word is heron."),
        config={"mime_type": "text/plain", "display_name": "a.txt"},
    )
    assert (
        uploaded.name.startswith("files/") and uploaded.display_name == "a.txt" and uploaded.size_bytes == 25
    )
    key = held(upstream)[uploaded.name]
    for _ in range(3):  # rotation alone would reach another key, which Gemini refuses
        assert alice.files.get(name=uploaded.name).sha256_hash == uploaded.sha256_hash
        reply = alice.models.generate_content(model=MODEL, contents=[uploaded, "What is the secret word?"])
        assert reply.text
    calls = [c for c in upstream.calls() if uploaded.name.split("/")[1] in json.dumps(c)]
    assert {UPSTREAM_KEYS.index(c["key"]) for c in calls if c["key"]} == {key}
    assert [f.name for f in alice.files.list()] == [uploaded.name]

    # Another client: the file does not exist for it, and nothing of it reaches Gemini.
    before = len(upstream.calls())
    not_found(lambda: bob.files.get(name=uploaded.name))
    not_found(lambda: bob.files.delete(name=uploaded.name))
    not_found(
        lambda: bob.models.generate_content(model=MODEL, contents=[uploaded, "What is the secret word?"])
    )
    assert list(bob.files.list()) == []
    assert len(upstream.calls()) == before

    alice.files.delete(name=uploaded.name)
    not_found(lambda: alice.files.get(name=uploaded.name))
    assert uploaded.name not in held(upstream)


def test_a_cache_is_used_on_its_key_and_is_nobody_elses(native, upstream):
    from google.genai import types

    alice, bob = genai_client(native), genai_client(native, SEED_KEY)
    document = alice.files.upload(file=io.BytesIO(b"long text " * 100), config={"mime_type": "text/plain"})
    cache = alice.caches.create(
        model=MODEL,
        config=types.CreateCachedContentConfig(
            contents=[
                types.Content(
                    role="user", parts=[types.Part.from_uri(file_uri=document.uri, mime_type="text/plain")]
                )
            ],
            ttl="600s",
        ),
    )
    assert cache.name.startswith("cachedContents/")
    assert held(upstream)[cache.name] == held(upstream)[document.name]  # created where its file is
    for _ in range(3):
        config = types.GenerateContentConfig(cached_content=cache.name)
        assert alice.models.generate_content(model=MODEL, contents="Summarise.", config=config).text
    assert alice.caches.get(name=cache.name).name == cache.name
    assert [c.name for c in alice.caches.list()] == [cache.name]
    updated = alice.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="1200s"))
    assert updated.expire_time > cache.expire_time

    not_found(lambda: bob.caches.get(name=cache.name))
    not_found(lambda: bob.caches.delete(name=cache.name))
    config = types.GenerateContentConfig(cached_content=cache.name)
    not_found(lambda: bob.models.generate_content(model=MODEL, contents="Summarise.", config=config))
    assert list(bob.caches.list()) == []

    alice.caches.delete(name=cache.name)
    not_found(lambda: alice.caches.get(name=cache.name))


def test_a_video_operation_and_its_videos_are_the_callers_alone(native, upstream):
    """Veo as Gemini's REST docs call it (the current google-genai only calls it on Vertex): start,
    poll the operation, then download each video, here with google-genai's files.download."""
    from google.genai import types

    def call(method, path, key=CLIENT_KEY, **kwargs):
        return requests.request(
            method, native.url(f"/v1beta/{path}"), headers={"x-goog-api-key": key}, timeout=10, **kwargs
        )

    started = call(
        "POST",
        "models/veo-3.0-generate-001:predictLongRunning",
        json={"instances": [{"prompt": "A heron lands on a pier."}], "parameters": {"sampleCount": 2}},
    )
    assert started.status_code == 200
    name = started.json()["name"]
    assert name.startswith("models/veo-3.0-generate-001/operations/")
    assert call("GET", name, SEED_KEY).status_code == 404  # another client's operation does not exist
    polls = [call("GET", name).json() for _ in range(2)]
    assert not polls[0].get("done") and polls[1]["done"]
    samples = polls[1]["response"]["generateVideoResponse"]["generatedSamples"]
    assert len(samples) == 2
    video = types.Video(uri=samples[0]["video"]["uri"])
    alice, bob = genai_client(native), genai_client(native, SEED_KEY)
    assert alice.files.download(file=video).startswith(b"\x00\x00\x00\x18ftypmp42")
    ident = samples[0]["video"]["uri"].split("/files/")[1].split(":")[0]
    download_uri = alice.files.get(name=f"files/{ident}").download_uri
    assert download_uri == native.url(f"/download/v1beta/files/{ident}:download?alt=media")
    assert [f.download_uri for f in alice.files.list() if f.name == f"files/{ident}"] == [download_uri]
    fetched = requests.get(download_uri, headers={"x-goog-api-key": CLIENT_KEY}, timeout=10)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x00\x00\x00\x18ftypmp42")
    assert held(upstream)[f"files/{ident}"] == held(upstream)[name]  # on the key that made it
    not_found(lambda: bob.files.download(file=video))
    assert call("GET", name, SEED_KEY).status_code == 404
    labels = {row["endpoint"] for row in usage_rows(native) if row["model"] == "veo-3.0-generate-001"}
    assert labels == {
        "/v1beta/models/{model}:predictLongRunning",
        "/v1beta/models/{model}/operations/{operation}",
    }


def test_a_video_request_is_checked_before_it_is_sent(native, upstream):
    url = native.url("/v1beta/models/veo-3.0-generate-001:predictLongRunning")
    headers = {"x-goog-api-key": CLIENT_KEY}
    before = len(upstream.calls())
    r = requests.post(url, json={"instances": []}, headers=headers, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "instances" in r.json()["error"]["message"]
    r = requests.post(
        url,
        json={"instances": [{"prompt": "x"}], "parameters": {"sampleCount": 9}},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 400 and "sampleCount" in r.json()["error"]["message"]
    r = requests.get(
        native.url("/v1beta/models/veo-3.0-generate-001/operations/nobody"), headers=headers, timeout=10
    )
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
    assert len(upstream.calls()) == before  # none of them reached Gemini


def test_a_batch_of_inline_requests_is_the_callers_and_its_tokens_count_once(native, upstream):
    from google.genai import types

    alice, bob = genai_client(native), genai_client(native, SEED_KEY)
    before = len(usage_rows(native))
    requests_ = [
        types.InlinedRequest(contents="Capital of France?", metadata={"key": "one"}),
        types.InlinedRequest(contents="Capital of Spain?", metadata={"key": "two"}),
    ]
    job = alice.batches.create(model=MODEL, src=requests_, config={"display_name": "capitals"})
    assert job.name.startswith("batches/") and job.state == "JOB_STATE_PENDING"
    for _ in range(3):  # finished at the first look; polled again, it is counted once
        done = alice.batches.get(name=job.name)
    assert done.state == "JOB_STATE_SUCCEEDED"
    answers = done.dest.inlined_responses
    assert len(answers) == 2 and all(a.response.text == "Paris" for a in answers)
    assert [b.name for b in alice.batches.list()] == [job.name]

    not_found(lambda: bob.batches.get(name=job.name))
    not_found(lambda: bob.batches.cancel(name=job.name))
    not_found(lambda: bob.batches.delete(name=job.name))
    assert list(bob.batches.list()) == []

    rows = [
        r
        for r in usage_rows(native)[before:]
        if r["endpoint"] == "/v1/batches/{id}" and r["client"] == "key-1"
    ]
    counted = [r for r in rows if r["prompt_tokens"]]
    assert len(rows) == 3 and len(counted) == 1  # two answers' tokens, on the first look only
    assert (
        counted[0]["prompt_tokens"] == 2 * 11
        and counted[0]["completion_tokens"] == 2
        and counted[0]["model"] == MODEL
    )
    alice.batches.delete(name=job.name)
    not_found(lambda: alice.batches.get(name=job.name))


def test_interactions_continue_on_their_key_stream_and_run_in_the_background(native, upstream):
    alice, bob = genai_client(native), genai_client(native, SEED_KEY)
    first = alice.interactions.create(model=MODEL, input="Hello")
    assert first.status == "completed" and "turn 1" in first.steps[-1].content[0].text
    second = alice.interactions.create(model=MODEL, input="And then?", previous_interaction_id=first.id)
    assert "turn 2" in second.steps[-1].content[0].text  # the key that holds the first one
    events = list(
        alice.interactions.create(model=MODEL, input="More?", previous_interaction_id=second.id, stream=True)
    )
    kinds = [e.event_type for e in events]
    assert kinds[0] == "interaction.created" and kinds[-1] == "interaction.completed"
    text = "".join(e.delta.text for e in events if e.event_type == "step.delta")
    assert "turn 3" in text
    streamed = events[0].interaction.id
    assert alice.interactions.get(id=streamed).status == "completed"

    background = alice.interactions.create(model=MODEL, input="Think hard.", background=True)
    assert background.status == "in_progress"
    statuses = [alice.interactions.get(id=background.id).status for _ in range(2)]
    assert statuses == ["in_progress", "completed"]
    assert len({held(upstream)[f"interactions/{i}"] for i in (first.id, second.id, streamed)}) == 1

    not_found(lambda: bob.interactions.get(id=first.id))
    not_found(lambda: bob.interactions.delete(id=first.id))
    not_found(lambda: bob.interactions.create(model=MODEL, input="x", previous_interaction_id=first.id))
    alice.interactions.delete(id=first.id)
    not_found(lambda: alice.interactions.get(id=first.id))

    counted = [r for r in usage_rows(native) if r["endpoint"].startswith("/v1/interactions")]
    creates = [r for r in counted if r["endpoint"] == "/v1/interactions" and r["status"] == 200]
    assert all(r["prompt_tokens"] == 11 and r["thought_tokens"] == 3 for r in creates[:3])
    polled = [r for r in counted if r["prompt_tokens"] and r["endpoint"] != "/v1/interactions"]
    assert len(polled) == 1  # the background one, once, when it was seen completed


def start_upload(gateway, size: int, headers=None, key=CLIENT_KEY):
    return requests.post(
        gateway.url("/upload/v1beta/files"),
        headers={
            "x-goog-api-key": key,
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": "text/plain",
            **(headers or {}),
        },
        json={"file": {"display_name": "notes.txt"}},
        timeout=10,
    )


def test_the_upload_url_points_at_the_gateway_and_only_its_own_ids_open_it(native, upstream):
    started = start_upload(native, 11, {"X-Forwarded-Proto": "https", "Host": "gemgate.example:8443"})
    assert started.status_code == 200 and started.headers["X-Goog-Upload-Status"] == "active"
    url = started.headers["X-Goog-Upload-URL"]  # behind a trusted proxy: its scheme, the client's Host
    assert url.startswith("https://gemgate.example:8443/upload/v1beta/files?upload_id=")
    assert "upload_protocol=resumable" in url and "googleapis" not in url
    session = url.split("upload_id=")[1].split("&")[0]
    upstream_id = upstream.calls()[-1]  # the start, as Gemini saw it
    assert upstream_id["headers"]["x-goog-upload-header-content-length"] == "11"
    assert session not in json.dumps(upstream.calls())  # the gateway's id never reaches Gemini

    chunk = native.url(f"/upload/v1beta/files?upload_id={session}&upload_protocol=resumable")
    calls = len(upstream.calls())
    forged = native.url("/upload/v1beta/files?upload_protocol=resumable&upload_id=" + "A" * 43)
    for target, headers in ((forged, {}), (chunk, {"x-goog-api-key": SEED_KEY})):  # no session; not bob's
        r = requests.post(
            target,
            headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0", **headers},
            data=b"hello world",
            timeout=10,
        )
        assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND", r.text
    assert len(upstream.calls()) == calls  # refused without calling Gemini

    query = requests.post(chunk, headers={"X-Goog-Upload-Command": "query"}, timeout=10)
    assert query.headers["X-Goog-Upload-Size-Received"] == "0"
    done = requests.post(
        chunk,
        headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
        data=b"hello world",
        timeout=10,
    )
    assert done.status_code == 200 and done.headers["X-Goog-Upload-Status"] == "final"
    name = done.json()["file"]["name"]
    assert requests.get(native.url(f"/v1beta/{name}"), headers={"x-goog-api-key": CLIENT_KEY}, timeout=10).ok
    again = requests.post(chunk, headers={"X-Goog-Upload-Command": "query"}, timeout=10)
    assert again.status_code == 404  # a finished session is forgotten
    rows = [r for r in usage_rows(native) if r["endpoint"] == "/upload/v1beta/files" and r["status"] == 200]
    assert {r["client"] for r in rows[-3:]} == {"key-1"}  # the session's client, though it sent no key


def test_multipart_and_raw_uploads_stream_through_in_one_request(native, upstream):
    boundary = "gemgate-boundary"
    body = (
        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        '{"file": {"displayName": "m.txt"}}\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nmultipart bytes\r\n--{boundary}--\r\n"
    ).encode()
    multipart = requests.post(
        native.url("/upload/v1beta/files?uploadType=multipart"),
        headers={"x-goog-api-key": CLIENT_KEY, "Content-Type": f"multipart/related; boundary={boundary}"},
        data=body,
        timeout=10,
    )
    assert multipart.status_code == 200, multipart.text
    assert (
        multipart.json()["file"]["displayName"] == "m.txt" and multipart.json()["file"]["sizeBytes"] == "15"
    )
    raw = requests.post(
        native.url("/upload/v1beta/files"),
        headers={"x-goog-api-key": CLIENT_KEY, "X-Goog-Upload-Protocol": "raw", "Content-Type": "image/png"},
        data=b"\x89PNG" + bytes(60),
        timeout=10,
    )
    assert raw.status_code == 200 and raw.json()["file"]["mimeType"] == "image/png"
    names = {multipart.json()["file"]["name"], raw.json()["file"]["name"]}
    listed = requests.get(
        native.url("/v1beta/files"), headers={"x-goog-api-key": CLIENT_KEY}, timeout=10
    ).json()
    assert names <= {f["name"] for f in listed["files"]}
    bad = requests.post(
        native.url("/upload/v1beta/files"), headers={"x-goog-api-key": CLIENT_KEY}, data=b"x", timeout=10
    )
    assert bad.status_code == 400 and "X-Goog-Upload-Protocol" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1beta/secrets"),
        ("GET", "/v1beta/files/abc:steal"),
        ("GET", "/v1beta/files/abc/permissions"),
        ("POST", "/v1beta/files:register"),
        ("GET", "/v1beta/interactions"),
        ("GET", "/download/v1beta/files/abc"),
    ],
)
def test_anything_outside_the_families_is_a_clear_404_in_geminis_shape(native, upstream, method, path):
    r = requests.request(method, native.url(path), headers={"x-goog-api-key": CLIENT_KEY}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND", r.text
    assert upstream.calls() == []


def test_openai_clients_on_shared_paths_get_openais_shape(native, upstream):
    r = requests.get(native.url("/v1/batches"), headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    assert upstream.calls() == []


def test_a_batch_create_is_never_sent_twice_once_gemini_may_have_acted(start_gateway, upstream):
    from tests.conftest import fixture_json

    native = start_gateway()  # its keys' health is changed here

    upstream.script(
        {
            "match": ":batchGenerateContent",
            "status": 500,
            "body": fixture_json("gemini/error_500_internal.json"),
        }
    )
    body = {
        "batch": {
            "inputConfig": {
                "requests": {"requests": [{"request": {"contents": [{"parts": [{"text": "x"}]}]}}]}
            }
        }
    }
    r = requests.post(
        native.url(f"/v1beta/models/{MODEL}:batchGenerateContent"),
        json=body,
        headers={"x-goog-api-key": CLIENT_KEY},
        timeout=10,
    )
    assert r.status_code == 500 and len(upstream.calls()) == 1
    upstream.reset()
    upstream.script(
        {
            "match": ":batchGenerateContent",
            "status": 429,
            "body": fixture_json("gemini/error_429_resource_exhausted_bare.json"),
        }
    )
    r = requests.post(
        native.url(f"/v1beta/models/{MODEL}:batchGenerateContent"),
        json=body,
        headers={"x-goog-api-key": CLIENT_KEY},
        timeout=10,
    )
    assert r.status_code == 200 and len(upstream.calls()) == 2  # a 429 did nothing: another key at once
    assert held(upstream)[r.json()["name"]] == UPSTREAM_KEYS.index(upstream.calls()[-1]["key"])


def test_a_batch_from_a_file_writes_a_results_file_whose_download_counts_its_tokens_once(native, upstream):
    alice, bob = genai_client(native), genai_client(native, SEED_KEY)
    before = len(usage_rows(native))
    lines = b"".join(
        json.dumps({"key": str(i), "request": {"contents": [{"parts": [{"text": f"Q{i}"}]}]}}).encode()
        + b"\n"
        for i in range(3)
    )
    source = alice.files.upload(file=io.BytesIO(lines), config={"mime_type": "application/jsonl"})
    job = alice.batches.create(model=MODEL, src=source.name)
    done = alice.batches.get(name=job.name)
    assert done.state == "JOB_STATE_SUCCEEDED" and done.dest.file_name.startswith("files/")
    results = done.dest.file_name
    for _ in range(2):
        data = alice.files.download(file=results)
        assert [
            json.loads(line)["response"]["candidates"][0]["content"]["parts"][0]["text"]
            for line in data.splitlines()
        ] == ["Paris"] * 3
    not_found(lambda: bob.files.download(file=results))
    fetched = requests.get(
        native.url(f"/download/v1beta/{results}:download?alt=media"),
        headers={"x-goog-api-key": CLIENT_KEY},
        timeout=10,
    )
    assert fetched.status_code == 200 and fetched.content == data
    assert fetched.headers["Content-Length"] == str(len(data))
    downloads = ("/v1/files/{id}:download", "/download/v1beta/files/{id}:download")
    rows = [r for r in usage_rows(native)[before:] if r["endpoint"] in downloads and r["status"] == 200]
    assert len(rows) == 3 and [r["prompt_tokens"] for r in rows] == [33, 0, 0]  # three answers, counted once


def worker_pids(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as f:
        return [int(pid) for pid in f.read().split()]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_200_mb_upload_streams_through_and_the_workers_memory_stays_flat(start_gateway, upstream, tmp_path):
    import hashlib

    gateway = start_gateway()
    (worker,) = worker_pids(gateway.proc.pid)
    alice = genai_client(gateway)
    alice.files.upload(file=io.BytesIO(b"warm up"), config={"mime_type": "text/plain"})  # code paths loaded
    before = peak_rss_mb(worker)
    big = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(big, "wb") as f:
        for i in range(200):
            block = i.to_bytes(4, "big") * (1 << 18)  # 1 MB, different each time
            f.write(block)
            digest.update(block)
    uploaded = alice.files.upload(file=big, config={"mime_type": "application/octet-stream"})
    grown = peak_rss_mb(worker) - before
    assert uploaded.size_bytes == 200 << 20
    assert (
        uploaded.sha256_hash == base64.b64encode(digest.hexdigest().encode()).decode()
    )  # every byte, in order
    print(f"worker peak RSS grew {grown:.1f} MB for a 200 MB upload")
    assert grown < 16, grown  # 8 MB chunks, read and sent 256 KB at a time: never a chunk, never the file


def test_a_file_gemini_no_longer_has_is_its_403_once_then_forgotten_and_no_key_rests(native, upstream):
    alice = genai_client(native)
    uploaded = alice.files.upload(file=io.BytesIO(b"short-lived"), config={"mime_type": "text/plain"})
    key = UPSTREAM_KEYS[held(upstream)[uploaded.name]]
    # Gone on Gemini's side (expired, or deleted behind the gateway's back).
    assert requests.delete(
        upstream.base_url + f"/v1beta/{uploaded.name}", headers={"x-goog-api-key": key}, timeout=5
    ).ok
    upstream.reset()
    r = requests.get(native.url(f"/v1beta/{uploaded.name}?key={CLIENT_KEY}"), timeout=10)
    assert r.status_code == 403 and "or it may not exist" in r.json()["error"]["message"]
    (call,) = upstream.calls()
    assert call["key"] == key and "key=" not in call["query"]  # the client's key never goes upstream
    r = requests.get(native.url(f"/v1beta/{uploaded.name}?key={CLIENT_KEY}"), timeout=10)
    assert r.status_code == 404 and len(upstream.calls()) == 1  # forgotten: not asked again
    keys = requests.get(native.url("/healthz"), timeout=5).json()["upstream_keys"]
    assert keys["healthy"] == 3 and keys["models"] == {}


def test_a_background_interaction_can_be_cancelled_by_its_creator_alone(native, upstream):
    alice, bob = genai_client(native), genai_client(native, SEED_KEY)
    running = alice.interactions.create(model=MODEL, input="Research this.", background=True)
    not_found(lambda: bob.interactions.cancel(id=running.id))
    assert alice.interactions.cancel(id=running.id).status == "cancelled"
    assert alice.interactions.get(id=running.id).status == "cancelled"


def test_file_search_stores_and_their_children_are_their_creators(native, upstream):
    alice, bob = genai_client(native), genai_client(native, SEED_KEY)
    store = alice.file_search_stores.create(config={"display_name": "manuals"})
    document = alice.files.upload(file=io.BytesIO(b"manual text"), config={"mime_type": "text/plain"})
    operation = alice.file_search_stores.import_file(
        file_search_store_name=store.name, file_name=document.name
    )
    assert operation.name.startswith(store.name + "/operations/") and operation.done
    assert alice.operations.get(operation).done
    assert alice.file_search_stores.get(name=store.name).display_name == "manuals"
    assert [s.name for s in alice.file_search_stores.list()] == [store.name]
    assert held(upstream)[store.name] == held(upstream)[document.name]  # one key holds both
    not_found(lambda: bob.file_search_stores.get(name=store.name))
    not_found(
        lambda: bob.file_search_stores.import_file(file_search_store_name=store.name, file_name=document.name)
    )
    assert list(bob.file_search_stores.list()) == []

    from google.genai import types

    before = len(upstream.calls())
    tool = types.Tool(file_search=types.FileSearch(file_search_store_names=[store.name]))
    for _ in range(3):  # a generate call naming the store goes to the key that holds it
        alice.models.generate_content(
            model=MODEL, contents="How?", config=types.GenerateContentConfig(tools=[tool])
        )
    used = {UPSTREAM_KEYS.index(c["key"]) for c in upstream.calls()[before:]}
    assert used == {held(upstream)[store.name]}
    alice.file_search_stores.delete(name=store.name)
    not_found(lambda: alice.file_search_stores.get(name=store.name))


def test_an_upload_that_goes_silent_is_abandoned_after_the_idle_limit(start_gateway, upstream):
    import socket
    import time

    gateway = start_gateway(STREAM_IDLE_TIMEOUT=1)
    url = start_upload(gateway, 100).headers["X-Goog-Upload-URL"]
    target = url.split(str(gateway.port), 1)[1]
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Goog-Upload-Command: upload, finalize\r\n"
            f"X-Goog-Upload-Offset: 0\r\nContent-Length: 100\r\n\r\n".encode()
            + b"only ten b"
        )
        started = time.monotonic()
        answer = b""
        while b"}\n" not in answer:  # the whole answer: headers, then Gemini's error shape
            answer += sock.recv(65536)
        waited = time.monotonic() - started
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "sent nothing for 1 s" in answer and 0.8 < waited < 5
