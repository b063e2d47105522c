"""Runtime settings: the environment's values, the admin page's changes from the shared store, refreshed
at most every REFRESH seconds, and kept when the store is away."""

import dataclasses

import pytest

from app.config import Config, ConfigError
from app.config.runtime import REFRESH, LiveSettings, effective, env_text
from app.store.sqlite import SQLiteStore
from tests.conftest import make_env


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class CountingStore:
    """A store that counts reads, and can fail."""

    def __init__(self, inner):
        self.inner = inner
        self.reads = 0
        self.broken = False

    def settings(self):
        self.reads += 1
        if self.broken:
            raise RuntimeError("store away")
        return self.inner.settings()

    def update_settings(self, changes):
        self.inner.update_settings(changes)


@pytest.fixture
def config(tmp_path):
    return Config.from_env(make_env(DATA_DIR=str(tmp_path), HEARTBEAT_INTERVAL="15", STREAMING_MODE="real"))


@pytest.fixture
def store(tmp_path):
    opened = SQLiteStore(tmp_path / "gemgate.db")
    yield opened
    opened.close()


def test_the_environment_gives_the_first_values(config, store):
    live = LiveSettings(config, store)
    assert live.current() is config and live.overrides() == {}


def test_a_change_reaches_another_worker_within_the_refresh_and_without_a_read_per_request(config, store):
    clock = Clock()
    counting = CountingStore(store)
    reader = LiveSettings(config, counting, clock)
    writer = LiveSettings(config, store)
    assert reader.current().streaming_mode == "real"
    changed = writer.change({"STREAMING_MODE": "FAKE", "FAKE_STREAM_HEARTBEAT": "2.5", "LOG_BODIES": "yes"})
    assert changed == {
        "STREAMING_MODE": ("real", "fake"),
        "FAKE_STREAM_HEARTBEAT": ("5", "2.5"),
        "LOG_BODIES": ("false", "true"),
    }
    for _ in range(100):
        assert reader.current().streaming_mode == "real"  # still the last read
    assert counting.reads == 1
    clock.now += REFRESH
    current = reader.current()
    assert (current.streaming_mode, current.fake_stream_heartbeat, current.log_bodies) == ("fake", 2.5, True)
    assert current.api_keys == config.api_keys  # everything else is the environment's
    assert counting.reads == 2
    assert reader.overrides() == {
        "STREAMING_MODE": "FAKE",
        "FAKE_STREAM_HEARTBEAT": "2.5",
        "LOG_BODIES": "yes",
    }


def test_the_admin_page_reads_a_change_at_once_on_any_worker(config, store):
    from app.admin.data import runtime_view

    clock = Clock()
    other = LiveSettings(config, store, clock)
    assert other.current().streaming_mode == "real"
    LiveSettings(config, store).change({"STREAMING_MODE": "fake"})
    assert other.current().streaming_mode == "real"  # requests may see it up to REFRESH later...
    [row] = [r for r in runtime_view(other) if r["field"].name == "STREAMING_MODE"]
    assert (row["value"], row["changed"]) == ("fake", True)  # ...the page that follows the save at once
    assert other.current().streaming_mode == "fake"


def test_forgetting_a_change_goes_back_to_the_environment(config, store):
    live = LiveSettings(config, store)
    live.change({"HEARTBEAT_INTERVAL": "3"})
    assert live.current().heartbeat_interval == 3
    assert live.change({"HEARTBEAT_INTERVAL": None}) == {"HEARTBEAT_INTERVAL": ("3", "15")}
    assert live.current().heartbeat_interval == 15


@pytest.mark.parametrize(
    "name, value",
    [
        ("STREAMING_MODE", "sometimes"),
        ("FORCE_THINKING", "maybe"),
        ("SAFETY_THRESHOLD", "BLOCK_ALL"),
        ("HEARTBEAT_INTERVAL", "-1"),
        ("FAKE_STREAM_HEARTBEAT", "0"),
        ("FAKE_STREAM_HEARTBEAT", ""),
        ("API_KEYS", "a-new-key"),  # not a runtime setting
    ],
)
def test_a_bad_change_names_the_setting_and_stores_nothing(config, store, name, value):
    live = LiveSettings(config, store)
    with pytest.raises(ConfigError, match=name):
        live.change({"FORCE_CODE_EXECUTION": "true", name: value})
    assert store.settings() == {}


def test_the_last_values_are_kept_while_the_store_is_away(config, store):
    clock = Clock()
    counting = CountingStore(store)
    live = LiveSettings(config, counting, clock)
    LiveSettings(config, store).change({"FORCE_URL_CONTEXT": "true"})
    assert live.current().force_url_context
    counting.broken = True
    clock.now += REFRESH
    assert live.current().force_url_context  # kept, and tried again after REFRESH, not on every request
    reads = counting.reads
    live.current()
    assert counting.reads == reads


def test_a_stored_value_that_no_longer_reads_is_skipped(config):
    changed = effective(config, {"STREAMING_MODE": "warp", "FORCE_THINKING": "true", "OLD_SETTING": "x"})
    assert changed == dataclasses.replace(config, force_thinking=True)


def test_env_text(config):
    assert [env_text(config, n) for n in ("STREAMING_MODE", "FORCE_THINKING", "HEARTBEAT_INTERVAL")] == [
        "real",
        "false",
        "15",
    ]
