"""OpenAI image and file inputs, and the images in assistant text, as Gemini parts: one reading for chat
completions and the Responses API."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator

from ..translate.media import Fetch, parse_data_url, url_part
from .file_objects import file_part as uploaded_file_part

GEMINI_FILES = ("https://generativelanguage.googleapis.com/", "gs://")
# Images this gateway returned as Markdown data URIs come back in assistant history; as text, the
# base64 would cost far more tokens than the image itself, so they go back to Gemini as images.
_IMAGE_LINK = "](data:image/"
_DATA_IMAGE_LINK = re.compile(r"\]\((data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=]+)\)")
_YOUTUBE = re.compile(r"^https?://(www\.|m\.)?(youtube\.com|youtu\.be)/", re.I)


def media_part(url: str, param: str, fetch: Fetch) -> dict:
    """Gemini file and YouTube URLs go by reference, https URLs too when `fetch` passes them to Gemini
    (MEDIA_URLS); everything else inline (data URL or fetched)."""
    if url.startswith(GEMINI_FILES) or _YOUTUBE.match(url):
        return {"fileData": file_reference(url, None)}
    return url_part(fetch, url, param=param)


def file_reference(uri: str, filename: str | None) -> dict:
    """Gemini's fileData for a file URI, with the MIME type its name suggests."""
    data = {"fileUri": uri}
    mime = mimetypes.guess_type(filename or uri)[0]
    if mime and not _YOUTUBE.match(uri):
        data["mimeType"] = mime
    return data


def base64_part(data: str, mime: str, param: str) -> dict:
    """Bare base64 as inlineData, checked here: Gemini's refusal would name its own field, not the client's."""
    return parse_data_url(f"data:{mime};base64,{data}", param=param)


def file_part(file: dict, param: str, fetch: Fetch, *, url_field: str | None = None) -> dict:
    """A file given as `file_data` (a data URL, or base64 named by `filename`), a `file_id` (one from
    /v1/files, 'file-...', or Gemini's 'files/...'), or, where the API has one, a URL in `url_field`.
    `param` names the file object."""
    data = file.get("file_data")
    if isinstance(data, str):
        if data.startswith("data:"):
            return {"inlineData": fetch(data, param=f"{param}.file_data")}
        mime = mimetypes.guess_type(file.get("filename") or "")[0] or "application/pdf"
        return {"inlineData": base64_part(data, mime, f"{param}.file_data")}
    url = file.get(url_field) if url_field else None
    if isinstance(url, str):
        return media_part(url.strip(), f"{param}.{url_field}", fetch)
    file_id = file["file_id"]
    if file_id.startswith(GEMINI_FILES):
        return {"fileData": file_reference(file_id, file.get("filename"))}
    return uploaded_file_part(file_id, filename=file.get("filename"), param=f"{param}.file_id")


def text_with_images(text: str) -> list[dict]:
    """An assistant text as Gemini parts: Markdown data-URI images it holds become image parts."""
    if not text:
        return []
    if _IMAGE_LINK not in text:
        return [{"text": text}]
    parts: list[dict] = []
    pos = 0
    for start, data_url, end in _markdown_images(text):
        before = text[pos:start].strip("\n")
        if before:
            parts.append({"text": before})
        header, _, data = data_url.partition(",")
        parts.append({"inlineData": {"mimeType": header[5:].split(";", 1)[0], "data": data}})
        pos = end
    rest = text[pos:].strip("\n")
    if rest:
        parts.append({"text": rest})
    return parts


def _markdown_images(text: str) -> Iterator[tuple[int, str, int]]:
    """(start, data URL, end) of each `![alt](data:image/...;base64,...)` in `text`, as a regex search for
    them would find them, in linear time: a regex starting at every `![` would rescan the rest of a line
    from each one (80 KB of `![` took seconds)."""
    pos = 0  # where the previous image ended
    previous = 0  # the previous `](data:image/`: no alt text spans it
    at = text.find(_IMAGE_LINK)
    while at >= 0:
        # The alt text holds no `]` or newline: it starts after the last of them before this link.
        barrier = max(text.rfind("]", previous, at), text.rfind("\n", previous, at))
        start = text.find("![", max(pos, barrier + 1), at)
        link = _DATA_IMAGE_LINK.match(text, at) if start >= 0 else None
        if link:
            yield start, link.group(1), link.end()
            pos = link.end()
        previous = at
        at = text.find(_IMAGE_LINK, at + 1)
