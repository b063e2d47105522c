"""The admin page's data: usage summaries, and settings with every secret masked."""

import dataclasses

import pytest

from app.admin import data
from app.config import Config
from tests.conftest import make_env


def row(t, model="gemini-2.5-flash", client="key-1", status=200, tokens=10, **extra):
    return {
        "time": t,
        "request_id": f"req_{t}",
        "client": client,
        "dialect": "gemini",
        "endpoint": "/x",
        "model": model,
        "stream": False,
        "status": status,
        "prompt_tokens": tokens,
        "completion_tokens": 0,
        "thought_tokens": 0,
        "first_byte_ms": 1.0,
        "total_ms": 2.0,
        "attempts": 1,
        "key_label": "key-1",
        "error": None,
        **extra,
    }


def test_summary_buckets_series_and_latest():
    since, until = 0.0, 4800.0  # 48 buckets of 100 s
    rows = [
        row(50),
        row(150),
        row(160, model="gemini-2.5-pro", client="key-2", tokens=5),
        row(4799, status=429, tokens=0),
    ]
    summary = data.summarize(iter(rows), since, until, data.Filters())
    requests = {s["name"]: s["values"] for s in summary["charts"]["model_requests"]}
    assert requests["gemini-2.5-flash"][:2] == [1, 1] and requests["gemini-2.5-flash"][47] == 1
    assert requests["gemini-2.5-pro"][1] == 1
    tokens = {s["name"]: sum(s["values"]) for s in summary["charts"]["client_tokens"]}
    assert tokens == {"key-1": 20, "key-2": 5}
    assert [r["time"] for r in summary["latest"]] == [4799, 160, 150, 50]
    assert summary["totals"] == {"requests": 4, "tokens": 25, "errors": 1}
    assert summary["models"] == ["gemini-2.5-flash", "gemini-2.5-pro"]
    filtered = data.summarize(iter(rows), since, until, data.Filters(status="429"))
    assert [r["time"] for r in filtered["latest"]] == [4799]


def test_more_series_than_colours_fold_into_other():
    rows = [row(i, model=f"model-{i % 12}") for i in range(120)]
    charts = data.summarize(iter(rows), 0, 4800, data.Filters())["charts"]["model_requests"]
    assert len(charts) == data.TOP + 1 and charts[-1]["name"] == "other"
    assert sum(sum(s["values"]) for s in charts) == 120


def test_the_scan_is_bounded(monkeypatch):
    monkeypatch.setattr(data, "MAX_ROWS", 10)
    summary = data.summarize((row(i) for i in range(1000)), 0, 4800, data.Filters())
    assert summary["truncated"] and summary["totals"]["requests"] == 10


def test_filters_ignore_unknown_values():
    f = data.Filters.from_args({"status": "<script>", "dialect": "cobol", "client": "key-1", "model": " m "})
    assert f == data.Filters(client="key-1", model="m", dialect="", status="")


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:hunter2@redis.internal:6380/0", "redis://****@redis.internal:6380/0"),
        ("rediss://default:hunter2@[::1]:6379?ssl_cert_reqs=none", "rediss://****@[::1]:6379?…"),
        ("unix:///run/redis.sock?password=hunter2", "unix:///run/redis.sock?…"),
        ("http://user:hunter2@proxy:3128", "http://****@proxy:3128"),
        ("https://generativelanguage.googleapis.com", "https://generativelanguage.googleapis.com"),
    ],
)
def test_urls_lose_their_credentials(url, shown):
    assert data._mask_url(url) == shown
    assert "hunter2" not in data._mask_url(url)


def test_every_setting_is_listed_and_unknown_text_is_masked(tmp_path):
    config = Config.from_env(
        make_env(
            DATA_DIR=str(tmp_path), ADMIN_PASSWORD="long enough pw", REDIS_URL="redis://:hunter2@r:6379/0"
        )
    )
    shown = dict(data.describe_config(config))
    assert shown["ADMIN_PASSWORD"] == "set (hidden)" and shown["SESSION_SECRET"] == "set (hidden)"
    assert shown["REDIS_URL"] == "redis://****@r:6379/0"
    assert shown["UPSTREAM_RETRIES"] == "2" and shown["KEY_COOLDOWN"] == "60"
    assert shown["CORS_ORIGINS"] == "*" and shown["METRICS_TOKEN"] == "not set"
    listed = {f.name for f in dataclasses.fields(Config)} - {"generated_api_key", "generated_admin_password"}
    assert len(shown) == len(listed)
    assert set(data.ENV_NAMES) >= listed  # a new setting needs a name here, and a rule if it is safe

    @dataclasses.dataclass(frozen=True)
    class Newer(Config):
        webhook_secret: str = "whsec_123"

    assert dict(data.describe_config(Newer()))["webhook_secret"] == "set (hidden)"
