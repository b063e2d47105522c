"""Stored responses: kept in the shared store for the client key that made them, and read back to
continue a conversation (`previous_response_id`), to resolve an `item_reference`, or to be shown."""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from ... import jsonx
from ...errors import InvalidRequest, NotFound
from ...store import Store, StoreUnavailable
from ..errors import PreviousResponseNotFound
from .ids import ItemIds, response_of_item
from .to_gemini import Entry

log = logging.getLogger(__name__)

_OWNER_DOMAIN = b"gemgate stored responses\0"
_PREFIXES = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "reasoning": "rs",
    "compaction": "cmp",
}
MAX_CHAIN = 10_000  # responses in one conversation: far past any model's context


def owner_of(client_key: str) -> str:
    """Whose responses these are: a digest of the client's key, so only that key reads them (a key
    renamed or moved in API_KEYS still does), and the key itself is never stored."""
    return hashlib.sha256(_OWNER_DOMAIN + client_key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


@dataclass
class Record:
    response: dict  # the whole response, reasoning items' encrypted content included
    input: list[dict]  # the input items of its own request, each with an id
    include_encrypted: bool  # what its client asked to see


def pack(record: Record) -> bytes:
    body = {"response": record.response, "input": record.input, "include_encrypted": record.include_encrypted}
    return zlib.compress(jsonx.dumps(body), 6)


def unpack(data: bytes) -> Record:
    body = jsonx.loads(zlib.decompress(data))
    return Record(body["response"], body["input"], body["include_encrypted"])


class StoredResponses:
    """One client key's stored responses."""

    def __init__(self, store: Store, owner: str, *, days: float, owner_bytes: int, max_conversation: int):
        self.store = store
        self.owner = owner
        self.lifetime = days * 86400.0
        self.owner_bytes = owner_bytes
        self.max_conversation = max_conversation  # bytes of stored history one request may read back

    @property
    def enabled(self) -> bool:
        return self.lifetime > 0

    def get(self, response_id: str) -> Record | None:
        data = self.store.get_response(self.owner, response_id, time.time())
        return unpack(data) if data is not None else None

    def save(self, record: Record) -> bool:
        """Keep `record`; False when it is not kept (too large for the key's room, or the store is
        down), which the answer then says with `store: false`."""
        data = pack(record)
        if len(data) > self.owner_bytes:
            log.warning(
                "response %s not stored: %d bytes, over the key's room", record.response["id"], len(data)
            )
            return False
        now = time.time()
        try:
            self.store.put_response(
                self.owner,
                record.response["id"],
                data,
                now=now,
                expires=now + self.lifetime,
                owner_bytes=self.owner_bytes,
            )
        except StoreUnavailable:
            return False  # logged by the store; the client still gets its answer
        return True

    def delete(self, response_id: str) -> bool:
        return self.store.delete_response(self.owner, response_id)

    def history(self, previous_id: str) -> list[dict]:
        """The items of the conversation that ends with `previous_id`, oldest first: each stored
        response's input, then its output."""
        chain: list[Record] = []
        read = 0
        response_id: str | None = previous_id
        while response_id:
            data = self.store.get_response(self.owner, response_id, time.time())
            if data is None:
                detail = (
                    ""
                    if not chain
                    else f" (an earlier response of its conversation, {response_id!r}, is gone)"
                )
                raise PreviousResponseNotFound(
                    f"Previous response with id {previous_id!r} not found{detail}.",
                    param="previous_response_id",
                )
            record = unpack(data)
            read += len(data)
            if read > self.max_conversation or len(chain) >= MAX_CHAIN:
                raise InvalidRequest(
                    "The conversation of previous_response_id is larger than the gateway reads back; "
                    "send its items in input instead.",
                    param="previous_response_id",
                )
            chain.append(record)
            response_id = record.response.get("previous_response_id")
        return [item for record in reversed(chain) for item in (*record.input, *record.response["output"])]

    def find_item(self, item_id: str, param: str) -> dict:
        """A stored item by id (its id names the response it belongs to)."""
        response_id = response_of_item(item_id)
        record = self.get(response_id) if response_id else None
        for item in _items(record):
            if item.get("id") == item_id:
                return item
        raise NotFound(f"Item with id {item_id!r} not found.", param=param)


def _items(record: Record | None) -> Iterator[dict]:
    if record is not None:
        yield from record.input
        yield from record.response["output"]


def conversation(body: dict, ids: ItemIds, stored: StoredResponses) -> tuple[list[Entry], list[dict]]:
    """(every input item of the conversation with the field that names it, this request's own input
    items) for a create, count or compact body: the stored history of `previous_response_id` first,
    then `input` with item references resolved and an id on each item."""
    entries: list[Entry] = []
    known: dict[str, dict] = {}
    previous = body.get("previous_response_id")
    if previous:
        for item in stored.history(previous):
            entries.append(Entry(item, "previous_response_id"))
            if isinstance(item.get("id"), str):
                known[item["id"]] = item
    own: list[dict] = []
    value = body.get("input")
    if isinstance(value, str):
        message = {
            "type": "message",
            "id": ids("msg"),
            "role": "user",
            "content": [{"type": "input_text", "text": value}],
        }
        own.append(message)
        entries.append(Entry(message, "input"))
        return entries, own
    for i, item in enumerate(value or ()):
        param = f"input[{i}]"
        kind = item.get("type", "message")
        if kind == "item_reference":
            item = known.get(item["id"]) or stored.find_item(item["id"], f"{param}.id")
        else:
            item = {**item, "type": kind}
            if not isinstance(item.get("id"), str) or not item["id"]:
                item["id"] = ids(_PREFIXES.get(kind, "item"))
        own.append(item)
        entries.append(Entry(item, param))
    return entries, own
