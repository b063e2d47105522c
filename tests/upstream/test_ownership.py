"""Resources owned per client through the upstream client: names in paths and bodies, calls that must
not run twice, bodies sent as they are read, and records dropped when Gemini says a resource is gone."""

import io

import pytest
import requests
from responses import matchers

from app.config import Config
from app.errors import InvalidRequest, NotFound, UpstreamError, UpstreamTimeout
from app.upstream.call import named_resources
from app.upstream.client import UpstreamClient
from app.upstream.key_pool import KeyPool
from tests.conftest import BASE, UPSTREAM_KEYS, fixture_bytes, make_env

FILE = "/v1beta/files/abc-1"
BATCHES = "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
NOT_OWNED = dict(body=fixture_bytes("gemini/error_403_file_not_owned.json"), status=403)


class Clock:
    now = 1e9

    def __call__(self):
        return self.now


def upstream(tmp_path, client="alice", **env):
    config = Config.from_env(make_env(DATA_DIR=str(tmp_path), **env))
    pool = KeyPool(config.gemini_api_keys, clock=Clock())
    who = {"client": client}
    up = UpstreamClient(config, pool, context=lambda: (who["client"], None))
    up.who = who
    return up


def key_is(i):
    return [matchers.header_matcher({"x-goog-api-key": UPSTREAM_KEYS[i]})]


def sent_keys(mocked):
    return [UPSTREAM_KEYS.index(c.request.headers["x-goog-api-key"]) for c in mocked.calls]


def test_a_resource_in_the_path_goes_to_its_owners_key_and_to_no_one_else(tmp_path, mocked):
    up = upstream(tmp_path)
    up.pool.record_owner("files/abc-1", up.pool.keys[2], "alice", ttl=3600)
    mocked.get(BASE + FILE, json={"name": "files/abc-1"}, match=key_is(2))
    for _ in range(3):
        assert up.request("GET", FILE, owned=("files/abc-1",)).key.label == "key-3"
    up.who["client"] = "bob"
    with pytest.raises(NotFound, match="files/abc-1 was not found"):
        up.request("GET", FILE, owned=("files/abc-1",))
    assert len(mocked.calls) == 3


def test_a_path_resource_the_gateway_never_saw_created_is_not_found_and_nothing_is_sent(tmp_path, mocked):
    up = upstream(tmp_path)
    with pytest.raises(NotFound, match="files/abc-1 was not found"):
        up.request("DELETE", FILE, owned=("files/abc-1",), idempotent=False)
    assert len(mocked.calls) == 0


def test_every_resource_a_body_names_is_checked_not_only_the_first(tmp_path, mocked):
    up = upstream(tmp_path)
    up.pool.record_owner("files/mine", up.pool.keys[0], "alice", ttl=3600)
    up.pool.record_owner("files/bobs", up.pool.keys[0], "bob", ttl=3600)
    body = (
        b'{"contents":[{"parts":[{"fileData":{"fileUri":"files/mine"}},'
        b'{"fileData":{"fileUri":"https://generativelanguage.googleapis.com/v1beta/files/bobs"}}]}]}'
    )
    with pytest.raises(NotFound, match="files/bobs was not found"):
        up.request("POST", GENERATE, body=body)
    assert len(mocked.calls) == 0


def test_a_403_saying_an_owned_resource_is_gone_drops_its_record_and_rests_no_key(tmp_path, mocked):
    up = upstream(tmp_path)
    up.pool.record_owner("files/xxxx", up.pool.keys[1], "alice", ttl=3600)
    mocked.post(BASE + GENERATE, **NOT_OWNED)  # "... access the File xxxx or it may not exist."
    body = b'{"contents":[{"parts":[{"fileData":{"fileUri":"files/xxxx"}}]}]}'
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", GENERATE, body=body)
    assert caught.value.status == 403 and sent_keys(mocked) == [1]  # its key alone, once
    assert up.pool.owned("alice", "files") == {}
    assert all(k["status"] == "healthy" and not k["models"] for k in up.pool.snapshot())


