"""The pure policy, one test per branch, on recorded Gemini error bodies."""

from datetime import datetime

import pytest

from app.upstream.retry import (
    PACIFIC,
    Fault,
    Rest,
    Rules,
    Scope,
    backoff,
    judge,
    next_pacific_midnight,
    quotas_of,
    retry_delay,
)
from tests.conftest import fixture_json

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=PACIFIC).timestamp()  # 15:30 Pacific (PDT)
RULES = Rules(cooldown=60, max_cooldown=3600, recheck=600)
MODEL = "gemini-2.5-flash"


def verdict(status, fixture=None, *, model=MODEL, headers=None, tokens=None, payload=None):
    body = fixture_json(f"gemini/{fixture}") if fixture else payload
    return judge(status, body, headers, model=model, now=NOW, rules=RULES, prompt_tokens=tokens)


def error(code, message, status="", details=()):
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


def error_info(reason):
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}


# -- the key itself: disabled until the re-check ---------------------------------------------


@pytest.mark.parametrize(
    "status, fixture, reason",
    [
        (400, "error_400_api_key_invalid.json", "HTTP 400 API_KEY_INVALID"),
        (400, "error_400_api_key_invalid_with_debuginfo.json", "HTTP 400 API_KEY_INVALID"),
        (403, "error_403_service_disabled.json", "HTTP 403 SERVICE_DISABLED"),
        (403, "error_403_permission_denied.json", "HTTP 403 PERMISSION_DENIED"),  # no identity at all
    ],
)
def test_recorded_key_errors_disable_the_key(status, fixture, reason):
    judged = verdict(status, fixture)
    assert (judged.fault, judged.scope, judged.rest) == (Fault.KEY, Scope.KEY, Rest.DISABLE)
    assert judged.until == NOW + 600 and judged.another_key and judged.reason == reason


@pytest.mark.parametrize(
    "reason",
    [
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "SERVICE_DISABLED",
        "CONSUMER_SUSPENDED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "BILLING_DISABLED",
    ],
)
@pytest.mark.parametrize("status", [400, 403])
def test_every_key_level_reason_disables_the_key_whatever_the_status(reason, status):
    judged = verdict(status, payload=error(status, "refused", "PERMISSION_DENIED", [error_info(reason)]))
    assert (judged.fault, judged.scope, judged.rest) == (Fault.KEY, Scope.KEY, Rest.DISABLE)
    assert judged.reason == f"HTTP {status} {reason}"


def test_401_disables_the_key():
    judged = verdict(
        401, payload=error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
    )
    assert (judged.fault, judged.scope) == (
        Fault.KEY,
        Scope.KEY,
    ) and judged.reason == "HTTP 401 UNAUTHENTICATED"


def test_a_leaked_key_is_disabled():
    judged = verdict(
        403, payload=error(403, "Your API key was reported as leaked. Please use another API key.")
    )
    assert judged.fault is Fault.KEY


def test_consumer_suspended_reason_is_ours_not_the_message():
    body = error(
        403,
        "Permission denied: Consumer 'api_key:AIzaSyTESTkey1-canary-0000000000000000' has been suspended.",
        "PERMISSION_DENIED",
        [error_info("CONSUMER_SUSPENDED")],
    )
    judged = verdict(403, payload=body)
    assert judged.fault is Fault.KEY and "AIza" not in judged.reason


def test_an_odd_reason_is_not_kept():
    judged = verdict(403, payload=error(403, "x", "PERMISSION_DENIED", [error_info("api_key:AIzaSECRET")]))
    assert "AIza" not in judged.reason and judged.fault is Fault.CALLER


# -- the request's own: passed on, nothing rested ------------------------------------------------


@pytest.mark.parametrize(
    "status, fixture",
    [
        (400, "error_400_invalid_argument.json"),
        (400, "error_400_missing_thought_signature.json"),
        (404, "error_404_model_not_found.json"),
        (409, None),
        (413, None),
    ],
)
def test_request_errors_are_the_callers(status, fixture):
    judged = verdict(status, fixture)
    assert (judged.fault, judged.scope, judged.rest, judged.another_key) == (
        Fault.CALLER,
        Scope.NONE,
        Rest.NONE,
        False,
    )


def test_a_403_naming_a_file_rests_nothing_and_may_try_one_other_key():
    judged = verdict(403, "error_403_file_not_owned.json")
    assert (judged.fault, judged.scope, judged.rest) == (Fault.CALLER, Scope.NONE, Rest.NONE)
    assert judged.another_key


