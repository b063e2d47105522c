"""OpenAI's file objects and ids over Gemini's files (`file-abc` is Gemini's `files/abc`), and a file id as
the Gemini part that reads it: plain dicts in, plain dicts out."""

from __future__ import annotations

import mimetypes
import re

from ..errors import InvalidRequest, NotFound
from ..upstream.resources import parse_time

# What a client may upload a file for: the purposes whose files a chat (or a batch) reads.
PURPOSES = ("user_data", "assistants", "batch")
GEMINI_FILES = "https://generativelanguage.googleapis.com/v1beta/"
_ID = re.compile(
    r"^file-([a-z0-9][a-z0-9-]{0,39})$"
)  # Gemini's file ids: 40 lowercase letters, digits, dashes
_GEMINI_NAME = re.compile(r"^files/([a-z0-9][a-z0-9-]{0,39})$")
_STATUS = {"ACTIVE": "processed", "PROCESSING": "uploaded", "FAILED": "error"}


def file_id(gemini_name: str) -> str:
    """`files/abc` -> `file-abc`."""
    return "file-" + gemini_name.removeprefix("files/")


def gemini_name(ident: str) -> str:
    """`file-abc` (or Gemini's own `files/abc`) -> `files/abc`; 404 for an id no file can have."""
    match = _ID.match(ident) or _GEMINI_NAME.match(ident)
    if match is None:
        raise NotFound(f"No such file: {ident!r}.")
    return "files/" + match.group(1)


def file_object(gemini_file: dict, purpose: str | None) -> dict:
    """A Gemini File as OpenAI's file object."""
    name = str(gemini_file.get("name", ""))
    created = parse_time(gemini_file.get("createTime"))
    expires = parse_time(gemini_file.get("expirationTime"))
    try:
        size = int(gemini_file.get("sizeBytes") or 0)
    except (TypeError, ValueError):
        size = 0
    return {
        "id": file_id(name),
        "object": "file",
        "bytes": size,
        "created_at": int(created or 0),
        "expires_at": int(expires) if expires is not None else None,
        "filename": gemini_file.get("displayName") or name.removeprefix("files/"),
        "purpose": purpose if purpose in PURPOSES else "user_data",
        "status": _STATUS.get(str(gemini_file.get("state")), "processed"),
        "status_details": None,
    }


def file_part(ident: str, *, filename: str | None = None, param: str = "file_id") -> dict:
    """The Gemini part that reads an uploaded file: `file-abc` (or `files/abc`) as `fileData`. The
    call then goes to the key that holds the file, and only for the client that uploaded it. For the
    chat completions and Responses translators; 400 naming `param` for an id that is no file's."""
    try:
        name = gemini_name(ident)
    except NotFound:
        raise InvalidRequest(
            f"{ident!r} is not a file id: upload the file to /v1/files and use the id it answers with "
            "('file-...'), or send it inline as file_data.",
            param=param,
        ) from None
    data = {"fileUri": GEMINI_FILES + name}
    mime = mimetypes.guess_type(filename or "")[0]
    if mime:
        data["mimeType"] = mime
    return {"fileData": data}


def upload_type(declared: str | None, filename: str) -> str:
    """The MIME type to store a file under: what the client declared, unless it is the generic
    octet-stream every SDK sends by default; then the filename's; then octet-stream."""
    declared = (declared or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
