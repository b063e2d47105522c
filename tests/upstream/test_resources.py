"""Resource families: which paths are forwarded, what they name, what answers create, for how long."""

import pytest

from app.upstream.resources import (
    FAMILIES,
    Unroutable,
    created,
    generated_videos,
    lifetime,
    model_operation_name,
    parse,
    parse_time,
    results_file,
)

NOW = 1_780_000_000.0


@pytest.mark.parametrize(
    "rest, method, resource, label, collection, action",
    [
        ("files", "GET", None, "files", True, None),
        ("files/abc-1", "GET", "files/abc-1", "files/{id}", False, None),
        ("files/abc-1", "DELETE", "files/abc-1", "files/{id}", False, None),
        ("files/abc-1:download", "GET", "files/abc-1", "files/{id}:download", False, "download"),
        ("cachedContents/c1", "PATCH", "cachedContents/c1", "cachedContents/{id}", False, None),
        ("batches/b1:cancel", "POST", "batches/b1", "batches/{id}:cancel", False, "cancel"),
        ("interactions", "POST", None, "interactions", True, None),
        ("interactions/v1_Ab-9", "GET", "interactions/v1_Ab-9", "interactions/{id}", False, None),
        (
            "interactions/v1_Ab-9/cancel",
            "POST",
            "interactions/v1_Ab-9",
            "interactions/{id}/cancel",
            False,
            "cancel",
        ),
        (
            "fileSearchStores/s1/documents/d1",
            "DELETE",
            "fileSearchStores/s1",
            "fileSearchStores/{id}/documents/{id}",
            False,
            None,
        ),
        (
            "fileSearchStores/s1/upload/operations/o1",
            "GET",
            "fileSearchStores/s1",
            "fileSearchStores/{id}/upload/operations/{id}",
            False,
            None,
        ),
        (
            "fileSearchStores/s1:importFile",
            "POST",
            "fileSearchStores/s1",
            "fileSearchStores/{id}:importFile",
            False,
            "importFile",
        ),
        (
            "tunedModels/t1:generateContent",
            "POST",
            "tunedModels/t1",
            "tunedModels/{id}:generateContent",
            False,
            "generateContent",
        ),
    ],
)
def test_forwarded_paths_name_their_resource_with_a_bounded_label(
    rest, method, resource, label, collection, action
):
    if label is None:
        with pytest.raises(Unroutable):
            parse(rest, method)
        return
    path = parse(rest, method)
    assert (path.resource, path.label, path.collection, path.action) == (resource, label, collection, action)


@pytest.mark.parametrize(
    "rest, method",
    [
        ("models", "GET"),  # the gateway's own route
        ("secrets/x", "GET"),
        ("files/abc:exfiltrate", "POST"),
        ("files/abc/permissions", "GET"),  # files have no children
        ("fileSearchStores/s/upload", "GET"),
        ("files/f/cancel", "POST"),
        ("interactions/i/cancel:cancel", "POST"),
        ("fileSearchStores/s/upload/documents", "GET"),
        ("files/../models", "GET"),
        ("files/", "GET"),
        ("files/abc", "PUT"),
        ("files/" + "a" * 200, "GET"),
        ("corpora/c/documents/d/chunks/k/x/y/z", "GET"),
    ],
)
def test_anything_else_is_unroutable(rest, method):
    with pytest.raises(Unroutable):
        parse(rest, method)


def test_an_upload_creates_its_file_until_gemini_expires_it():
    answer = {"file": {"name": "files/f1", "expirationTime": "2026-05-30T20:26:40.123456789Z"}}
    ((name, ttl),) = created(answer, NOW, 7200)
    assert name == "files/f1" and ttl == pytest.approx(parse_time("2026-05-30T20:26:40.123456Z") - NOW)


def test_creates_name_their_resource_and_a_batch_names_its_results_file():
    batch = {
        "name": "batches/b1",
        "metadata": {"state": "BATCH_STATE_SUCCEEDED", "output": {"responsesFile": "files/batch-b1"}},
    }
    assert created(batch, NOW, 7200) == [("batches/b1", FAMILIES["batches"].lifetime)]
    assert results_file(batch) == "files/batch-b1"
    assert results_file({"metadata": {"output": {"responsesFile": "batches/x"}}}) is None
    assert results_file({"metadata": {"state": "BATCH_STATE_PENDING"}}) is None
    assert created({"id": "v1_abc", "status": "completed"}, NOW, 7200, interaction=True) == [
        ("interactions/v1_abc", FAMILIES["interactions"].lifetime)
    ]
    assert created({"id": "../x"}, NOW, 7200, interaction=True) == []
    assert created({"name": "fileSearchStores/s1/operations/o1"}, NOW, 7200) == []
    assert created({"name": "files/f2"}, NOW, 7200) == [("files/f2", 7200)]  # no expiry named
    assert created({"name": "models/gemini-2.5-flash"}, NOW, 7200) == []
    assert created(["not", "an", "object"], NOW, 7200) == []


def test_a_cache_lives_until_its_expire_time_and_unknown_times_fall_back_to_the_family():
    cache = FAMILIES["cachedContents"]
    assert lifetime(cache, {"expireTime": "2026-05-28T21:26:40Z"}, NOW, 7200) == pytest.approx(3600)
    assert lifetime(cache, {"expireTime": "soon"}, NOW, 7200) == 7200  # RESOURCE_AFFINITY_TTL
    assert lifetime(FAMILIES["batches"], {}, NOW, 7200) == FAMILIES["batches"].lifetime  # until deleted
    assert lifetime(cache, {"expireTime": "2000-01-01T00:00:00Z"}, NOW, 7200) == 60.0  # never negative
    assert parse_time("2026-05-28T21:26:40.5+02:00") == pytest.approx(NOW + 3600 - 7200 + 0.5)
    assert parse_time(12) is None and parse_time("x" * 50) is None


def test_a_model_operation_is_kept_only_when_it_is_on_the_model_called():
    name = "models/veo-3.0-generate-001/operations/abc123"
    assert model_operation_name({"name": name}, "veo-3.0-generate-001") == name
    assert model_operation_name({"name": name}, "veo-2.0-generate-001") is None
    assert (
        model_operation_name({"name": "models/veo-3.0-generate-001/operations/../x"}, "veo-3.0-generate-001")
        is None
    )
    assert model_operation_name({"name": "batches/b1"}, "veo-3.0-generate-001") is None
    assert model_operation_name(["not", "a", "dict"], "m") is None


def test_the_files_a_finished_video_operation_wrote():
    samples = [
        {
            "video": {
                "uri": "https://generativelanguage.googleapis.com/v1beta/files/abc123:download?alt=media"
            }
        },
        {"video": {"uri": "https://generativelanguage.googleapis.com/v1beta/files/def456"}},
        {"video": {"uri": "gs://bucket/out.mp4"}},
        {"video": {"encoding": "video/mp4"}},
        "junk",
    ]
    answer = {"done": True, "response": {"generateVideoResponse": {"generatedSamples": samples}}}
    assert generated_videos(answer) == ["files/abc123", "files/def456"]
    assert generated_videos({"done": False}) == [] and generated_videos(None) == []
