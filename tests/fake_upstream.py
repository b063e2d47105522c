"""A fake Gemini API for end-to-end tests: answers like the recorded fixtures, and can be scripted.

Run: python -m tests.fake_upstream --port 8765 [--stream-interval S] [--max-calls N]
                                   [--tls-cert server.pem --tls-key server.key]
(--max-calls keeps only the latest N calls, for long runs such as soak/run.py; with a certificate it
speaks HTTPS, as Gemini does)

Control routes (not part of Gemini's API):
  POST /_script     JSON list of scripted answers, served in order before the defaults
  GET  /_calls      every call received: path, key, body, when it started and when it closed
  GET  /_resources  every resource held (files, caches, batches, interactions, stores) and its key
  GET  /_stats      {"connections": the TCP connections API calls came on so far}: clients that keep theirs
                    add none (connections that began with a control call are not counted)
  POST /_reset      forget the script, the calls and the resources

Besides the model calls it serves Gemini's resources, each owned by the key that created it
(tests/fake_resources.py): uploads (resumable, multipart, raw) and files, cached contents, batches,
interactions (streamed or not, in the background, continued by previous_interaction_id) and file
search stores. Upload bodies are read as they arrive, never held whole.

A scripted answer is an object with any of:
  status        HTTP status (default 200)
  body          JSON value to send (pretty-printed, as Google does)
  raw           a string to send as the body, as is
  events        list of JSON values to send as SSE events (a stream)
  raw_events    list of strings sent as SSE `data:` payloads, as is
  interval      seconds between stream events
  lead          seconds of silence after a stream's headers, before its first event (a thinking model;
                an SSE comment goes first, since the server sends the headers with the first bytes)
  delay         seconds to wait before the status line
  fault         "reset" (close before answering), "stall" (say nothing, forever),
                "reset_after" (close mid-stream after `after` events),
                "stall_after" (go silent after `after` events), "split" (send events in 7-byte pieces),
                "truncate" (a whole body: announce its length, send half of it, close)
  split_size    with "split": the size of the pieces (each one its own HTTP chunk)
  split_pause   with "split": seconds between pieces (default 0.001)
  prelude       a string sent raw right after the headers, before the first event
  count         send `events` this many times over (a long stream from a short script)
  trailer       a string appended raw after the events (an error object mid-stream)
  headers       extra response headers
  match         only for calls whose path contains this string
  key           only for calls made with this upstream key
  chance        only for this fraction of the calls that match (0..1, random), e.g. injected faults
  repeat        serve this answer this many times (default 1; -1 for always)
  stamp         put the send time (`"sentAt": unix seconds`) into each event, to measure lag
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import threading
import time
from pathlib import Path

from gevent import monkey

monkey.patch_all()

from gevent.pywsgi import WSGIServer  # noqa: E402

from tests.fake_resources import Resources, interaction_frames, query_of  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
_ACTION = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(\w+)$")


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def sse_fixture(name: str) -> list:
    text = (FIXTURES / name).read_text()
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def pretty(obj) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


def sse(obj) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ": "), ensure_ascii=False)
    return b"data: " + data.encode() + b"\r\n\r\n"


class FakeGemini:
    def __init__(self, stream_interval: float = 0.0, max_calls: int = 0):
        self.lock = threading.Lock()
        self.connections = 0
        self.script: list[dict] = []
        self.calls: list[dict] = []
        self.stream_interval = stream_interval
        self.max_calls = max_calls  # 0: keep every call
        self.resources = Resources(fixture("error_403_file_not_owned.json"), generate_answer)

    # -- control -----------------------------------------------------------------
    def control(self, env, path):
        if path == "/_script":
            items = json.loads(env["wsgi.input"].read() or b"[]")
            with self.lock:
                self.script.extend(items if isinstance(items, list) else [items])
            return 200, {}, pretty({"queued": len(self.script)})
        if path == "/_calls":
            with self.lock:
                return 200, {}, pretty(self.calls)
        if path == "/_resources":
            return 200, {}, pretty(self.resources.summary())
        if path == "/_stats":
            return 200, {}, pretty({"connections": self.connections})
        if path == "/_reset":
            with self.lock:
                self.script.clear()
                self.calls.clear()
            self.resources.reset()
            return 200, {}, pretty({})
        return 404, {}, pretty({"error": "unknown control route"})

    def scripted(self, path: str, key: str | None) -> dict | None:
        with self.lock:
            for i, item in enumerate(self.script):
                if item.get("match") and item["match"] not in path:
                    continue
                if item.get("key") and item["key"] != key:
                    continue
                if "chance" in item and random.random() >= item["chance"]:
                    continue
                repeat = item.get("repeat", 1)
                if repeat == -1:
                    return item
                if repeat <= 1:
                    self.script.pop(i)
                else:
                    item["repeat"] = repeat - 1
                return item
        return None

    # -- WSGI ----------------------------------------------------------------------
    def __call__(self, env, start_response):
        path = env["PATH_INFO"]
        if path.startswith("/_"):
            status, headers, body = self.control(env, path)
            start_response(f"{status} X", [("Content-Type", "application/json")])
            return [body]
        key = env.get("HTTP_X_GOOG_API_KEY")
        method = env["REQUEST_METHOD"]
        # Uploads are read as they arrive by the handler that takes them, not held here.
        reads = method in ("POST", "PATCH") and not path.startswith("/upload/")
        raw = env["wsgi.input"].read() if reads else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        call = {
            "method": env["REQUEST_METHOD"],
            "path": path,
            "query": env.get("QUERY_STRING", ""),
            "key": key,
            "headers": {k[5:].lower().replace("_", "-"): v for k, v in env.items() if k.startswith("HTTP_")},
            "body": body,
            "started": time.time(),
            "closed": None,
        }
        with self.lock:
            self.calls.append(call)
            if self.max_calls and len(self.calls) > 2 * self.max_calls:
                del self.calls[: -self.max_calls]
        item = self.scripted(path, key)
        if item is None:
            item = self.resource(env, method, path, key, body)
        if item is None:
            item = self.default(method, path, key, body)
        return self.serve(item, call, start_response)

    def resource(self, env, method: str, path: str, key: str | None, body) -> dict | None:
        """Gemini's resource routes, or None for the model routes."""
        segments = path.strip("/").split("/")
        prefix = segments.pop(0) if segments and segments[0] in ("upload", "download") else None
        if len(segments) < 2 or segments[0] not in ("v1", "v1beta"):
            return None
        version, family, rest = segments[0], segments[1], "/".join(segments[2:])
        if prefix == "upload":
            if family == "files" and not rest and method == "POST":
                return self.resources.upload(env, version, key, query_of(env))
            return {"status": 404, "raw": "not found"}
        if ":" in family:  # a method on a collection (files:register): not served
            return {"status": 404, "raw": "not found"}
        if key is None and family != "models":
            return {"status": 403, "body": fixture("error_403_permission_denied.json")}
        query = query_of(env)
        if family == "files":
            return self.resources.files(method, rest, key, query)
        if family == "cachedContents":
            return self.resources.caches(method, rest, key, query, body)
        if family == "batches":
            return self.resources.batches(method, rest, key, query)
        if family == "interactions":
            return self.resources.interactions(method, rest, key, body, query)
        if family == "fileSearchStores":
            return self.resources.stores(method, rest, key, query, body)
        if family == "models" and method == "GET" and "/operations/" in rest:
            return self.resources.video_operation("models/" + rest, key)
        match = _ACTION.match(path)
        if match and key is not None and not key.startswith("bad"):
            model, action = match.group(2), match.group(3)
            if action == "predictLongRunning":
                return self.resources.create_video(model, key, body)
            if action == "batchGenerateContent":
                return self.resources.create_batch(model, key, body)
            if action == "asyncBatchEmbedContent":
                return self.resources.create_batch(model, key, body, embed=True)
            if action in ("generateContent", "streamGenerateContent", "countTokens"):
                return self.resources.check_body(body, key)  # None: the default answer
        return None

    def serve(self, item: dict, call: dict, start_response):
        if item.get("delay"):
            time.sleep(item["delay"])
        fault = item.get("fault")
        if fault == "reset":
            _close_socket()
            return []
        if fault == "stall":
            time.sleep(3600)
        status = item.get("status", 200)
        headers = [(k, v) for k, v in (item.get("headers") or {}).items()]
        if item.get("interaction_events") is not None:
            start_response(f"{status} X", [("Content-Type", "text/event-stream"), *headers])
            call["closed"] = time.time()
            return interaction_frames(item["interaction_events"])
        if item.get("raw_bytes") is not None:
            payload = item["raw_bytes"]
            content = [("Content-Type", item.get("content_type", "application/octet-stream"))]
            start_response(f"{status} X", [*content, ("Content-Length", str(len(payload))), *headers])
            call["closed"] = time.time()
            return [payload]
        events = item.get("events")
        if item.get("raw_events") is not None:
            events = item["raw_events"]
        if events is None:
            payload = item["raw"].encode() if "raw" in item else pretty(item.get("body", {}))
            if fault == "truncate":
                headers.append(("Content-Length", str(len(payload))))
            content_type = item.get("content_type", "application/json; charset=UTF-8")
            start_response(f"{status} X", [("Content-Type", content_type), *headers])
            if fault == "truncate":
                return self.truncated(payload, call)
            call["closed"] = time.time()
            return [payload]
        start_response(f"{status} X", [("Content-Type", "text/event-stream"), *headers])
        return self.stream(events, item, call)

    def truncated(self, payload: bytes, call):
        try:
            yield payload[: len(payload) // 2]
            _close_socket()
        finally:
            call["closed"] = time.time()

    def stream(self, events, item, call):
        interval = item.get("interval", self.stream_interval)
        after = item.get("after", 1)
        events = list(events) * int(item.get("count", 1))
        size = int(item.get("split_size", 7))
        pause = item.get("split_pause", 0.001)
        try:
            if item.get("prelude"):
                yield item["prelude"].encode()
            if item.get("lead"):
                yield b": \r\n\r\n"
                time.sleep(item["lead"])
            for i, event in enumerate(events):
                if i and interval:
                    time.sleep(interval)
                if item.get("fault") in ("reset_after", "stall_after") and i == after:
                    if item["fault"] == "stall_after":
                        time.sleep(3600)
                    _close_socket()
                    return
                if item.get("stamp") and isinstance(event, dict):
                    event = {**event, "sentAt": time.time()}
                frame = sse(event)
                if item.get("fault") == "split":
                    for j in range(0, len(frame), size):
                        yield frame[j : j + size]
                        time.sleep(pause)
                else:
                    yield frame
            if item.get("trailer"):
                yield item["trailer"].encode()
        finally:
            call["closed"] = time.time()

    # -- default answers, like the recorded fixtures --------------------------------
    def default(self, method: str, path: str, key: str | None, body) -> dict:
        if key is None:
            return {"status": 403, "body": fixture("error_403_permission_denied.json")}
        if key.startswith("bad"):
            return {"status": 400, "body": fixture("error_400_api_key_invalid.json")}
        if method == "GET":
            if path.rstrip("/").endswith("/models"):
                return {"body": fixture("models_list_page.json")}
            model = path.rsplit("/", 1)[-1]
            if model.startswith("unknown"):
                return {"status": 404, "body": fixture("error_404_model_not_found.json")}
            found = dict(fixture("models_get.json"), name=f"models/{model}")
            return {"body": found}
        match = _ACTION.match(path)
        if not match:
            return {"status": 404, "raw": "not found"}
        model, action = match.group(2), match.group(3)
        if model.startswith("unknown"):
            return {"status": 404, "body": fixture("error_404_model_not_found.json")}
        if action == "generateContent":
            return {"body": generate_answer(model, body)}
        if action == "streamGenerateContent":
            if "image" in model:
                return {"events": [fixture("image_generation.json")]}
            return {"events": sse_fixture("stream_text.sse")}
        if action == "countTokens":
            return {"body": fixture("count_tokens.json")}
        if action == "embedContent":
            return {"body": {"embedding": {"values": embedding(body.get("content"))}}}
        if action == "batchEmbedContents":
            requests = body.get("requests", [])
            if len(requests) > 100:
                return {"status": 400, "body": fixture("error_400_batch_embed_too_many.json")}
            return {"body": {"embeddings": [{"values": embedding(r.get("content"))} for r in requests]}}
        if action == "predict":
            count = int((body.get("parameters") or {}).get("sampleCount", 1))
            image = fixture("imagen_predict.json")["predictions"][0]
            return {"body": {"predictions": [image] * count}}
        return {"status": 404, "body": fixture("error_404_model_not_found.json")}


def generate_answer(model: str, body) -> dict:
    if "tts" in model:
        return fixture("tts.json")
    if "image" in model:
        return fixture("image_generation.json")
    answer = fixture("generate_text.json")
    answer["modelVersion"] = model
    return answer


def embedding(content) -> list[float]:
    """A deterministic small vector derived from the text, so tests can tell inputs apart."""
    text = json.dumps(content, sort_keys=True).encode()
    digest = base64.b16encode(text[:8].ljust(8, b" "))
    return [round((b - 64) / 64.0, 6) for b in digest[:8]]


def _close_socket():
    """Drop the connection without an answer (a reset before or during the response)."""
    import gevent

    sock = gevent.getcurrent().__dict__.get("_fake_socket")
    if sock is not None:
        try:
            sock.shutdown(2)
        except OSError:
            pass
        sock.close()
    raise ConnectionAbortedError("fault injected")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--stream-interval", type=float, default=float(os.environ.get("FAKE_INTERVAL", "0")))
    parser.add_argument("--max-calls", type=int, default=0)
    parser.add_argument("--tls-cert", help="a PEM certificate chain: serve HTTPS")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    app = FakeGemini(stream_interval=args.stream_interval, max_calls=args.max_calls)

    from gevent.pywsgi import WSGIHandler

    class Handler(WSGIHandler):
        def handle(self):
            self.first_request = True  # one handler per connection, for every request it carries
            super().handle()

        def run_application(self):
            if self.first_request and not self.environ["PATH_INFO"].startswith("/_"):
                app.connections += 1  # a client of the API's (the tests' control calls are not counted)
            self.first_request = False
            import gevent

            gevent.getcurrent()._fake_socket = self.socket
            try:
                super().run_application()
            except ConnectionAbortedError:
                self.close_connection = True

    tls = {"certfile": args.tls_cert, "keyfile": args.tls_key} if args.tls_cert else {}
    server = WSGIServer(("127.0.0.1", args.port), app, handler_class=Handler, log=None, **tls)
    print(f"fake gemini on {'https' if tls else 'http'}://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