def test_a_403_naming_cached_content_rests_nothing():
    judged = verdict(
        403, payload=error(403, "CachedContent not found (or permission denied)", "PERMISSION_DENIED")
    )
    assert (judged.fault, judged.scope) == (Fault.CALLER, Scope.NONE) and judged.another_key


def test_a_generic_403_on_a_model_call_softly_rests_that_pair_only():
    judged = verdict(403, "error_403_generic_model.json", model="gemini-3-pro-preview")
    assert (judged.fault, judged.scope, judged.rest) == (Fault.CALLER, Scope.MODEL, Rest.SOFT)
    assert judged.until == NOW + 600 and judged.another_key
    assert judged.reason == "HTTP 403 PERMISSION_DENIED for this model"


def test_a_generic_403_on_no_model_rests_nothing():
    judged = verdict(403, "error_403_generic_model.json", model=None)
    assert (judged.fault, judged.scope) == (Fault.CALLER, Scope.NONE) and judged.another_key


# -- quotas ------------------------------------------------------------------------------------


def test_a_per_minute_quota_cools_the_pair_for_retry_info():
    judged = verdict(429, "error_429_input_tokens_per_minute.json", tokens=lambda: 1000)
    assert (judged.fault, judged.scope, judged.rest) == (Fault.QUOTA, Scope.MODEL, Rest.COOL)
    assert judged.until == NOW + 26 and judged.another_key and not judged.daily
    assert judged.reason == "HTTP 429 RESOURCE_EXHAUSTED GenerateContentInputTokensPerModelPerMinute-FreeTier"


def test_a_prompt_over_the_input_tokens_per_minute_limit_is_the_callers():
    judged = verdict(429, "error_429_input_tokens_per_minute.json", tokens=lambda: 250_000)
    assert (judged.fault, judged.scope, judged.rest, judged.another_key) == (
        Fault.CALLER,
        Scope.NONE,
        Rest.NONE,
        False,
    )


def test_the_token_estimate_is_asked_for_only_when_it_matters():
    asked = []
    verdict(429, "error_429_resource_exhausted_bare.json", tokens=lambda: asked.append(1) or 0)
    verdict(429, "error_429_daily_minute_and_tokens.json", tokens=lambda: asked.append(1) or 0)
    assert asked == []


def test_a_token_limit_in_the_message_counts_too():
    message = (
        "You exceeded your current quota. \n* Quota exceeded for metric: "
        "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count, limit: 1000, "
        "model: gemini-2.5-pro\nPlease retry in 12.5s."
    )
    body = error(429, message, "RESOURCE_EXHAUSTED")
    assert verdict(429, payload=body, tokens=lambda: 5000).fault is Fault.CALLER
    small = verdict(429, payload=body, tokens=lambda: 10)
    assert small.fault is Fault.QUOTA and small.until == NOW + 12.5


def test_a_daily_quota_rests_the_pair_until_pacific_midnight_whatever_retry_info_says():
    judged = verdict(429, "error_429_daily_minute_and_tokens.json", model="gemini-2.0-flash")
    midnight = datetime(2026, 3, 11, 0, 0, tzinfo=PACIFIC).timestamp()
    assert (judged.fault, judged.scope, judged.rest) == (Fault.QUOTA, Scope.MODEL, Rest.COOL)
    assert judged.daily and judged.until == midnight and judged.until - NOW == 8.5 * 3600
    assert "GenerateRequestsPerDayPerProjectPerModel-FreeTier" in judged.reason


def test_a_zero_limit_rests_the_pair_like_a_refused_key():
    judged = verdict(429, "error_429_free_tier_limit_zero.json", model="gemini-3.1-pro")
    assert (judged.fault, judged.scope, judged.rest) == (Fault.QUOTA, Scope.MODEL, Rest.DISABLE)
    assert judged.until == NOW + 600 and judged.another_key and judged.reason.endswith("limit 0")


def test_a_zero_quota_value_rests_the_pair_too():
    body = fixture_json("gemini/error_429_input_tokens_per_minute.json")
    body["error"]["details"][0]["violations"][0]["quotaValue"] = "0"
    judged = verdict(429, payload=body, tokens=lambda: 5)
    assert (judged.scope, judged.rest) == (Scope.MODEL, Rest.DISABLE)


def test_a_bare_429_cools_the_pair_for_the_default_cooldown():
    judged = verdict(429, "error_429_resource_exhausted_bare.json")
    assert (judged.fault, judged.scope, judged.rest) == (Fault.QUOTA, Scope.MODEL, Rest.COOL)
    assert judged.until == NOW + 60 and judged.reason == "HTTP 429 RESOURCE_EXHAUSTED"


