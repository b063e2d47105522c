import pytest

from app.upstream.retry import Verdict, backoff, classify, retry_delay
from tests.conftest import fixture_json


@pytest.mark.parametrize(
    "status, fixture, verdict",
    [
        (200, None, Verdict.OK),
        (400, "gemini/error_400_invalid_argument.json", Verdict.CALLER),
        (400, "gemini/error_400_api_key_invalid.json", Verdict.KEY_INVALID),
        (400, "gemini/error_400_api_key_invalid_with_debuginfo.json", Verdict.KEY_INVALID),
        (403, "gemini/error_403_service_disabled.json", Verdict.KEY_INVALID),
        (403, "gemini/error_403_permission_denied.json", Verdict.KEY_INVALID),
        (401, None, Verdict.KEY_INVALID),
        (404, "gemini/error_404_model_not_found.json", Verdict.CALLER),
        (429, "gemini/error_429_resource_exhausted.json", Verdict.RATE_LIMITED),
        (429, "gemini/error_429_resource_exhausted_bare.json", Verdict.RATE_LIMITED),
        (500, "gemini/error_500_internal.json", Verdict.TRANSIENT),
        (503, "gemini/error_503_unavailable.json", Verdict.TRANSIENT),
        (504, None, Verdict.TRANSIENT),
        (408, None, Verdict.TRANSIENT),
        (409, None, Verdict.CALLER),
    ],
)
def test_classify(status, fixture, verdict):
    assert classify(status, fixture_json(fixture) if fixture else None) is verdict


def test_retry_delay_from_retry_info_then_header():
    assert retry_delay(fixture_json("gemini/error_429_resource_exhausted.json")) == 26.0
    fractional = {
        "error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}]}
    }
    assert retry_delay(fractional) == 34.4
    assert retry_delay(fixture_json("gemini/error_429_resource_exhausted_bare.json")) is None
    assert retry_delay(None, {"Retry-After": "7"}) == 7.0
    assert retry_delay(None, {"Retry-After": "Wed, 21 Oct 2015"}) is None


def test_backoff_is_capped():
    assert all(0 <= backoff(n, 0.5, 2.0) <= 2.0 for n in range(1, 30))
