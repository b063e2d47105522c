"""Schemathesis against the gateway's own /openapi.json: cases generated from the description of each
operation, valid and invalid, sent in process. No 5xx, and every 4xx in the dialect's error shape."""

from __future__ import annotations

import os
from unittest import mock

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from app import create_app
from app.state import state
from tests.conftest import BASE, CLIENT_KEY, make_env
from tests.reliability.gemini_memory import InMemoryGemini
from tests.reliability.test_http_fuzz import check

pytestmark = pytest.mark.fuzz  # property-based: thousands of generated cases

CASES = int(os.environ.get("OPENAPI_CASES", "5"))  # per operation and mode; raise it for a longer hunt
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}", "x-api-key": CLIENT_KEY}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    app = create_app(make_env(DATA_DIR=str(tmp_path_factory.mktemp("openapi")), REQUEST_LOG="off"))
    with app.app_context():
        state().upstream.session.mount(BASE, InMemoryGemini())

    def no_dns(host, port):
        raise OSError("no name is resolved while fuzzing")

    with mock.patch("app.translate.media._system_resolve", no_dns):
        yield schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_every_described_operation(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20, "the description names every route"
    # /v1/models/{model}:action is the same view and schema as /v1beta/...: fuzzed once, under /v1beta.
    operations = [op for op in operations if not op.path.startswith("/v1/models/{model}:")]
    tried = 0
    for operation in operations:
        # No shrinking: a failure is reported as found, so the run stays bounded.
        @settings(
            max_examples=CASES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def send(case):
            response = case.call(headers=AUTH)
            sent = response.request
            check(
                sent.method,
                sent.path_url,
                dict(sent.headers),
                response.status_code,
                response.content,
                (response.headers.get("content-type") or [""])[0],
            )

        try:
            send()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation with nothing to make invalid (GET /healthz)
            continue
        tried += 1
    assert tried >= len(operations) // 2
