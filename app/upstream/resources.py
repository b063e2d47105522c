"""Gemini's resource families: the paths the gateway forwards, the resource each path names, what an
answer creates and for how long Gemini keeps it, and bounded route labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from .call import RESOURCE_PREFIXES

DAY = 86400.0
# Kept by Gemini until deleted: the record is kept a year, then forgotten like any other.
UNTIL_DELETED = 365 * DAY


@dataclass(frozen=True)
class Family:
    """One top-level collection of Gemini's API (`files`, `batches`...)."""

    name: str
    list_field: str | None  # the member of a list answer that holds the page; None: no list
    page_size: int  # the largest page Gemini's list serves
    children: frozenset[str] = frozenset()  # collections under one resource: documents, operations...
    # How long Gemini keeps one when its answer names no expiry; None: RESOURCE_AFFINITY_TTL (files and
    # cached contents, whose answers always name one).
    lifetime: float | None = UNTIL_DELETED
    creatable: bool = True  # POST on the collection creates one
    verbs: frozenset[str] = frozenset()  # methods written as a sub-path: interactions/{id}/cancel


FAMILIES = {
    family.name: family
    for family in (
        Family("files", "files", 100, lifetime=None, creatable=False),  # created by uploads
        Family("cachedContents", "cachedContents", 1000, lifetime=None),
        Family("batches", "operations", 100, creatable=False),  # created by models/{m}:batch...
        Family("operations", "operations", 100, creatable=False),
        Family("interactions", None, 0, lifetime=55 * DAY, verbs=frozenset({"cancel"})),  # 55 days, paid tier
        Family("fileSearchStores", "fileSearchStores", 20, frozenset({"documents", "operations", "upload"})),
        Family("tunedModels", "tunedModels", 1000, frozenset({"operations", "permissions"})),
        Family("corpora", "corpora", 20, frozenset({"documents", "chunks", "permissions", "operations"})),
        Family("generatedFiles", "generatedFiles", 100, frozenset({"operations"}), creatable=False),
    )
}
assert {f + "/" for f in FAMILIES} == set(RESOURCE_PREFIXES)

# Methods that follow a resource after a colon (`batches/{id}:cancel`): anything else is a 404.
ACTIONS = frozenset(
    (
        "download",
        "cancel",
        "importFile",
        "uploadToFileSearchStore",
        "query",
        "generateContent",
        "streamGenerateContent",
        "countTokens",
        "embedContent",
        "batchEmbedContents",
        "generateText",
        "transferOwnership",
        "batchCreate",
        "batchUpdate",
        "batchDelete",
        "updateGenerateContentBatch",
        "updateEmbedContentBatch",
    )
)
# Model calls on a tuned model, and actions that only read.
MODEL_ACTIONS = frozenset(("generateContent", "streamGenerateContent", "countTokens", "generateText"))
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_METHODS = frozenset(("GET", "POST", "PATCH", "DELETE"))


class Unroutable(ValueError):
    """A path outside the families and sub-routes the gateway forwards."""


@dataclass(frozen=True)
class ResourcePath:
    """What a forwarded path (after `/{version}/`) names."""

    family: Family
    resource: str | None  # the top-level resource (`files/abc`), whose owner may touch it all
    action: str | None  # the method after a colon (`download`, `cancel`)
    label: str  # `files/{id}:download`: ids replaced, so labels are few
    collection: bool  # the path is a collection (a list, or a create)

    @property
    def streams(self) -> bool:
        return self.action == "streamGenerateContent"


def parse(rest: str, method: str) -> ResourcePath:
    """Read `rest` (`files/abc:download`, `fileSearchStores/s/documents`); Unroutable when it is not
    a family, a resource, a known child collection or a known action, or the method is not one
    Gemini's resources take."""
    if method not in _METHODS:
        raise Unroutable(f"Method {method} is not served on resources.")
    head, colon, action = rest.partition(":")
    if colon and action not in ACTIONS:
        raise Unroutable(f"Unknown method {action!r}.")
    segments = head.split("/")
    if len(segments) > 8 or not all(_SEGMENT.match(s) for s in segments):
        raise Unroutable("Not a resource path.")
    family = FAMILIES.get(segments[0])
    if family is None:
        raise Unroutable(f"No resource family {segments[0]!r}.")
    if len(segments) == 3 and segments[2] in family.verbs and not colon:
        segments, action, colon = segments[:2], segments[2], "/"
    label = [family.name]
    i, collection = 1, True
    while i < len(segments):
        segment = segments[i]
        if not collection:  # after a resource: a child collection
            if (
                segment == "upload"
                and "upload" in family.children
                and segments[i + 1 : i + 2] == ["operations"]
            ):
                label.append("upload/operations")  # an upload's operation: `upload` has no id
                i += 1
            elif segment in family.children and segment != "upload":
                label.append(segment)
            else:
                raise Unroutable(f"No collection {segment!r} under {family.name}.")
        else:
            label.append("{id}")
        collection = not collection
        i += 1
    resource = f"{family.name}/{segments[1]}" if len(segments) > 1 else None
    text = "/".join(label) + (f"{colon}{action}" if colon else "")
    return ResourcePath(family, resource, action if colon else None, text, collection)


