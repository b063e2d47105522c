"""The admin routes: login, the dashboard, and the key buttons (POST, with a CSRF token)."""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from functools import wraps

from flask import Blueprint, Flask, g, redirect, render_template, request, url_for

from ..config import Config, ConfigError
from ..ops.request_log import iso
from ..state import state, state_of
from ..store import StoreUnavailable
from ..usage.imports import import_jsonl
from . import data
from .session import COOKIE, Sessions, csrf_ok

log = logging.getLogger("gemgate.admin")
bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")
KEY_ACTIONS = ("recheck", "disable", "enable")
_STORE_AWAY = "The gateway's state store is unavailable; try again shortly."
# Pages are served from this origin only, run only its own script, and are never framed or cached.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def register(app: Flask, config: Config) -> None:
    app_state = state_of(app)
    # Only registered with a password, and a password always comes with a session secret.
    assert config.session_secret is not None and config.admin_password is not None
    app_state.admin = Sessions(config.session_secret, config.admin_password, app_state.store)
    app.register_blueprint(bp)


def _client_address() -> str:
    """The operator's real address: behind a trusted proxy (nginx, Heroku's router), the one it forwarded for."""
    return state().proxies.client_address(request.remote_addr, request.headers.get("X-Forwarded-For"))


def _sessions() -> Sessions:
    sessions = state().admin
    assert sessions is not None  # the blueprint is registered only with an admin password
    return sessions


