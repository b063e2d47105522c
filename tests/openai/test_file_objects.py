"""OpenAI file objects and ids over Gemini's files, and a file id as the part that reads it."""

import pytest

from app.errors import InvalidRequest, NotFound
from app.openai.file_objects import file_id, file_object, file_part, gemini_name, upload_type

GEMINI_FILE = {
    "name": "files/abc-123",
    "displayName": "notes.txt",
    "mimeType": "text/plain",
    "sizeBytes": "25",
    "createTime": "2026-05-28T20:26:40.123456Z",
    "expirationTime": "2026-05-30T20:26:40.123456789Z",
    "state": "ACTIVE",
    "uri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123",
}


def test_ids_map_both_ways_and_only_valid_ones_name_a_file():
    assert file_id("files/abc-123") == "file-abc-123"
    assert gemini_name("file-abc-123") == gemini_name("files/abc-123") == "files/abc-123"
    for bad in ("file-ABC", "file-", "abc", "file-a/b", "files/../x", "file-" + "a" * 41):
        with pytest.raises(NotFound):
            gemini_name(bad)


def test_a_gemini_file_is_an_openai_file_object():
    assert file_object(GEMINI_FILE, "assistants") == {
        "id": "file-abc-123",
        "object": "file",
        "bytes": 25,
        "created_at": 1780000000,
        "expires_at": 1780172800,
        "filename": "notes.txt",
        "purpose": "assistants",
        "status": "processed",
        "status_details": None,
    }
    sparse = file_object({"name": "files/x", "state": "PROCESSING", "sizeBytes": "many"}, None)
    assert sparse["filename"] == "x" and sparse["purpose"] == "user_data" and sparse["status"] == "uploaded"
    assert sparse["bytes"] == 0 and sparse["expires_at"] is None


def test_a_file_id_is_the_part_that_reads_the_file():
    assert file_part("file-abc-123", filename="scan.pdf") == {
        "fileData": {
            "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123",
            "mimeType": "application/pdf",
        }
    }
    assert file_part("files/abc-123") == {
        "fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123"}
    }
    with pytest.raises(InvalidRequest) as caught:
        file_part("file_42", param="input[0].content[1].file_id")
    assert caught.value.param == "input[0].content[1].file_id"


@pytest.mark.parametrize(
    "declared, filename, stored",
    [
        ("image/png", "a.bin", "image/png"),
        ("application/octet-stream", "report.pdf", "application/pdf"),
        (None, "notes.txt", "text/plain"),
        ("", "blob", "application/octet-stream"),
        ("Text/Plain; charset=utf-8", "x", "text/plain"),
    ],
)
def test_the_stored_type_is_the_declared_one_unless_it_says_nothing(declared, filename, stored):
    assert upload_type(declared, filename) == stored
