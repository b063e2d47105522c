"""Reading Gemini's answer parts: what kind each is, its signature, and how code and media read as Markdown."""

from __future__ import annotations

from enum import Enum


class Kind(Enum):
    THOUGHT = "thought"  # a thought summary (text with `thought: true`)
    TEXT = "text"
    FUNCTION_CALL = "function_call"
    INLINE_DATA = "inline_data"  # an image, audio or other bytes Gemini made
    FILE_DATA = "file_data"  # a file by reference
    CODE = "code"  # executableCode: code the model ran
    CODE_RESULT = "code_result"  # codeExecutionResult: what running it printed
    OTHER = "other"  # a part type newer than this list, or a bare signature


def kind(part: dict) -> Kind:
    """What a part holds; dialects switch on this, so a new part type is one edit here."""
    if "text" in part:
        return Kind.THOUGHT if part.get("thought") else Kind.TEXT
    if isinstance(part.get("functionCall"), dict):
        return Kind.FUNCTION_CALL
    if isinstance(part.get("inlineData"), dict):
        return Kind.INLINE_DATA
    if isinstance(part.get("fileData"), dict):
        return Kind.FILE_DATA
    if isinstance(part.get("executableCode"), dict):
        return Kind.CODE
    if isinstance(part.get("codeExecutionResult"), dict):
        return Kind.CODE_RESULT
    return Kind.OTHER


def candidate_parts(candidate: object) -> list[dict]:
    """A candidate's parts that are objects (a blocked candidate has none)."""
    content = candidate.get("content") if isinstance(candidate, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def signature(part: dict) -> str | None:
    """The part's own thought signature."""
    value = part.get("thoughtSignature")
    return value if isinstance(value, str) and value else None


def first_signature(parts: list[dict]) -> str | None:
    """The first signature among `parts`: Gemini puts one signature on the part that ends a step."""
    for part in parts:
        found = signature(part)
        if found:
            return found
    return None


def text_of(part: dict) -> str:
    text = part.get("text")
    return text if isinstance(text, str) else ""


# -- Markdown, for dialects whose messages are text ----------------------------------------------------


def code_markdown(part: dict) -> str | None:
    """Code the model ran, or what running it printed, as a fenced Markdown block (None: nothing to show)."""
    code = part.get("executableCode")
    if isinstance(code, dict):
        language = str(code.get("language") or "").lower().replace("language_unspecified", "")
        return f"```{language}\n{code.get('code') or ''}\n```"
    result = part.get("codeExecutionResult")
    if isinstance(result, dict):
        output = str(result.get("output") or "").rstrip()
        outcome = result.get("outcome")
        failed = outcome not in (None, "OUTCOME_OK")
        if not output and not failed:
            return None
        label = f"{outcome}\n" if failed else ""
        return f"```output\n{label}{output}\n```"
    return None


def inline_media(part: dict) -> tuple[str, str]:
    """(MIME type, base64 data) of an inlineData part."""
    blob = part.get("inlineData") or {}
    return str(blob.get("mimeType") or "application/octet-stream"), str(blob.get("data") or "")


def media_markdown(part: dict) -> str | None:
    """An image Gemini made, or a file it names, as Markdown (chat UIs render data-URI images)."""
    if isinstance(part.get("inlineData"), dict):
        mime, data = inline_media(part)
        if mime.startswith("image/"):
            return f"![image](data:{mime};base64,{data})"
        if mime.startswith("audio/"):
            return None  # audio has a field of its own where a dialect has one
        return f"[{mime} data](data:{mime};base64,{data})"
    file = part.get("fileData")
    if isinstance(file, dict) and file.get("fileUri"):
        return f"[{file.get('mimeType') or 'file'}]({file['fileUri']})"
    return None


class MarkdownText:
    """Text and Markdown blocks (code, results, media) joined into one text: each block stands in a
    paragraph of its own. `text` and `block` return what to append, so a stream can send it at once."""

    def __init__(self) -> None:
        self._wrote = False  # anything yet
        self._after_block = False  # the last thing written was a block
        self._ends_with_newline = True

    def text(self, text: str) -> str:
        if not text:
            return ""
        lead = "\n\n" if self._after_block and not text.startswith("\n") else ""
        self._after_block = False
        self._wrote = True
        self._ends_with_newline = text.endswith("\n")
        return lead + text

    def block(self, block: str) -> str:
        lead = ("\n" if self._ends_with_newline else "\n\n") if self._wrote else ""
        self._after_block = True
        self._wrote = True
        self._ends_with_newline = False
        return lead + block

    def part(self, part: dict) -> str:
        """What a text, code, result or media part adds to the text ("" for a part of another kind)."""
        if kind(part) is Kind.TEXT:
            return self.text(text_of(part))
        block = code_markdown(part) or media_markdown(part)
        return self.block(block) if block else ""
