"""CLIENT_KEYS_FILE and the shared-state settings: parsed once at start, bad entries named."""

import hashlib
import json

import pytest

from app.config import Config, ConfigError
from app.http.auth import ClientKeys

YAML = """
keys:
  - name: alice
    key: alice-secret-key
    models: ["gemini-2.5-*", "models/text-embedding-004"]
    requests_per_minute: 60
    tokens_per_minute: 100000
    tokens_per_day: 2000000
    concurrent_requests: 4
  - name: batch.job
    key_sha256: {digest}
"""


def env(tmp_path, **values):
    return {"DATA_DIR": str(tmp_path / "data"), **values}


def test_yaml_keys_file(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text(YAML.format(digest=hashlib.sha256(b"batch-secret").hexdigest()))
    config = Config.from_env(env(tmp_path, CLIENT_KEYS_FILE=str(path)))
    alice, batch = config.client_keys
    assert (alice.name, alice.models) == ("alice", ("gemini-2.5-*", "text-embedding-004"))
    assert (alice.requests_per_minute, alice.tokens_per_minute, alice.tokens_per_day) == (60, 100000, 2000000)
    assert alice.concurrent_requests == 4 and batch.concurrent_requests is None
    assert batch.models is None and batch.requests_per_minute is None
    assert "secret" not in repr(config.client_keys)
    # A keys file alone is enough: no key is generated, and both keys authenticate by name.
    assert config.api_keys == () and not config.generated_api_key
    assert not (tmp_path / "data" / "client_api_key").exists()
    keys = ClientKeys(config.api_keys, config.client_keys)
    assert keys.identify("alice-secret-key") == "alice" and keys.identify("batch-secret") == "batch.job"


def test_json_keys_file_beside_api_keys(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{"name": "ci", "key": "ci-key", "requests_per_minute": 5}]))
    config = Config.from_env(env(tmp_path, API_KEYS="flat-key", CLIENT_KEYS_FILE=str(path)))
    keys = ClientKeys(config.api_keys, config.client_keys)
    assert keys.identify("flat-key") == "key-1" and keys.identify("ci-key") == "ci"
    assert keys.entries["ci"].requests_per_minute == 5


@pytest.mark.parametrize(
    "content, message",
    [
        ("keys: [", "not valid YAML at line 1"),
        ("{}", "must hold one field, 'keys'"),
        ("keys: []", "at least one client key"),
        ("keys: [just-a-string]", "entry 1 must be a mapping"),
        ("keys: [{name: a, key: k, request_per_minute: 5}]", "unknown field(s) request_per_minute"),
        ("keys: [{name: 'a b', key: k}]", "'name' must be"),
        ("keys: [{name: a}]", "exactly one of 'key' or 'key_sha256'"),
        ("keys: [{name: a, key: k, key_sha256: ab}]", "exactly one of 'key' or 'key_sha256'"),
        ("keys: [{name: a, key: 12345}]", "quote it in YAML"),
        ("keys: [{name: a, key_sha256: nothex}]", "64 hex digits"),
        ("keys: [{name: a, key: k, models: []}]", "'models' must be a list"),
        (
            "keys: [{name: a, key: k, requests_per_minute: 0}]",
            "'requests_per_minute' must be a whole number >= 1",
        ),
        ("keys: [{name: a, key: k, tokens_per_day: 1.5}]", "'tokens_per_day' must be a whole number"),
        ("keys: [{name: a, key: k, tokens_per_minute: true}]", "'tokens_per_minute' must be a whole number"),
        ("keys: [{name: a, key: k, concurrent_requests: 0}]", "'concurrent_requests' must be a whole number"),
        ("keys: [{name: a, key: k}, {name: a, key: j}]", "the same name twice"),
        ("keys: [{name: a, key: k}, {name: b, key: k}]", "the same key twice"),
        ("keys: [{name: key-1, key: k}]", "the name API_KEYS gives its keys"),
        ("keys: [{name: a, key: flat-key}]", "also listed in API_KEYS"),
    ],
)
def test_bad_keys_files_name_the_setting_and_the_entry(tmp_path, content, message):
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        Config.from_env(env(tmp_path, API_KEYS="flat-key", CLIENT_KEYS_FILE=str(path)))
    assert "CLIENT_KEYS_FILE" in str(err.value) and message in str(err.value)


def test_yaml_errors_never_quote_the_file(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - name: a\n    key: super-secret-value: [\n")
    with pytest.raises(ConfigError) as err:
        Config.from_env(env(tmp_path, CLIENT_KEYS_FILE=str(path)))
    assert "super-secret" not in str(err.value) and "line 3" in str(err.value)


def test_missing_keys_file(tmp_path):
    with pytest.raises(ConfigError, match="CLIENT_KEYS_FILE .* cannot be read"):
        Config.from_env(env(tmp_path, CLIENT_KEYS_FILE=str(tmp_path / "nope.yaml")))


@pytest.mark.parametrize(
    "name, value",
    [
        ("REDIS_URL", "http://localhost:6379"),
        ("USAGE_RETENTION_DAYS", "-1"),
        ("USAGE_RETENTION_DAYS", "forever"),
    ],
)
def test_bad_store_settings(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env(env(tmp_path, API_KEYS="k", **{name: value}))


def test_store_settings(tmp_path):
    config = Config.from_env(
        env(
            tmp_path,
            API_KEYS="k",
            REDIS_URL="rediss://:pw@cache:6380/2",
            REDIS_PREFIX="team-a:",
            USAGE_RETENTION_DAYS="0",
        )
    )
    assert (config.redis_url, config.redis_prefix, config.usage_retention_days) == (
        "rediss://:pw@cache:6380/2",
        "team-a:",
        0,
    )
    default = Config.from_env(env(tmp_path, API_KEYS="k"))
    assert (default.redis_url, default.usage_retention_days) == (None, 90)
