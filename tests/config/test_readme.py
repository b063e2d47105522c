"""The README's configuration table names every setting the gateway reads."""

import re

from app.admin.data import ENV_NAMES
from app.config.settings import RUNTIME_SETTINGS
from tests.conftest import ROOT


def table_rows() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            for name in re.findall(r"`([A-Z_]+)`", line.split("|")[1]):
                rows[name] = line
    return rows


def test_every_setting_is_in_the_configuration_table():
    rows = table_rows()
    assert not [name for name in ENV_NAMES.values() if name not in rows]


def test_runtime_settings_are_marked_as_such():
    rows = table_rows()
    assert all("*Runtime.*" in rows[name] for name in RUNTIME_SETTINGS)
    assert not [name for name, row in rows.items() if "*Runtime.*" in row and name not in RUNTIME_SETTINGS]
