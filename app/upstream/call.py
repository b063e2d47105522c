"""What the client reads from one upstream call: its model and action, the resources it names, a cheap size,
and what a body sent as it is read must offer."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from .. import jsonx

if TYPE_CHECKING:
    from ..errors import GatewayError

# Every call on a model goes to /{version}/models/{model}:{action}: the one place the model is read.
_MODEL_CALL = re.compile(r"^(/v1(?:beta)?/models/)([A-Za-z0-9][A-Za-z0-9._\-]*):(\w+)$")
# The calls a fallback model may answer: the same request means the same thing to another model.
GENERATE_ACTIONS = frozenset(("generateContent", "streamGenerateContent"))
# The families of upstream resources a client may create through the gateway, each owned by it.
RESOURCE_PREFIXES = (
    "files/",
    "cachedContents/",
    "batches/",
    "interactions/",
    "fileSearchStores/",
    "operations/",
    "tunedModels/",
    "corpora/",
    "generatedFiles/",
)
# Fields that name an upstream resource, in camelCase or snake_case (Gemini accepts both): a file
# (also by URL, as `uri` in interactions), a cached content, a batch's input file.
_RESOURCE_FIELD = re.compile(
    rb'"(?:fileUri|file_uri|uri|fileName|file_name|cachedContent|cached_content)"\s*:\s*"([^"\\]{1,512})"'
)
# An interaction continued by id, and the file search stores a tool reads (a list of names).
_INTERACTION_FIELD = re.compile(
    rb'"(?:previous_interaction_id|previousInteractionId)"\s*:\s*"([^"\\]{1,256})"'
)
_STORES_FIELD = re.compile(rb'"(?:fileSearchStoreNames|file_search_store_names)"\s*:\s*\[([^\]]{0,4096})\]')
_STRING = re.compile(rb'"([^"\\]{1,512})"')
_RESOURCE = re.compile(r"(?:^|/)((?:files|cachedContents|fileSearchStores)/[A-Za-z0-9_-]{1,128})(?=$|[/?#:])")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
MAX_RESOURCES = 8  # looked up per call, at most
# Tokens Gemini counts for an image (and roughly per second of other media): a floor, not a bill.
_MEDIA_TOKENS = 258


class BodyStream(Protocol):
    """A request body sent as it is read (an upload): how much has gone, and why it stopped, if it
    stopped on the client's side (the client went silent or away)."""

    consumed: int
    error: GatewayError | None

    def read(self, size: int = -1) -> bytes: ...


def model_call(path: str) -> tuple[str, str] | None:
    """(model, action) of a call on a model, else None."""
    match = _MODEL_CALL.match(path)
    return (match.group(2), match.group(3)) if match else None


def with_model(path: str, model: str) -> str:
    """The same call on another model."""
    return _MODEL_CALL.sub(lambda m: f"{m.group(1)}{model}:{m.group(3)}", path)


def named_resources(body: bytes | None) -> tuple[str, ...]:
    """The resources a request body names: files/… (fileUri, uri, fileName), cachedContents/…,
    fileSearchStores/… (fileSearchStoreNames) and interactions/… (previous_interaction_id).

    Plain substring tests first, so a body that names none costs a few scans in C.
    """
    if not body:
        return ()
    files = b"files/" in body or b"cachedContents/" in body or b"fileSearchStores/" in body
    if not files and b"nteraction" not in body:
        return ()
    values: list[bytes] = []
    if files:
        values += _RESOURCE_FIELD.findall(body)
        for names in _STORES_FIELD.findall(body):
            values += _STRING.findall(names)
    found: list[str] = []
    for value in _INTERACTION_FIELD.findall(body):  # first: the conversation decides the key
        text = value.decode("utf-8", "replace").removeprefix("interactions/")
        if _ID.match(text) and "interactions/" + text not in found:
            found.append("interactions/" + text)
    for value in values:
        match = _RESOURCE.search(value.decode("utf-8", "replace"))
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return tuple(found[:MAX_RESOURCES])


def estimate_prompt_tokens(body: bytes | None) -> int:
    """A cheap estimate of a request's input tokens: about four characters of text per token, and a
    floor for each media part. Read only when a quota answer needs it, never on the hot path."""
    if not body:
        return 0
    try:
        data = jsonx.loads(body)
    except jsonx.JSONDecodeError:
        return len(body) // 4
    return estimate_tokens(data)


def estimate_tokens(data: object) -> int:
    """`estimate_prompt_tokens` of a request already read (a dialect's Gemini request)."""
    chars, media = _measure(data)
    return chars // 4 + media * _MEDIA_TOKENS


def _measure(node: object) -> tuple[int, int]:
    chars = media = 0
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, dict):
            for name, value in item.items():
                if name in ("inlineData", "inline_data", "fileData", "file_data"):
                    media += 1  # its base64 bytes are not text tokens
                elif name not in ("thoughtSignature", "thought_signature"):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return chars, media
