"""Calling Gemini: the key pool, the retry policy and the HTTP client. Knows no client dialect."""
