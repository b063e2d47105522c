import pytest

from app.config import ADMIN_PASSWORD_FILE, CLIENT_KEY_FILE, Config, ConfigError


def test_defaults_and_lists(tmp_path):
    config = Config.from_env({"API_KEYS": "a, b", "GEMINI_API_KEYS": "x,y,", "DATA_DIR": str(tmp_path)})
    assert config.api_keys == ("a", "b")
    assert config.gemini_api_keys == ("x", "y")
    assert config.gemini_base_url == "https://generativelanguage.googleapis.com"
    assert config.safety_threshold == "OFF"
    assert (config.request_body_timeout, config.reserved_output_tokens) == (120.0, 8192)
    assert not config.generated_api_key


@pytest.mark.parametrize(
    "name, value",
    [
        ("UPSTREAM_RETRIES", "many"),
        ("UPSTREAM_RETRIES", "-1"),
        ("UPSTREAM_TIMEOUT", "soon"),
        ("UPSTREAM_TIMEOUT", "0"),
        ("HEARTBEAT_INTERVAL", "-5"),
        ("SAFETY_THRESHOLD", "SOMETIMES"),
        ("GEMINI_BASE_URL", "ftp://example"),
        ("MAX_REQUEST_BYTES", "12"),
        ("API_KEYS", "a,a"),
        ("UPSTREAM_TIMEOUT", "nan"),
        ("STREAMING_MODE", "sometimes"),
        ("FAKE_STREAM_HEARTBEAT", "0"),
        ("NONSTREAM_KEEPALIVE", "soon"),
        ("FORCE_DIALECTS", "openai,klingon"),
        ("FORCE_URL_CONTEXT", "perhaps"),
        ("ADMIN_PASSWORD", "short"),
        ("KEY_COOLDOWN_MAX", "inf"),
        ("KEY_COOLDOWN_MAX", "0"),
        ("SESSION_AFFINITY_TTL", "-1"),
        ("RESOURCE_AFFINITY_TTL", "forever"),
        ("MODEL_FALLBACKS", "gemini-2.5-pro"),
        ("MODEL_FALLBACKS", "gemini-2.5-pro>"),
        ("MODEL_FALLBACKS", "a>b>a"),
        ("MODEL_FALLBACKS", "a>b c"),
        ("MEDIA_URLS", "sometimes"),
        ("MAX_UPLOAD_BYTES", "lots"),
        ("MAX_UPLOAD_BYTES", "100"),
        ("REQUEST_BODY_TIMEOUT", "0"),
        ("RESERVED_OUTPUT_TOKENS", "-1"),
        ("RESERVED_OUTPUT_TOKENS", "lots"),
        ("GEMINI_CA_BUNDLE", "/nowhere/ca.pem"),
        ("REQUESTS_CA_BUNDLE", "/nowhere/ca.pem"),
        ("SSL_CERT_FILE", "/nowhere/ca.pem"),
        ("UPSTREAM_POOL_SIZE", "0"),
        ("WORKER_CONNECTIONS", "lots"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({"API_KEYS": "k", name: value, "DATA_DIR": str(tmp_path)})


def test_key_pool_settings(tmp_path):
    config = Config.from_env(
        {
            "API_KEYS": "k",
            "DATA_DIR": str(tmp_path),
            "MODEL_FALLBACKS": " gemini-3-pro-preview > gemini-2.5-pro>models/gemini-2.5-flash , x>y",
            "KEY_COOLDOWN_MAX": "900",
        }
    )
    assert config.model_fallbacks == (
        ("gemini-3-pro-preview", "gemini-2.5-pro", "gemini-2.5-flash"),
        ("x", "y"),
    )
    assert config.key_cooldown_max == 900 and config.session_affinity_ttl == 3600
    assert config.resource_affinity_ttl == 172800
    assert Config.from_env({"API_KEYS": "k", "DATA_DIR": str(tmp_path)}).model_fallbacks == ()


def test_generated_client_key_is_strong_and_shared(tmp_path):
    first = Config.from_env({"DATA_DIR": str(tmp_path)})
    second = Config.from_env({"DATA_DIR": str(tmp_path)})
    assert first.generated_api_key and second.generated_api_key
    assert first.api_keys == second.api_keys  # every worker and every restart agree
    assert len(first.api_keys[0]) >= 40
    assert (tmp_path / CLIENT_KEY_FILE).stat().st_mode & 0o077 == 0
    other = Config.from_env({"DATA_DIR": str(tmp_path / "elsewhere")})
    assert other.api_keys != first.api_keys


@pytest.mark.parametrize("value, expected", [("", False), ("true", True), ("1", True), ("off", False)])
def test_force_switches(tmp_path, value, expected):
    config = Config.from_env(
        {
            "API_KEYS": "k",
            "DATA_DIR": str(tmp_path),
            "FORCE_GOOGLE_SEARCH": value,
            "FORCE_CODE_EXECUTION": value,
        }
    )
    assert config.force_search is expected and config.force_code is expected


def test_force_switch_rejects_other_words(tmp_path):
    with pytest.raises(ConfigError, match="FORCE_GOOGLE_SEARCH"):
        Config.from_env({"API_KEYS": "k", "DATA_DIR": str(tmp_path), "FORCE_GOOGLE_SEARCH": "sometimes"})


def test_streaming_and_keepalive_settings(tmp_path):
    default = Config.from_env({"API_KEYS": "k", "DATA_DIR": str(tmp_path)})
    assert (default.streaming_mode, default.fake_stream_heartbeat, default.nonstream_keepalive) == (
        "real",
        5,
        0,
    )
    assert default.force_dialects == ("gemini", "openai", "anthropic")
    chosen = Config.from_env(
        {
            "API_KEYS": "k",
            "DATA_DIR": str(tmp_path),
            "STREAMING_MODE": "Fake",
            "FAKE_STREAM_HEARTBEAT": "2",
            "NONSTREAM_KEEPALIVE": "10",
            "FORCE_DIALECTS": "anthropic, openai",
            "FORCE_URL_CONTEXT": "true",
            "FORCE_THINKING": "1",
        }
    )
    assert (chosen.streaming_mode, chosen.fake_stream_heartbeat, chosen.nonstream_keepalive) == (
        "fake",
        2,
        10,
    )
    assert (
        chosen.force_dialects == ("openai", "anthropic")
        and chosen.force_url_context
        and chosen.force_thinking
    )
    assert (
        Config.from_env(
            {"API_KEYS": "k", "DATA_DIR": str(tmp_path), "NONSTREAM_KEEPALIVE": "off"}
        ).nonstream_keepalive
        == 0
    )
    assert (
        Config.from_env({"API_KEYS": "k", "DATA_DIR": str(tmp_path), "FORCE_DIALECTS": "none"}).force_dialects
        == ()
    )


def test_a_generated_admin_password_is_strong_shared_and_can_be_turned_off(tmp_path):
    first = Config.from_env({"API_KEYS": "k", "DATA_DIR": str(tmp_path)})
    second = Config.from_env({"API_KEYS": "k", "DATA_DIR": str(tmp_path)})
    assert first.generated_admin_password and first.admin_password == second.admin_password
    assert len(first.admin_password) >= 20 and first.session_secret
    assert (tmp_path / ADMIN_PASSWORD_FILE).stat().st_mode & 0o077 == 0
    assert first.admin_password not in repr(first)
    chosen = Config.from_env(
        {"API_KEYS": "k", "DATA_DIR": str(tmp_path), "ADMIN_PASSWORD": "a long password"}
    )
    assert chosen.admin_password == "a long password" and not chosen.generated_admin_password
    off = Config.from_env({"API_KEYS": "k", "DATA_DIR": str(tmp_path / "x"), "ADMIN_PASSWORD": "OFF"})
    assert off.admin_password is None and off.session_secret is None and not off.generated_admin_password
    assert not (tmp_path / "x" / ADMIN_PASSWORD_FILE).exists()


def test_request_size_media_urls_and_upload_settings(tmp_path):
    config = Config.from_env({"API_KEYS": "k", "DATA_DIR": str(tmp_path)})
    # Gemini's 100 MB of inline data, base64 in JSON, and room for the rest of the request.
    assert config.max_request_bytes == 105 * 2**20
    assert config.max_upload_bytes == 2 * 2**30 and config.media_urls == "pass"
    config = Config.from_env(
        {"API_KEYS": "k", "DATA_DIR": str(tmp_path), "MEDIA_URLS": " Fetch ", "MAX_UPLOAD_BYTES": "1048576"}
    )
    assert config.media_urls == "fetch" and config.max_upload_bytes == 2**20


def test_the_ca_bundle_is_the_gateway_s_own_setting_else_the_one_requests_or_openssl_read(tmp_path):
    ours, requests_ca, openssl_ca = (tmp_path / name for name in ("ours.pem", "requests.pem", "openssl.pem"))
    for path in (ours, requests_ca, openssl_ca):
        path.write_text("-----BEGIN CERTIFICATE-----\n")
    base = {"API_KEYS": "k", "DATA_DIR": str(tmp_path / "data")}
    assert Config.from_env(base).ca_bundle is None  # requests' own bundle
    everything = {
        **base,
        "GEMINI_CA_BUNDLE": str(ours),
        "REQUESTS_CA_BUNDLE": str(requests_ca),
        "SSL_CERT_FILE": str(openssl_ca),
    }
    assert Config.from_env(everything).ca_bundle == str(ours)
    del everything["GEMINI_CA_BUNDLE"]
    assert Config.from_env(everything).ca_bundle == str(requests_ca)
    del everything["REQUESTS_CA_BUNDLE"]
    assert Config.from_env(everything).ca_bundle == str(openssl_ca)
    assert Config.from_env({**base, "SSL_CERT_DIR": str(tmp_path)}).ca_bundle == str(tmp_path)


def test_the_upstream_pool_holds_a_connection_for_each_request_a_worker_serves_at_once(tmp_path):
    base = {"API_KEYS": "k", "DATA_DIR": str(tmp_path)}
    assert Config.from_env(base).pool_size == 4000  # gunicorn.conf.py's WORKER_CONNECTIONS default
    assert Config.from_env({**base, "WORKER_CONNECTIONS": "500"}).pool_size == 500
    assert Config.from_env({**base, "WORKER_CONNECTIONS": "500", "UPSTREAM_POOL_SIZE": "64"}).pool_size == 64
