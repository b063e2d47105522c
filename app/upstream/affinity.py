"""Session affinity hints of the request being served: a header, or what its view found in the body."""

from __future__ import annotations

from flask import g, has_request_context, request

# Headers any client may send to keep a conversation on one upstream key (Gemini's implicit
# prompt cache is per project): the first one present wins over a hint in the body.
HINT_HEADERS = ("x-session-affinity", "x-gemgate-session")
MAX_HINT = 256  # longer hints are cut: they are hashed anyway


def prefer_session(*hints: object) -> None:
    """Called by a view with its body's session hints, best first (OpenAI `prompt_cache_key` and
    `user`, Anthropic `metadata.user_id`); the first non-empty string counts."""
    for hint in hints:
        if isinstance(hint, str) and hint.strip():
            g.session_hint = hint.strip()[:MAX_HINT]
            return


def current() -> tuple[str | None, str | None]:
    """(client key name, session hint) of the request being served; (None, None) outside one."""
    if not has_request_context():
        return None, None
    rec = g.get("record")
    client = getattr(rec, "client", None)
    for name in HINT_HEADERS:
        value = request.headers.get(name, "").strip()
        if value:
            return client, value[:MAX_HINT]
    return client, g.get("session_hint")
