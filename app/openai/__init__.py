"""The OpenAI-compatible dialect."""
