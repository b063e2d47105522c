import pytest

from app.http.sse import SSEDecoder, iter_events
from tests.conftest import fixture_bytes

RECORDED = [
    "gemini/stream_text.sse",
    "gemini/stream_thinking_include_thoughts.sse",
    "gemini/stream_parallel_function_calls_gemini3.sse",
]


def whole(name):
    return list(iter_events([fixture_bytes(name)]))


@pytest.mark.parametrize("name", RECORDED)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000])
def test_split_anywhere_gives_the_same_events(name, size):
    data = fixture_bytes(name)
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    assert list(iter_events(pieces)) == whole(name)
    assert len(whole(name)) >= 3


@pytest.mark.parametrize("sep", [b"\n\n", b"\r\n\r\n", b"\r\r"])
def test_line_endings(sep):
    body = b'data: {"a": 1}' + sep + b'data: {"b": 2}' + sep
    assert list(iter_events([body])) == [b'{"a": 1}', b'{"b": 2}']


def test_crlf_split_between_cr_and_lf():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\ndata: y\r\n\r\n") == [b"x", b"y"]


def test_comments_fields_multiline_and_unterminated_last_event():
    body = b": ping\nevent: e\nid: 1\ndata: a\ndata: b\n\ndata: last"
    assert list(iter_events([body])) == [b"a\nb", b"last"]


def test_stray_json_after_events_is_kept():
    decoder = SSEDecoder()
    decoder.feed(b'data: {"a": 1}\r\n\r\n{\n  "error": {"code": 500}\n}\n')
    decoder.close()
    assert decoder.stray == [b"{", b'  "error": {"code": 500}', b"}"]


def test_large_frame():
    payload = b"x" * (3 << 20)
    body = b"data: " + payload + b"\r\n\r\n"
    assert list(iter_events([body[i : i + 65536] for i in range(0, len(body), 65536)])) == [payload]