def created(
    answer: object, now: float, fallback: float, *, interaction: bool = False
) -> list[tuple[str, float]]:
    """The resources a create call's answer names, each with how long Gemini keeps it (in seconds from
    `now`; `fallback` where neither the answer nor the family says): its `name` (an operation's, a
    batch's), an upload's `file.name`, an `interaction`'s `id`."""
    if not isinstance(answer, dict):
        return []
    if interaction:
        ident = answer.get("id")
        if isinstance(ident, str) and _SEGMENT.match(ident):
            return [(f"interactions/{ident}", lifetime(FAMILIES["interactions"], {}, now, fallback))]
        return []
    found: list[tuple[str, float]] = []
    for entry in (answer, answer.get("file")):
        name = entry.get("name") if isinstance(entry, dict) else None
        family = _family_of(name) if isinstance(name, str) else None
        if family is not None and isinstance(entry, dict) and isinstance(name, str):
            found.append((name, lifetime(family, entry, now, fallback)))
    return found


def results_file(answer: object) -> str | None:
    """The file a finished batch wrote its answers to (`files/…`), when it names one."""
    metadata = answer.get("metadata") if isinstance(answer, dict) else None
    output = metadata.get("output") if isinstance(metadata, dict) else None
    results = output.get("responsesFile") if isinstance(output, dict) else None
    return results if isinstance(results, str) and _family_of(results) is FAMILIES["files"] else None


def operation_name(model: str, ident: str) -> str | None:
    """`models/{model}/operations/{ident}`, a model's long-running operation; None for an ident that
    is not one path segment."""
    return f"models/{model}/operations/{ident}" if _SEGMENT.match(ident) else None


def model_operation_name(answer: object, model: str) -> str | None:
    """The operation a model's long-running call started, when the answer names one on that model."""
    name = answer.get("name") if isinstance(answer, dict) else None
    if not isinstance(name, str):
        return None
    head, _, ident = name.rpartition("/operations/")
    return name if head == f"models/{model}" and operation_name(model, ident) else None


_FILE_URI = re.compile(r"/files/([a-z0-9]{1,128})(?=$|[:/?#])")


def generated_videos(answer: object) -> list[str]:
    """The files a finished video operation wrote (`files/…`, from each sample's download URI)."""
    response = answer.get("response") if isinstance(answer, dict) else None
    videos = response.get("generateVideoResponse") if isinstance(response, dict) else None
    samples = videos.get("generatedSamples") if isinstance(videos, dict) else None
    found = []
    for sample in samples if isinstance(samples, list) else ():
        video = sample.get("video") if isinstance(sample, dict) else None
        uri = video.get("uri") if isinstance(video, dict) else None
        match = _FILE_URI.search(uri) if isinstance(uri, str) else None
        if match:
            found.append(f"files/{match.group(1)}")
    return found


def lifetime(family: Family, answer: dict, now: float, fallback: float) -> float:
    """Seconds Gemini keeps a resource: its own expiry (`expirationTime`, `expireTime`) when the
    answer gives one, else the family's, else `fallback` (RESOURCE_AFFINITY_TTL)."""
    for field in ("expirationTime", "expireTime"):
        moment = parse_time(answer.get(field))
        if moment is not None:
            return max(60.0, moment - now)
    return fallback if family.lifetime is None else family.lifetime


def parse_time(value: object) -> float | None:
    """A protobuf Timestamp (RFC 3339, `Z`, up to nine decimals) as Unix seconds; None otherwise."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    text = value.strip().replace("Z", "+00:00")
    main, dot, rest = text.partition(".")
    if dot:  # Python reads at most six decimals
        digits = re.match(r"\d*", rest).group(0)  # type: ignore[union-attr]
        text = f"{main}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def name_of(item: object) -> str | None:
    """The resource name of one entry of a list answer."""
    name = item.get("name") if isinstance(item, dict) else None
    return name if isinstance(name, str) else None


def _family_of(name: str) -> Family | None:
    """The family of a top-level resource name (`batches/b1`); None for anything else, children
    included (`fileSearchStores/s/operations/o` belongs to its store)."""
    head, _, ident = name.partition("/")
    family = FAMILIES.get(head)
    return family if family is not None and _SEGMENT.match(ident) else None