def test_a_404_on_a_path_resource_drops_its_record(tmp_path, mocked):
    up = upstream(tmp_path)
    up.pool.record_owner("files/abc-1", up.pool.keys[0], "alice", ttl=3600)
    mocked.get(
        BASE + FILE, json={"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}, status=404
    )
    with pytest.raises(UpstreamError):
        up.request("GET", FILE, owned=("files/abc-1",))
    with pytest.raises(NotFound):
        up.request("GET", FILE, owned=("files/abc-1",))
    assert len(mocked.calls) == 1


def test_a_call_that_may_create_something_is_never_sent_twice_after_gemini_may_have_done_it(tmp_path, mocked):
    up = upstream(tmp_path)
    mocked.post(BASE + BATCHES, body=fixture_bytes("gemini/error_500_internal.json"), status=500)
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", BATCHES, body=b"{}", idempotent=False)
    assert caught.value.status == 500 and len(mocked.calls) == 1
    mocked.replace("POST", BASE + BATCHES, body=requests.ReadTimeout("slow"))
    with pytest.raises(UpstreamTimeout):
        up.request("POST", BATCHES, body=b"{}", idempotent=False)
    assert len(mocked.calls) == 2


def test_it_is_sent_again_when_gemini_surely_did_nothing(tmp_path, mocked):
    up = upstream(tmp_path)
    refused = fixture_bytes("gemini/error_429_resource_exhausted_bare.json")
    mocked.post(BASE + BATCHES, body=refused, status=429, match=key_is(0))
    mocked.post(BASE + BATCHES, body=requests.ConnectTimeout("no route"), match=key_is(1))
    mocked.post(BASE + BATCHES, json={"name": "batches/b1"}, match=key_is(2))
    served = up.request("POST", BATCHES, body=b"{}", idempotent=False)
    assert served.key.label == "key-3" and sent_keys(mocked) == [0, 1, 2]


class Upload(io.BytesIO):
    """A body read as it is sent, like a client's upload."""

    error = None

    def __init__(self, data: bytes):
        super().__init__(data)
        self.len = len(data)
        self.consumed = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk


def test_a_streamed_body_goes_as_it_is_read_with_its_length_and_is_never_sent_again(tmp_path, mocked):
    up = upstream(tmp_path)
    path = "/upload/v1beta/files"
    mocked.post(BASE + path, body=fixture_bytes("gemini/error_429_resource_exhausted_bare.json"), status=429)
    body = Upload(b"x" * 100_000)
    with pytest.raises(UpstreamError) as caught:
        up.request("POST", path, body=body, idempotent=False, headers={"Content-Type": "image/png"})
    assert caught.value.status == 429 and len(mocked.calls) == 1  # its bytes are gone: not resent
    sent = mocked.calls[0].request
    assert sent.headers["Content-Length"] == "100000" and "Transfer-Encoding" not in sent.headers
    assert sent.headers["Content-Type"] == "image/png"


def test_a_call_bound_to_a_key_goes_to_that_key_alone(tmp_path, mocked):
    up = upstream(tmp_path)
    mocked.get(BASE + "/v1beta/files", json={"files": []}, match=key_is(1))
    for _ in range(3):
        assert up.request("GET", "/v1beta/files", key_id=up.pool.keys[1].id).key.label == "key-2"


@pytest.mark.parametrize(
    "body, names",
    [
        (b'{"cachedContent": "cachedContents/c1", "contents": []}', ("cachedContents/c1",)),
        (b'{"cached_content": "cachedContents/c1"}', ("cachedContents/c1",)),
        (b'{"batch": {"inputConfig": {"fileName": "files/in-1"}}}', ("files/in-1",)),
        (b'{"file_name": "files/in-1"}', ("files/in-1",)),
        (
            b'{"input": [{"type": "image", "uri": "https://generativelanguage.googleapis.com/v1beta/files/f9"}],'
            b' "previous_interaction_id": "v1_Abc-9"}',
            ("interactions/v1_Abc-9", "files/f9"),
        ),
        (b'{"previousInteractionId": "v1_x"}', ("interactions/v1_x",)),
        (
            b'{"tools": [{"fileSearch": {"fileSearchStoreNames": ["fileSearchStores/s1", "fileSearchStores/s2"]}}]}',
            ("fileSearchStores/s1", "fileSearchStores/s2"),
        ),
        (b'{"uri": "https://example.com/cat.png"}', ()),
        (b'{"previous_interaction_id": "../../x"}', ()),
        (b'{"text": "files/abc interaction"}', ()),
    ],
)
def test_named_resources_in_every_field_that_names_one(body, names):
    assert named_resources(body) == names


def test_a_clients_creations_gather_on_one_key_while_other_calls_rotate(tmp_path, mocked):
    up = upstream(tmp_path)
    mocked.post(BASE + "/v1beta/cachedContents", json={"name": "cachedContents/c"})
    mocked.post(BASE + GENERATE, body=fixture_bytes("gemini/generate_text.json"))
    creations = [
        up.request("POST", "/v1beta/cachedContents", body=b"{}", creates=True).key.label for _ in range(3)
    ]
    assert len(set(creations)) == 1
    assert len({up.request("POST", GENERATE, body=b"{}").key.label for _ in range(3)}) == 3
    up.who["client"] = "bob"  # another client's creations are its own affair
    up.request("POST", "/v1beta/cachedContents", body=b"{}", creates=True)
    up.pool.cool_down(up.pool.keys[int(creations[0][-1]) - 1], 60, "HTTP 429")
    up.who["client"] = "alice"  # its key resting: another, and the creations follow
    moved = up.request("POST", "/v1beta/cachedContents", body=b"{}", creates=True).key.label
    assert moved != creations[0]
    assert up.request("POST", "/v1beta/cachedContents", body=b"{}", creates=True).key.label == moved


def test_two_of_the_clients_resources_on_different_keys_cannot_be_used_together(tmp_path, mocked):
    up = upstream(tmp_path)
    up.pool.record_owner("files/one", up.pool.keys[0], "alice", ttl=3600)
    up.pool.record_owner("cachedContents/two", up.pool.keys[1], "alice", ttl=3600)
    body = b'{"cachedContent": "cachedContents/two", "contents": [{"parts": [{"fileData": {"fileUri": "files/one"}}]}]}'
    with pytest.raises(InvalidRequest, match="held by different upstream keys"):
        up.request("POST", GENERATE, body=body)
    assert len(mocked.calls) == 0
