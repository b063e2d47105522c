"""Listing the caller's own resources across the keys that hold them: filtered, re-cut pages, bounded."""

import pytest

from app.errors import InvalidRequest
from app.gemini.listing import MAX_PAGES, Cursor, collect, collect_all, decode, encode, page_size
from app.upstream.key_pool import Affinity


class Lists:
    """Each key's list, as Gemini pages it (newest first), and every page read."""

    def __init__(self, per_key: dict[str, list[str]], size: int = 3):
        self.per_key, self.size, self.read = per_key, size, []

    def __call__(self, key_id, token):
        self.read.append((key_id, token))
        names = self.per_key.get(key_id, [])
        start = int(token or 0)
        following = str(start + self.size) if start + self.size < len(names) else None
        return [{"name": n} for n in names[start : start + self.size]], following


def mine(*names_keys):
    return {name: Affinity(key, "alice", 1e12) for name, key in names_keys}


def names(items):
    return [item["name"] for item in items]


KEYS = {
    "k1": ["files/a1", "files/x1", "files/a2", "files/x2", "files/x3", "files/a3", "files/a4"],
    "k2": ["files/y1", "files/b1", "files/y2"],
    "k3": ["files/c1"],  # the caller has nothing here: never listed
}
OWNED = mine(*((f"files/a{i}", "k1") for i in range(1, 5)), ("files/b1", "k2"))


def test_pages_hold_the_callers_resources_only_and_resume_where_they_stopped():
    lists = Lists(KEYS)
    seen, cursor = [], None
    while True:
        items, cursor = collect(OWNED, 2, cursor, lists)
        seen.append(names(items))
        if cursor is None:
            break
        cursor = decode(encode(cursor))  # what the client sends back
    assert seen == [["files/a1", "files/a2"], ["files/a3", "files/a4"], ["files/b1"]]
    assert {key for key, _ in lists.read} == {"k1", "k2"}


def test_a_resource_recorded_on_another_key_is_not_shown_twice():
    owned = mine(("files/a1", "k2"))  # listed by k1's project too (never the case), but held by k2
    items, _ = collect(owned, 10, None, Lists({"k1": ["files/a1"], "k2": ["files/a1"]}))
    assert names(items) == ["files/a1"]


def test_one_request_reads_a_bounded_number_of_pages():
    crowded = {"k1": [f"files/other{i}" for i in range(100)] + ["files/mine"]}
    lists = Lists(crowded, size=2)
    items, cursor = collect(mine(("files/mine", "k1")), 10, None, lists)
    assert items == [] and len(lists.read) == MAX_PAGES and cursor == Cursor("k1", str(2 * MAX_PAGES), 0)
    while cursor is not None and not items:
        items, cursor = collect(mine(("files/mine", "k1")), 10, cursor, lists)
    assert names(items) == ["files/mine"]


def test_nothing_owned_reads_nothing():
    lists = Lists(KEYS)
    assert collect({}, 10, None, lists) == ([], None) and collect_all({}, lists) == []
    assert lists.read == []


def test_collect_all_gathers_every_page():
    assert sorted(names(collect_all(OWNED, Lists(KEYS)))) == [
        "files/a1",
        "files/a2",
        "files/a3",
        "files/a4",
        "files/b1",
    ]


@pytest.mark.parametrize(
    "token", ["not base64 at all!", encode(Cursor("k", None, 0))[:-3] + "xyz", "WzEsMiwzXQ"]
)
def test_a_page_token_the_gateway_did_not_make_is_a_400(token):
    with pytest.raises(InvalidRequest) as caught:
        decode(token)
    assert caught.value.param == "pageToken"


def test_page_sizes_are_clamped_to_geminis_largest():
    assert page_size(None, 100) == 10 and page_size("0", 100) == 10 and page_size("500", 100) == 100
    assert page_size("5", 20) == 5
    for bad in ("many", "-1"):
        with pytest.raises(InvalidRequest):
            page_size(bad, 100)
