"""The admin session: a signed cookie scoped to /admin, its CSRF token, its revocation, and login backoff."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..store import Store

COOKIE = "gemgate_admin"
PATH = "/admin"
LIFETIME = 12 * 3600  # seconds a login lasts
# Failed logins, counted per client address in the shared store (across workers and instances). An
# address may fail FREE_FAILURES times; then it waits before each try, twice as long after each new
# failure, up to BACKOFF_MAX. Its failures are forgotten a day after the latest, or at a login.
# There is no global limit: a guesser slows only itself, never the operator at another address.
FREE_FAILURES = 5
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 900.0
FORGET_FAILURES = 86400.0


def backoff(failures: int) -> float:
    """Seconds an address with `failures` failed logins waits after its latest."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(BACKOFF_FIRST * 2 ** (failures - FREE_FAILURES), BACKOFF_MAX)


class Sessions:
    """Issues and checks admin sessions. The cookie is signed, not encrypted: it holds only its id, a
    CSRF token, the login time and a fingerprint of the password (changing it ends every session). A
    logout revokes the id in the shared store, so a copy of the cookie stops working too."""

    def __init__(self, secret: bytes, password: str, store: Store):
        self._serializer = URLSafeTimedSerializer(secret, salt="gemgate.admin.session")
        self._password = _digest(password)
        self._fingerprint = hmac.new(
            secret, b"admin-password\0" + password.encode(), hashlib.sha256
        ).hexdigest()[:32]
        self.store = store

    def password_ok(self, given: str) -> bool:
        return hmac.compare_digest(_digest(given), self._password)

    def login_attempt(self, address: str, now: float) -> float | None:
        """The seconds `address` must still wait before trying a password, or None: then the attempt is
        counted as a failure until `logged_in` clears it (so concurrent guesses cannot pass together)."""
        return self.store.login_attempt(address, now, backoff, FORGET_FAILURES)

    def logged_in(self, address: str) -> None:
        self.store.login_succeeded(address)

    def new(self) -> dict:
        return {
            "sid": secrets.token_urlsafe(16),
            "fp": self._fingerprint,
            "csrf": secrets.token_urlsafe(32),
            "iat": int(time.time()),
        }

    def revoke(self, session: dict) -> None:
        """End the session for every copy of its cookie, on every worker."""
        self.store.revoke_session(session["sid"], session["iat"] + LIFETIME)

    def load(self, cookie: str | None) -> dict | None:
        """The session in the cookie, or None when it is missing, forged, expired, logged out or for an old
        password. Raises StoreUnavailable when the store cannot say whether it was logged out."""
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
        if not isinstance(data.get("csrf"), str) or not isinstance(data.get("sid"), str):
            return None
        if self.store.session_revoked(data["sid"], time.time()):  # logged out
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
