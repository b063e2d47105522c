"""A setting is missing or malformed."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""
