"""gunicorn settings for gemgate: gevent workers that can hold thousands of long streams."""

import glob
import importlib.util
import os
import shutil
import signal
import sys
import tempfile

bind = f"0.0.0.0:{os.environ.get('PORT', '7860')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "4000"))
# With gevent, `timeout` only watches that a worker process is alive, not how long a request
# takes: a 10-minute stream is fine. Keep-alive outlasts typical load balancer idle timeouts.
timeout = 60
graceful_timeout = 30
keepalive = 75
# gunicorn's own one-line access log (off by default); the gateway writes its JSON request log
# (REQUEST_LOG, app/logs.py) itself, with the client key name, model, tokens and timings.
accesslog = os.environ.get("ACCESS_LOG") or None
# gunicorn's default logs the request line, query string and all: a `?key=` would be written out.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s "%(f)s" "%(a)s" %(D)sus'
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The control socket lives at one fixed path per user: several gateways on one host would clash.
control_socket_disable = True


def _load_config_module():
    # Loaded by path: importing the `app` package here would pull Flask and requests (and
    # ssl) into the master before gevent patches the workers.
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app", "config")
    spec = importlib.util.spec_from_file_location(
        "gemgate_config", os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def on_starting(server):
    """Check the configuration once, before any worker starts, and say what matters."""
    config_module = _load_config_module()
    try:
        config = config_module.Config.from_env()
    except config_module.ConfigError as exc:
        print(f"gemgate: configuration error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    if config.generated_api_key:
        print(
            f"gemgate: API_KEYS is not set; clients authenticate with this generated key:\n"
            f"    {config.api_keys[0]}\n"
            f"gemgate: it is kept in {config.data_dir / config_module.CLIENT_KEY_FILE}; "
            f"set API_KEYS=key1,key2 to choose your own.",
            file=sys.stderr,
            flush=True,
        )
    if config.generated_admin_password:
        print(
            f"gemgate: ADMIN_PASSWORD is not set; the admin page at /admin takes this generated password:\n"
            f"    {config.admin_password}\n"
            f"gemgate: it is kept in {config.data_dir / config_module.ADMIN_PASSWORD_FILE}; "
            f"set ADMIN_PASSWORD to choose your own, or ADMIN_PASSWORD=off for no admin page.",
            file=sys.stderr,
            flush=True,
        )
    if not config.gemini_api_keys:
        print(
            "gemgate: GEMINI_API_KEYS is not set; API calls will answer 503 until it is.",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"gemgate: shared state (key health, rate limits, usage) in {_store_name(config)}",
        file=sys.stderr,
        flush=True,
    )
    _prepare_metrics_dir()


_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_created_metrics_dir = None


def _prepare_metrics_dir():
    """prometheus_client's multi-process mode: every worker writes its metrics to files in one
    directory, and /metrics on any worker sums them. Set before the workers import the app;
    emptied at start, since values of an earlier run would be added to this one's."""
    global _created_metrics_dir
    path = os.environ.get(_METRICS_ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.unlink(os.path.join(path, name))
    else:
        path = _created_metrics_dir = tempfile.mkdtemp(prefix="gemgate-metrics-")
        os.environ[_METRICS_ENV] = path


def child_exit(server, worker):
    """A worker's live gauges (active streams) leave with it; its counters stay in the sums.
    This is prometheus_client's mark_process_dead, done here without importing the library:
    it imports ssl, which the master must not do before gevent patches the workers."""
    path = os.environ.get(_METRICS_ENV)
    if path:
        for name in glob.glob(os.path.join(glob.escape(path), f"gauge_live*_{worker.pid}.db")):
            os.remove(name)


def post_worker_init(worker):
    """A worker told to stop (SIGTERM) waits up to the graceful timeout for its requests, then the master
    kills it: the requests still running are ended a little before that, so each ends in its record."""
    from app.http import shutdown

    stop = worker.handle_exit

    def on_term(sig, frame):
        stop(sig, frame)
        shutdown.interrupt_before(worker.cfg.graceful_timeout)

    signal.signal(signal.SIGTERM, on_term)


def on_exit(server):
    if _created_metrics_dir:
        shutil.rmtree(_created_metrics_dir, ignore_errors=True)


def _store_name(config) -> str:
    if not config.redis_url:
        return f"SQLite {config.data_dir / 'gemgate.db'}"
    from urllib.parse import urlsplit

    url = urlsplit(config.redis_url)  # named without its password
    if url.scheme == "unix":
        return f"Redis at unix://{url.path}"
    return f"Redis at {url.scheme}://{url.hostname}:{url.port or 6379}{url.path}"
