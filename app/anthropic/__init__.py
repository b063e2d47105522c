"""The Anthropic-compatible dialect."""
