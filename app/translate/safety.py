"""The default safety settings the gateway adds to generate calls that carry none."""

from __future__ import annotations

# The Gemini API's categories; CIVIC_INTEGRITY is deprecated and the IMAGE_* ones are Vertex-only.
SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)


def default_safety_settings(threshold: str) -> list[dict]:
    return [{"category": category, "threshold": threshold} for category in SAFETY_CATEGORIES]
