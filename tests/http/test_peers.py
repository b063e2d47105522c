"""The client's real address behind proxies: X-Forwarded-For believed only as far as FORWARDED_ALLOW_IPS says."""

import pytest

from app.config import Config, ConfigError
from app.http.peers import TrustedProxies


@pytest.mark.parametrize(
    "trusted, peer, forwarded, expected",
    [
        (("127.0.0.1",), "127.0.0.1", None, "127.0.0.1"),
        (("127.0.0.1",), "127.0.0.1", "203.0.113.5", "203.0.113.5"),
        (("127.0.0.1",), "127.0.0.1", "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # the client's own say: ignored
        (("127.0.0.1",), "192.0.2.1", "203.0.113.5", "192.0.2.1"),  # not a trusted peer
        (("127.0.0.1", "10.0.0.0/8"), "127.0.0.1", "203.0.113.5, 10.1.2.3", "203.0.113.5"),  # two proxies
        (("127.0.0.1", "10.0.0.0/8"), "127.0.0.1", "10.1.2.3", "10.1.2.3"),  # only proxies: the farthest
        (("127.0.0.1",), "127.0.0.1", "not an address", "127.0.0.1"),
        (("127.0.0.1",), "127.0.0.1", "203.0.113.5, junk", "127.0.0.1"),
        (("*",), "10.0.0.7", "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # any peer, but only its own entry
        (("::1",), "::1", "2001:db8::1", "2001:db8::1"),
        (("127.0.0.1",), None, "203.0.113.5", "unknown"),
    ],
)
def test_client_address(trusted, peer, forwarded, expected):
    assert TrustedProxies(trusted).client_address(peer, forwarded) == expected


def test_forwarded_allow_ips_is_read_like_gunicorn_reads_it(tmp_path):
    env = {"API_KEYS": "k", "DATA_DIR": str(tmp_path)}
    assert Config.from_env(env).forwarded_allow_ips == ("127.0.0.1",)
    assert Config.from_env({**env, "FORWARDED_ALLOW_IPS": "*"}).forwarded_allow_ips == ("*",)
    both = Config.from_env({**env, "FORWARDED_ALLOW_IPS": "10.0.0.0/8, ::1"})
    assert both.forwarded_allow_ips == ("10.0.0.0/8", "::1")
    with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS"):
        Config.from_env({**env, "FORWARDED_ALLOW_IPS": "nginx.local"})


@pytest.mark.parametrize(
    "trusted, peer, forwarded, expected",
    [
        (("127.0.0.1",), "127.0.0.1", "gw.example.com", "gw.example.com"),
        (("127.0.0.1",), "127.0.0.1", "evil.example, gw.example.com:8443", "gw.example.com:8443"),
        (("127.0.0.1",), "203.0.113.9", "evil.example", "internal:7860"),  # not from a trusted proxy
        (("*",), "203.0.113.9", "[2001:db8::1]:8443", "[2001:db8::1]:8443"),
        (("127.0.0.1",), "127.0.0.1", 'gw.example.com/"><x', "internal:7860"),  # not a host
        (("127.0.0.1",), "127.0.0.1", None, "internal:7860"),
    ],
)
def test_public_host(trusted, peer, forwarded, expected):
    assert TrustedProxies(trusted).public_host(peer, "internal:7860", forwarded) == expected