def test_a_429_on_no_model_cools_the_key():
    judged = verdict(429, "error_429_resource_exhausted_bare.json", model=None)
    assert (judged.scope, judged.rest) == (Scope.KEY, Rest.COOL)


def test_a_quota_that_names_no_model_cools_the_key():
    body = error(
        429,
        "quota",
        "RESOURCE_EXHAUSTED",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaMetric": "x/requests", "quotaId": "RequestsPerMinutePerProject"}],
            }
        ],
    )
    assert verdict(429, payload=body).scope is Scope.KEY


@pytest.mark.parametrize(
    "headers, details, expected",
    [
        ({"Retry-After": "inf"}, [], 60),  # not finite: the default
        ({"Retry-After": "nan"}, [], 60),
        ({"Retry-After": "99999999"}, [], 3600),  # capped
        ({}, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "86400000s"}], 3600),
        ({"Retry-After": "-5"}, [], 0),
    ],
)
def test_cooldowns_are_finite_and_capped(headers, details, expected):
    judged = verdict(429, payload=error(429, "slow down", "RESOURCE_EXHAUSTED", details), headers=headers)
    assert judged.until == NOW + expected


def test_quota_failure_violations_are_read():
    quotas = quotas_of(fixture_json("gemini/error_429_daily_minute_and_tokens.json"))
    assert [(q.per_day, q.per_model, q.input_tokens) for q in quotas] == [
        (True, True, False),
        (False, True, False),
        (False, True, True),
    ]
    limit_zero = quotas_of(fixture_json("gemini/error_429_free_tier_limit_zero.json"))
    assert {(q.limit, q.model) for q in limit_zero} == {(0, "gemini-3.1-pro")}


def test_quota_metadata_in_error_info_is_read():
    info = error_info("RATE_LIMIT_EXCEEDED")
    info["metadata"] = {"quota_limit": "GenerateRequestsPerDayPerProjectPerModel", "quota_limit_value": "0"}
    (quota,) = quotas_of(error(429, "x", "RESOURCE_EXHAUSTED", [info]))
    assert quota.per_day and quota.limit == 0


# -- Gemini's own faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, fixture",
    [
        (500, "error_500_internal.json"),
        (503, "error_503_unavailable.json"),
        (504, None),
        (408, None),
        (307, None),
    ],
)
def test_server_faults_are_transient(status, fixture):
    judged = verdict(status, fixture)
    assert (judged.fault, judged.scope, judged.rest) == (Fault.TRANSIENT, Scope.NONE, Rest.NONE)


def test_success():
    assert verdict(200).fault is Fault.OK and verdict(200).outcome == "ok"


# -- helpers -----------------------------------------------------------------------------------------


def test_next_pacific_midnight_follows_daylight_saving():
    # The night the clocks go forward (2026-03-08): the next midnight is 23 hours after the last.
    before = datetime(2026, 3, 7, 23, 59, tzinfo=PACIFIC).timestamp()
    assert next_pacific_midnight(before) == datetime(2026, 3, 8, 0, 0, tzinfo=PACIFIC).timestamp()
    after = next_pacific_midnight(datetime(2026, 3, 8, 0, 0, tzinfo=PACIFIC).timestamp())
    assert after - datetime(2026, 3, 8, 0, 0, tzinfo=PACIFIC).timestamp() == 23 * 3600
    # At midnight exactly, the next one is a day later; in winter Pacific is UTC-8.
    winter = datetime(2026, 1, 15, 0, 0, tzinfo=PACIFIC).timestamp()
    assert next_pacific_midnight(winter) - winter == 24 * 3600
    assert (
        datetime.fromtimestamp(next_pacific_midnight(winter), PACIFIC).utcoffset().total_seconds()
        == -8 * 3600
    )


def test_retry_delay_from_retry_info_then_header_then_message():
    assert retry_delay(fixture_json("gemini/error_429_resource_exhausted.json")) == 26.0
    fractional = {
        "error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}]}
    }
    assert retry_delay(fractional) == 34.4
    assert retry_delay(fixture_json("gemini/error_429_resource_exhausted_bare.json")) is None
    assert retry_delay(None, {"Retry-After": "7"}) == 7.0
    assert retry_delay(None, {"Retry-After": "Wed, 21 Oct 2015"}) is None
    assert retry_delay(fixture_json("gemini/error_429_free_tier_limit_zero.json")) == pytest.approx(
        5.237548564
    )


def test_backoff_is_capped():
    assert all(0 <= backoff(n, 0.5, 2.0) <= 2.0 for n in range(1, 30))
