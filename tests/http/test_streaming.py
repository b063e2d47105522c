"""The stream driver's bookkeeping: one record per stream however it ends, and requests cut short still recorded."""

from __future__ import annotations

from app.state import state_of
from app.usage.record import unfinished
from tests.conftest import AUTH, BASE, fixture_bytes

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


def rows(app) -> list[dict]:
    return list(state_of(app).store.usage(0, 2e9))


def test_a_stream_closed_before_its_first_byte_still_ends_in_one_record(app, client, mocked):
    mocked.post(BASE + STREAM, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    response = client.post(STREAM + "?alt=sse", json=BODY, headers=AUTH, buffered=False)
    assert response.status_code == 200
    assert rows(app) == []  # the body has not run: its record is still open
    response.close()  # the server closes a body it never iterated (the client left first)
    (row,) = rows(app)
    assert row["status"] == 200 and row["stream"] is True and row["error"] == "cancelled"
    response.close()
    assert len(rows(app)) == 1
    assert not unfinished()


def test_a_stream_read_to_its_end_is_recorded_once_when_it_is_closed_too(app, client, mocked):
    mocked.post(BASE + STREAM, body=fixture_bytes("gemini/stream_text.sse"), content_type="text/event-stream")
    response = client.post(STREAM + "?alt=sse", json=BODY, headers=AUTH, buffered=False)
    assert b"".join(response.response)  # read it all
    response.close()
    (row,) = rows(app)
    assert row["error"] is None and row["completion_tokens"] > 0


def test_a_request_whose_after_request_never_ran_is_recorded_as_interrupted(app, client, mocked):
    # The worker kills a request with an exception no handler turns into a response (as gevent's
    # GreenletExit): the record is finished on teardown.
    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):
        raise Killed()

    mocked.add_callback("POST", BASE + GEN, callback=killed)
    try:
        client.post(GEN, json=BODY, headers=AUTH)
    except Killed:
        pass
    (row,) = rows(app)
    assert row["status"] == 503 and row["error"] == "interrupted"
    assert not unfinished()
