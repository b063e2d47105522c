"""The benchmark's baseline: a bare Flask, gevent and requests pass-through of native Gemini calls.

    cd bench && PASSTHROUGH_UPSTREAM=http://127.0.0.1:8790 PASSTHROUGH_KEY=AIza... \\
        gunicorn -k gevent -w 2 --worker-connections 4000 -b 127.0.0.1:8800 passthrough:app

(started in bench/, where gunicorn finds no gunicorn.conf.py: gemgate's settings and hooks stay out)

It is what a plain proxy written with the same stack costs: every POST goes to the same path upstream
with one key, through one requests Session per worker left at its defaults (a pool of 10 connections
per host; proxies and CA bundle from the environment, as requests reads them), and the answer goes
back as it came, a stream chunk by chunk. No authentication, translation, key pool, accounting,
logging or metrics: what the gateway spends beyond this column is what those cost.
"""

from __future__ import annotations

import os

import requests
from flask import Flask, Response, request

UPSTREAM = os.environ["PASSTHROUGH_UPSTREAM"].rstrip("/")
KEY = os.environ.get("PASSTHROUGH_KEY", "")
app = Flask(__name__)
session = requests.Session()


@app.get("/healthz")
def healthz():
    return {"ok": True}


@app.post("/<path:path>")
def relay(path: str):
    streamed = "streamGenerateContent" in path
    upstream = session.post(
        f"{UPSTREAM}/{path}",
        params=request.args,
        data=request.get_data(),
        headers={"Content-Type": "application/json", "x-goog-api-key": KEY},
        stream=streamed,
        timeout=(10, 300),
    )
    content_type = upstream.headers.get("Content-Type", "application/json")
    if not streamed:
        return Response(upstream.content, upstream.status_code, content_type=content_type)

    def chunks():
        try:
            yield from upstream.iter_content(chunk_size=None)
        finally:
            upstream.close()

    return Response(chunks(), upstream.status_code, content_type=content_type)