@bp.after_request
def _secure(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if getattr(g, "admin_session_changed", False):
        _sessions().save(response, g.admin_session, request.is_secure)
    return response


def _page(template: str, status: int = 200, **context):
    return render_template(f"admin/{template}", **context), status


def login_required(view):
    """Without a valid session: pages redirect to the login, actions answer 401; nothing else runs."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            session = _sessions().load(request.cookies.get(COOKIE))
        except StoreUnavailable:
            return _STORE_AWAY, 503, {"Content-Type": "text/plain"}
        if session is None:
            if request.method == "GET":
                return redirect(url_for("admin.login"), 303)
            return (
                "Log in first: your admin session is missing or expired.\n",
                401,
                {"Content-Type": "text/plain"},
            )
        if request.method == "POST" and not csrf_ok(session, request.form.get("csrf")):
            return (
                "The form's CSRF token is missing or wrong; reload the page and try again.\n",
                403,
                {"Content-Type": "text/plain"},
            )
        g.admin_session = session
        return view(*args, **kwargs)

    return wrapper


def _flash(message: str) -> None:
    g.admin_session = dict(g.admin_session, flash=message)
    g.admin_session_changed = True


# -- login ------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    sessions = _sessions()
    try:
        if request.method == "GET":
            if sessions.load(request.cookies.get(COOKIE)) is not None:
                return redirect(url_for("admin.dashboard"), 303)
            return _page("login.html")
        address = _client_address()
        wait = sessions.login_attempt(address, time.time())
        if wait is not None:
            log.warning("admin login refused: %s must wait after failed attempts", address)
            seconds = int(wait + 0.999)
            body, status = _page(
                "login.html",
                429,
                error=f"Too many failed logins from your address; try again in {seconds} s.",
            )
            return body, status, {"Retry-After": str(seconds)}
        if not sessions.password_ok(request.form.get("password", "")):
            log.warning("admin login failed from %s", address)
            return _page("login.html", 401, error="Wrong password.")
        sessions.logged_in(address)
    except StoreUnavailable:
        return _page("login.html", 503, error=_STORE_AWAY)
    log.info("admin login from %s", address)
    g.admin_session = sessions.new()
    g.admin_session_changed = True
    return redirect(url_for("admin.dashboard"), 303)


@bp.post("/logout")
@login_required
def logout():
    try:
        _sessions().revoke(g.admin_session)
    except StoreUnavailable:
        return _STORE_AWAY, 503, {"Content-Type": "text/plain"}
    response = redirect(url_for("admin.login"), 303)
    _sessions().clear(response, request.is_secure)
    return response


# -- the dashboard ----------------------------------------------------------------------------


@bp.get("/")
@bp.get("")  # registered first: the URL url_for gives
@login_required
def dashboard():
    svc = state()
    store = svc.store
    session = g.admin_session
    flash = session.get("flash")
    if flash:
        g.admin_session = {k: v for k, v in session.items() if k != "flash"}
        g.admin_session_changed = True
    window = request.args.get("window", data.DEFAULT_WINDOW)
    if window not in data.WINDOWS:
        window = data.DEFAULT_WINDOW
    filters = data.Filters.from_args(request.args)
    now = time.time()
    since = now - data.WINDOWS[window]
    keys, usage, store_error = [], None, None
    try:
        keys = svc.pool.snapshot()
        usage = data.summarize(store.usage(since, now + 1, filters.client or None), since, now, filters)
    except StoreUnavailable:
        store_error = "The state store is unavailable: key health and usage cannot be read right now."
    clients = [f"key-{i}" for i in range(1, len(svc.config.api_keys) + 1)]
    clients += [key.name for key in svc.config.client_keys]
    return _page(
        "dashboard.html",
        flash=flash,
        store_error=store_error,
        store_backend=store.backend,
        keys=[_key_view(k, now) for k in keys],
        usage=usage,
        chart_data={k: usage[k] for k in ("charts", "start", "step", "count")} if usage else None,
        window=window,
        windows=list(data.WINDOWS),
        filters=filters,
        clients=clients,
        dialects=data.DIALECTS,
        statuses=list(data.STATUS_FILTERS),
        settings=data.describe_config(svc.config),
        runtime=data.runtime_view(svc.settings),
        csrf=session["csrf"],
        now=now,
    )


@bp.post("/keys/<label>/<action>")
@login_required
def key_action(label: str, action: str):
    svc = state()
    key = data.find_key(svc.pool, label)
    if key is None or action not in KEY_ACTIONS:
        return "No such key or action.\n", 404, {"Content-Type": "text/plain"}
    try:
        if action == "recheck":
            message = data.recheck(svc.pool, svc.upstream.session, svc.config, key)
        elif action == "disable":
            data.disable(svc.pool, key)
            message = f"{label}: disabled until you enable it."
        else:
            data.enable(svc.pool, key)
            message = f"{label}: enabled, back in rotation."
    except StoreUnavailable:
        message = f"{label}: the state store is unavailable; nothing changed."
    log.info("admin: %s %s", action, label)
    _flash(message)
    return redirect(url_for("admin.dashboard"), 303)


@bp.post("/settings")
@login_required
def change_settings():
    """The runtime settings form: stored for every worker and host, and written to the request log."""
    live = state().settings
    try:
        changed = _change(live, data.runtime_changes(live, request.form))
    except ConfigError as exc:
        _flash(f"Nothing changed: {exc}.")
    except StoreUnavailable:
        _flash("Nothing changed: the state store is unavailable.")
    else:
        _flash(_said(changed))
    return redirect(url_for("admin.dashboard") + "#runtime", 303)


@bp.post("/settings/reset")
@login_required
def reset_settings():
    """Every runtime setting back to the environment's value."""
    live = state().settings
    try:
        changed = _change(live, dict.fromkeys(live.overrides()))
    except StoreUnavailable:
        _flash("Nothing changed: the state store is unavailable.")
    else:
        _flash(_said(changed))
    return redirect(url_for("admin.dashboard") + "#runtime", 303)


def _change(live, changes: dict) -> dict[str, tuple[str, str]]:
    changed = live.change(changes) if changes else {}
    if changed:
        by = _operator()
        state().request_log.write(
            {
                "time": iso(time.time()),
                "event": "settings_changed",
                **by,
                "changes": {name: {"from": old, "to": new} for name, (old, new) in changed.items()},
            }
        )
        log.info(
            "admin at %s changed %s", by["by"], ", ".join(f"{n}={new}" for n, (_, new) in changed.items())
        )
    return changed


def _said(changed: dict[str, tuple[str, str]]) -> str:
    if not changed:
        return "Nothing changed."
    listed = "; ".join(f"{name}: {old} → {new}" for name, (old, new) in changed.items())
    return f"Saved: {listed}. Every worker and host applies it within a second."


def _operator() -> dict:
    """Who made a change, for the request log: the admin's address and their login (a digest of it)."""
    login = hashlib.sha256(g.admin_session["sid"].encode()).hexdigest()[:12]
    return {"by": f"admin from {_client_address()}", "admin_session": login}


@bp.post("/usage/import")
@login_required
def import_usage():
    """An uploaded JSON Lines export, added to the usage records (each request id once)."""
    upload = request.files.get("usage")
    if upload is None or not upload.filename:
        _flash("Choose a JSON Lines file written by `python -m app.usage export --format jsonl`.")
        return redirect(url_for("admin.dashboard") + "#import", 303)
    svc = state()
    try:
        report = import_jsonl(svc.store, upload.stream, svc.config.usage_retention_days)
    except StoreUnavailable:
        _flash("Nothing imported: the state store is unavailable.")
        return redirect(url_for("admin.dashboard") + "#import", 303)
    svc.request_log.write(
        {
            "time": iso(time.time()),
            "event": "usage_imported",
            **_operator(),
            "added": report.added,
            "present": report.present,
            "refused": report.refused,
        }
    )
    log.info("admin at %s %s", _operator()["by"], report.summary())
    _flash(report.summary()[:1].upper() + report.summary()[1:] + ".")
    return redirect(url_for("admin.dashboard") + "#import", 303)


def _key_view(key: dict, now: float) -> dict:
    view = dict(key)
    if key["status"] == "cooling":
        view["until"] = _when(key["cooldown_until"], now)
    elif key["status"] == "disabled":
        by_operator = key["last_error"] == data.OPERATOR_DISABLED
        view["until"] = "you enable it" if by_operator else _when(key["disabled_until"], now)
        view["by_operator"] = by_operator
    elif key["status"] == "denied":
        view["until"] = _when(key["denied_until"], now)
    view["models"] = [_key_view(m, now) for m in key.get("models", ())]
    return view


def _when(at: float, now: float) -> str:
    return f"{_utc(at)} (in {_duration(at - now)})"


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.999))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@bp.app_template_filter("utc")
def utc_filter(seconds: float) -> str:
    return _utc(seconds)
