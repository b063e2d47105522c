"""The admin session: a signed cookie scoped to /admin, its CSRF token, and the login rate limit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..store import Store
from ..usage.limits import Limit

COOKIE = "gemgate_admin"
PATH = "/admin"
LIFETIME = 12 * 3600  # seconds a login lasts
# Login attempts, counted in the shared store so they hold across workers and instances. The
# names cannot clash with a client key's (those never start with '#').
LOGIN_LIMITS = (
    ("#admin-login@{address}", (Limit("requests", 60, 5),)),  # one address
    ("#admin-login", (Limit("requests", 60, 30),)),  # everyone (behind a proxy, all share one address)
)


class Sessions:
    """Issues and checks admin sessions. The cookie is signed, not encrypted: it holds only a
    CSRF token, the login time and a fingerprint of the password (changing it ends every session)."""

    def __init__(self, secret: bytes, password: str, store: Store):
        self._serializer = URLSafeTimedSerializer(secret, salt="gemgate.admin.session")
        self._password = _digest(password)
        self._fingerprint = hmac.new(
            secret, b"admin-password\0" + password.encode(), hashlib.sha256
        ).hexdigest()[:32]
        self.store = store

    def password_ok(self, given: str) -> bool:
        return hmac.compare_digest(_digest(given), self._password)

    def admit_login(self, address: str, now: float) -> float | None:
        """Count one login attempt; the seconds to wait when there have been too many, else None."""
        for name, limits in LOGIN_LIMITS:
            over = self.store.admit(name.format(address=address), limits, now)
            if over is not None:
                return over[1]
        return None

    def new(self) -> dict:
        return {"fp": self._fingerprint, "csrf": secrets.token_urlsafe(32), "iat": int(time.time())}

    def load(self, cookie: str | None) -> dict | None:
        """The session in the cookie, or None when it is missing, forged, expired or for an old password."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=LIFETIME)
        except BadSignature:  # SignatureExpired included
            return None
        if not isinstance(data, dict) or not hmac.compare_digest(str(data.get("fp", "")), self._fingerprint):
            return None
        if not isinstance(data.get("iat"), int) or time.time() - data["iat"] > LIFETIME:
            return None  # re-signing (a flash message) must not extend a login
        if not isinstance(data.get("csrf"), str):
            return None
        return data

    def save(self, response, session: dict, secure: bool) -> None:
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(session),
            max_age=LIFETIME,
            path=PATH,
            httponly=True,
            samesite="Strict",
            secure=secure,
        )

    def clear(self, response, secure: bool) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="Strict", secure=secure)


def csrf_ok(session: dict, given: str | None) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), session["csrf"].encode())


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
