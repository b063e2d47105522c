"""MODEL_ALIASES: clients built for one vendor send its model names; the gateway maps them to Gemini."""

import json

import pytest

from app import create_app
from app.config import Config, ConfigError
from app.translate.directives import parse_model_name, resolve_alias
from tests.conftest import AUTH, BASE, fixture_bytes, make_env

ALIASES = (
    ("claude-*haiku*", "gemini-2.5-flash-lite"),
    ("claude-*", "gemini-2.5-pro"),
    ("gpt-4o", "gemini-2.5-flash"),
)


def test_first_matching_pattern_wins_and_other_names_pass():
    assert resolve_alias("claude-3-5-haiku-20241022", ALIASES) == "gemini-2.5-flash-lite"
    assert resolve_alias("claude-sonnet-4-5-20250929", ALIASES) == "gemini-2.5-pro"
    assert resolve_alias("gpt-4o", ALIASES) == "gemini-2.5-flash"
    assert resolve_alias("gpt-4o-mini", ALIASES) == "gpt-4o-mini"
    assert parse_model_name("gemini-2.5-flash-high", aliases=ALIASES).model == "gemini-2.5-flash"


def test_config_parses_and_rejects(tmp_path):
    env = {"API_KEYS": "k", "DATA_DIR": str(tmp_path)}
    config = Config.from_env({**env, "MODEL_ALIASES": "claude-*=gemini-2.5-pro, gpt-4o = gemini-2.5-flash"})
    assert config.model_aliases == (("claude-*", "gemini-2.5-pro"), ("gpt-4o", "gemini-2.5-flash"))
    for bad in ("claude-*", "=gemini-2.5-pro", "claude-*=gemini/../x"):
        with pytest.raises(ConfigError, match="MODEL_ALIASES"):
            Config.from_env({**env, "MODEL_ALIASES": bad})


@pytest.mark.parametrize(
    "path, body",
    [
        (
            "/v1/messages",
            {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
        ),
        (
            "/v1/chat/completions",
            {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]},
        ),
    ],
)
def test_an_aliased_name_reaches_gemini_as_its_target_and_comes_back_as_sent(tmp_path, mocked, path, body):
    app = create_app(make_env(DATA_DIR=str(tmp_path), MODEL_ALIASES="claude-*=gemini-2.5-pro"))
    mocked.post(
        BASE + "/v1beta/models/gemini-2.5-pro:generateContent",
        body=fixture_bytes("gemini/generate_text.json"),
    )
    r = app.test_client().post(path, json=body, headers=AUTH)
    assert r.status_code == 200, r.data
    assert json.loads(r.data)["model"] == "claude-sonnet-4-5"
    assert mocked.calls[0].request.url.endswith("/models/gemini-2.5-pro:generateContent")
