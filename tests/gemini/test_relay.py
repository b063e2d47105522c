"""The relay's pieces: whole SSE events from split bytes, what a relayed answer's tokens are, the query
string without credentials."""

import pytest

from app import create_app
from app.errors import UpstreamUnavailable
from app.gemini.relay import (
    _sse_blocks,
    _SSEPassThrough,
    batch_usage,
    gateway_download_uris,
    interaction_usage,
    query,
)
from tests.conftest import make_env

FRAMES = (
    b'event: interaction.created\ndata: {"interaction": {"id": "v1_a", "status": "in_progress"}}\n\n'
    b'event: step.delta\ndata: {"delta": {"type": "text", "text": "Hi"}}\n\n'
    b'event: interaction.completed\ndata: {"interaction": {"id": "v1_a", "status": "completed", '
    b'"usage": {"total_input_tokens": 7, "total_output_tokens": 2}}}\r\n\r\n'
    b"event: done\ndata: [DONE]\n\n"
)


@pytest.mark.parametrize("size", [1, 3, 7, 64, len(FRAMES)])
def test_events_go_out_whole_however_the_bytes_were_split(size):
    pieces = [FRAMES[i : i + size] for i in range(0, len(FRAMES), size)]
    blocks = list(_sse_blocks(iter(pieces)))
    assert b"".join(blocks) == FRAMES  # nothing added, nothing lost
    assert all(block.endswith((b"\n\n", b"\r\n\r\n")) for block in blocks)
    events = [e for block in blocks for e in block.split(b"event: ")[1:]]
    assert len(events) == 4


def test_the_pass_through_keeps_the_interaction_and_scrubs_errors():
    relay = _SSEPassThrough(lambda data: data.replace(b"SECRET", b"[redacted]"))
    out = b"".join(relay.feed(block) for block in _sse_blocks(iter([FRAMES])))
    assert out == FRAMES
    assert relay.interaction == {
        "id": "v1_a",
        "status": "completed",
        "usage": {"total_input_tokens": 7, "total_output_tokens": 2},
    }
    error = b'event: error\ndata: {"error": {"message": "bad SECRET"}}\n\n'
    assert relay.feed(error) == error.replace(b"SECRET", b"[redacted]")
    failed = relay.fail(UpstreamUnavailable("The connection to Gemini broke in the middle of the stream."))
    assert failed.startswith(b'event: error\ndata: {"error":{"code":503,') and failed.endswith(b"\n\n")


def test_an_interactions_usage_is_read_as_usage_metadata():
    assert interaction_usage(
        {"total_input_tokens": 11, "total_output_tokens": 3, "total_thought_tokens": 5}
    ) == {
        "promptTokenCount": 11,
        "candidatesTokenCount": 3,
        "thoughtsTokenCount": 5,
        "toolUsePromptTokenCount": None,
    }
    assert interaction_usage("none") is None


def test_a_batch_counts_its_inlined_answers_once_it_succeeded():
    answer = {"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "thoughtsTokenCount": 2}}
    done = {
        "metadata": {
            "model": "models/gemini-2.5-flash",
            "state": "BATCH_STATE_SUCCEEDED",
            "output": {
                "inlinedResponses": {"inlinedResponses": [{"response": answer}] * 3 + [{"error": {}}]}
            },
        }
    }
    model, usage = batch_usage(done)
    assert model == "gemini-2.5-flash"
    assert usage == {
        "promptTokenCount": 12,
        "candidatesTokenCount": 3,
        "thoughtsTokenCount": 6,
        "toolUsePromptTokenCount": 0,
    }
    assert batch_usage({"metadata": {"state": "BATCH_STATE_RUNNING"}}) == (None, None)
    assert batch_usage({"metadata": {"state": "BATCH_STATE_SUCCEEDED", "output": {}}}) == (None, None)


def test_the_query_string_goes_on_without_credentials(app):
    with app.test_request_context("/v1beta/files?key=k&pageSize=5&access_token=t&updateMask=a&updateMask=b"):
        assert query() == {"pageSize": "5", "updateMask": ("a", "b")}


def test_a_download_uri_names_the_gateway_and_other_uris_stay_gemini_s(tmp_path):
    google = "https://generativelanguage.googleapis.com"
    raw = (
        b'{"files": [{"name": "files/a1", "uri": "' + google.encode() + b'/v1beta/files/a1",\n'
        b'  "downloadUri": "' + google.encode() + b'/download/v1beta/files/a1:download?alt=media"},'
        b' {"name": "files/b2", "downloadUri":"' + google.encode() + b'/download/v1beta/files/b2:download"}]}'
    )
    app = create_app(make_env(DATA_DIR=str(tmp_path)))
    with app.test_request_context("/v1beta/files", base_url="https://gw.example:8443"):
        out = gateway_download_uris(raw)
        assert gateway_download_uris(b'{"name": "files/c3"}') == b'{"name": "files/c3"}'
    forwarded = {"X-Forwarded-Host": "public.example"}  # from a trusted proxy (127.0.0.1 by default)
    peer = {"REMOTE_ADDR": "127.0.0.1"}
    with app.test_request_context(
        "/v1beta/files", base_url="http://10.0.0.5:7860", headers=forwarded, environ_base=peer
    ):
        assert b'"downloadUri": "http://public.example/download/' in gateway_download_uris(raw)
    assert out.count(b"https://gw.example:8443/download/v1beta/files/") == 2
    assert b'"uri": "' + google.encode() + b'/v1beta/files/a1"' in out
    assert b"gw.example:8443/download/v1beta/files/a1:download?alt=media" in out
