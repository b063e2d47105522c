"""The fake Gemini's resources: files (uploads, downloads), cached contents, batches, interactions and file
search stores, each owned by the upstream key that created it, as Gemini's projects own theirs.

Another key asking for one gets the 403 Gemini answers for a file another project owns (the recorded
message, `error_403_file_not_owned.json`), for missing and expired ones alike; the same words are used
for the other kinds. Wire shapes follow google-genai's converters (files, caches, batches) and its
Interactions client (snake_case bodies, `event:` + `data:` SSE frames ending with `[DONE]`).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.parser import BytesParser
from urllib.parse import parse_qs

GOOGLE = "https://generativelanguage.googleapis.com"
CHUNK_GRANULARITY = 8 * 1024 * 1024
KEEP_BYTES = 1 << 20  # uploads up to this size are kept (a batch's input file is read back)
FILE_LIFETIME = 48 * 3600

_KINDS = {
    "files": "File",
    "cachedContents": "CachedContent",
    "batches": "Batch",
    "interactions": "Interaction",
    "fileSearchStores": "FileSearchStore",
    "operations": "Operation",
}


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def not_owned(kind: str, ident: str, template: dict) -> dict:
    """Gemini's 403 for a resource the key's project does not own, or that does not exist."""
    body = json.loads(json.dumps(template))
    body["error"]["message"] = body["error"]["message"].replace("File xxxx", f"{_KINDS[kind]} {ident}")
    return {"status": 403, "body": body}


def error(status: int, message: str, word: str) -> dict:
    return {"status": status, "body": {"error": {"code": status, "message": message, "status": word}}}


class Resources:
    """Every resource the fake holds, by name, each with the key that created it."""

    def __init__(self, not_owned_template: dict, answer):
        self.lock = threading.Lock()
        self.template = not_owned_template
        self.answer = answer  # (model, request body) -> a GenerateContentResponse, like generateContent's
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.items: dict[str, dict] = {}  # name -> {"key", "object", ...}
            self.uploads: dict[str, dict] = {}
            self.downloads: dict[str, bytes] = {}  # generated files' contents (batch results)
            self.counter = itertools.count(1)

    def summary(self) -> dict:
        """For tests: each resource and the key that holds it."""
        with self.lock:
            return {name: item["key"] for name, item in self.items.items()}

    # -- ownership ---------------------------------------------------------------------------
    def owned(self, name: str, key: str | None) -> dict | None:
        with self.lock:
            item = self.items.get(name)
            if item is None or item["key"] != key:
                return None
            expires = item.get("expires")
            if expires is not None and expires <= time.time():
                del self.items[name]
                return None
            return item

    def refuse(self, name: str) -> dict:
        kind, _, ident = name.partition("/")
        return not_owned(kind, ident, self.template)

    def check_body(self, body, key: str | None) -> dict | None:
        """The 403 for the first file or cached content a request names that the key does not hold."""
        for name in _named(body):
            if self.owned(name, key) is None:
                return self.refuse(name)
        return None

    def _new(self, kind: str, key: str, obj: dict, **extra) -> dict:
        with self.lock:
            self.items[obj["name"] if kind != "interactions" else f"interactions/{obj['id']}"] = {
                "key": key,
                "object": obj,
                **extra,
            }
        return obj

    def _ident(self, prefix: str = "") -> str:
        return f"{prefix}{secrets.token_hex(5)}{next(self.counter)}"

    def _listing(self, kind: str, key: str | None, query: dict, field: str, default_size: int = 10) -> dict:
        size = int(query.get("pageSize", [default_size])[0] or default_size)
        start = int(query.get("pageToken", ["0"])[0] or 0)
        with self.lock:
            mine = [
                item["object"]
                for name, item in reversed(self.items.items())  # newest first
                if name.startswith(kind + "/") and item["key"] == key and "/" not in name[len(kind) + 1 :]
            ]
        page = mine[start : start + size]
        answer: dict = {field: page} if page else {}
        if start + size < len(mine):
            answer["nextPageToken"] = str(start + size)
        return answer

    # -- files ---------------------------------------------------------------------------------
    def file_object(self, ident: str, meta: dict, size: int, digest: str, source: str = "UPLOADED") -> dict:
        now = time.time()
        obj = {
            "name": f"files/{ident}",
            "displayName": meta.get("displayName") or meta.get("display_name") or "",
            "mimeType": meta.get("mimeType") or meta.get("mime_type") or "application/octet-stream",
            "sizeBytes": str(size),
            "createTime": stamp(now),
            "updateTime": stamp(now),
            "expirationTime": stamp(now + FILE_LIFETIME),
            "sha256Hash": base64.b64encode(digest.encode()).decode(),
            "uri": f"{GOOGLE}/v1beta/files/{ident}",
            "state": "ACTIVE",
            "source": source,
        }
        if not obj["displayName"]:
            del obj["displayName"]
        if source == "GENERATED":
            obj["downloadUri"] = f"{GOOGLE}/download/v1beta/files/{ident}:download?alt=media"
        return obj

    def upload(self, env, version: str, key: str | None, query: dict) -> dict:
        """POST /upload/{version}/files: a resumable session's start or one of its requests, or a
        whole upload in the multipart or raw protocol."""
        headers = _headers(env)
        if "upload_id" in query:
            return self._resumable(env, headers, query["upload_id"][0])
        if key is None:
            return error(403, "Method doesn't allow unregistered callers.", "PERMISSION_DENIED")
        protocol = (headers.get("x-goog-upload-protocol") or query.get("uploadType", [""])[0]).lower()
        if protocol == "resumable":
            command = headers.get("x-goog-upload-command", "")
            if command != "start":
                return error(400, f"Unexpected upload command {command!r}.", "INVALID_ARGUMENT")
            meta = (json.loads(_read_all(env) or b"{}").get("file")) or {}
            ident = secrets.token_hex(6)
            self.uploads[ident] = {
                "key": key,
                "meta": meta,
                "declared": int(headers.get("x-goog-upload-header-content-length") or 0),
                "type": headers.get("x-goog-upload-header-content-type"),
                "received": 0,
                "sha": hashlib.sha256(),
                "data": bytearray(),
                "version": version,
            }
            url = f"{GOOGLE}/upload/{version}/files?upload_id={ident}&upload_protocol=resumable"
            return {
                "raw": "",
                "content_type": "text/plain; charset=utf-8",
                "headers": {
                    "X-Goog-Upload-Status": "active",
                    "X-Goog-Upload-URL": url,
                    "X-Goog-Upload-Control-URL": url,
                    "X-Goog-Upload-Chunk-Granularity": str(CHUNK_GRANULARITY),
                },
            }
        if protocol == "multipart":
            parts = BytesParser().parsebytes(
                b"Content-Type: " + headers.get("content-type", "").encode() + b"\r\n\r\n" + _read_all(env)
            )
            payloads = [p.get_payload(decode=True) for p in parts.get_payload()]
            meta = json.loads(payloads[0]).get("file") or {}
            data = payloads[1]
            meta.setdefault("mimeType", parts.get_payload()[1].get_content_type())
            return self._file_created(key, meta, len(data), hashlib.sha256(data).hexdigest(), data)
        if protocol in ("raw", "media"):
            data = _read_all(env)
            meta = {"mimeType": headers.get("content-type")}
            return self._file_created(key, meta, len(data), hashlib.sha256(data).hexdigest(), data)
        return error(400, "Upload protocol must be resumable, multipart or raw.", "INVALID_ARGUMENT")

    def _resumable(self, env, headers: dict, ident: str) -> dict:
        session = self.uploads.get(ident)
        if session is None:
            return error(404, "No upload session.", "NOT_FOUND")
        command = {c.strip() for c in headers.get("x-goog-upload-command", "").split(",")}
        status = {"X-Goog-Upload-Status": "active"}
        if "query" in command:
            return {"raw": "", "headers": {**status, "X-Goog-Upload-Size-Received": str(session["received"])}}
        if "cancel" in command:
            del self.uploads[ident]
            return {"raw": "", "headers": {"X-Goog-Upload-Status": "cancelled"}}
        if "upload" in command:
            offset = int(headers.get("x-goog-upload-offset", "-1"))
            if offset != session["received"]:
                _read_all(env)
                return {**error(400, "Invalid upload offset.", "INVALID_ARGUMENT"), "headers": status}
            for piece in _pieces(env):
                session["received"] += len(piece)
                session["sha"].update(piece)
                if session["declared"] <= KEEP_BYTES:
                    session["data"] += piece
        if "finalize" not in command:
            return {"raw": "", "headers": status}
        del self.uploads[ident]
        if session["received"] != session["declared"]:
            return error(
                400, "The upload's size differs from the size declared at its start.", "INVALID_ARGUMENT"
            )
        meta = dict(session["meta"])
        meta.setdefault("mimeType", session["type"])
        data = bytes(session["data"]) if session["declared"] <= KEEP_BYTES else None
        answer = self._file_created(
            session["key"], meta, session["received"], session["sha"].hexdigest(), data
        )
        answer["headers"] = {"X-Goog-Upload-Status": "final"}
        return answer

    def _file_created(self, key: str, meta: dict, size: int, digest: str, data: bytes | None) -> dict:
        obj = self.file_object(secrets.token_hex(6), meta, size, digest)
        self._new("files", key, obj, data=data, expires=time.time() + FILE_LIFETIME)
        return {"body": {"file": obj}}

    def generated_file(self, key: str, ident: str, data: bytes, mime: str) -> dict:
        obj = self.file_object(
            ident, {"mimeType": mime}, len(data), hashlib.sha256(data).hexdigest(), "GENERATED"
        )
        self._new("files", key, obj, data=data, expires=time.time() + FILE_LIFETIME)
        return obj

    def files(self, method: str, rest: str, key: str | None, query: dict) -> dict:
        if rest == "":
            return {"body": self._listing("files", key, query, "files")} if method == "GET" else _no_route()
        ident, _, action = rest.partition(":")
        name = f"files/{ident}"
        item = self.owned(name, key)
        if item is None:
            return self.refuse(name)
        if action == "download" and method == "GET":
            if item["object"].get("source") != "GENERATED" or item.get("data") is None:
                return error(400, "Only generated files can be downloaded.", "INVALID_ARGUMENT")
            return {"raw_bytes": item["data"], "content_type": item["object"]["mimeType"]}
        if action:
            return _no_route()
        if method == "GET":
            return {"body": item["object"]}
        if method == "DELETE":
            with self.lock:
                self.items.pop(name, None)
            return {"body": {}}
        return _no_route()

    # -- videos (Veo's long-running operations) -------------------------------------------------
    def create_video(self, model: str, key: str, body) -> dict:
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances:
            return error(400, "instances is required.", "INVALID_ARGUMENT")
        name = f"models/{model}/operations/{self._ident()}"
        count = int(((body.get("parameters") or {}).get("sampleCount")) or 1)
        self._new("operations", key, {"name": name}, polls=0, count=count)
        return {"body": {"name": name}}

    def video_operation(self, name: str, key: str | None) -> dict:
        """Done at the second poll: each sample a generated file, named by its download URI."""
        item = self.owned(name, key)
        if item is None:
            return error(404, f"Operation {name} not found.", "NOT_FOUND")
        item["polls"] += 1
        if item["polls"] < 2 or key is None:
            return {"body": item["object"]}
        if not item["object"].get("done"):
            samples = []
            for i in range(item["count"]):
                ident = secrets.token_hex(6)
                self.generated_file(key, ident, b"\x00\x00\x00\x18ftypmp42 video %d" % i, "video/mp4")
                samples.append({"video": {"uri": f"{GOOGLE}/v1beta/files/{ident}:download?alt=media"}})
            item["object"] = {
                **item["object"],
                "done": True,
                "response": {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                    "generateVideoResponse": {"generatedSamples": samples},
                },
            }
        return {"body": item["object"]}

    # -- cached contents -----------------------------------------------------------------------
    def caches(self, method: str, rest: str, key: str | None, query: dict, body) -> dict:
        if rest == "":
            if method == "GET":
                return {"body": self._listing("cachedContents", key, query, "cachedContents")}
            if method != "POST" or not isinstance(body, dict) or not body.get("model"):
                return error(400, "A cached content needs a model.", "INVALID_ARGUMENT")
            refused = self.check_body(body, key)
            if refused:
                return refused
            now = time.time()
            ttl = float(str(body.get("ttl", "3600s")).rstrip("s"))
            obj = {
                "name": f"cachedContents/{self._ident()}",
                "model": body["model"],
                "createTime": stamp(now),
                "updateTime": stamp(now),
                "expireTime": stamp(now + ttl),
                "displayName": body.get("displayName", ""),
                "usageMetadata": {"totalTokenCount": 4096},
            }
            self._new("cachedContents", key, obj, expires=now + ttl, contents=body.get("contents"))
            return {"body": obj}
        name = f"cachedContents/{rest}"
        item = self.owned(name, key)
        if item is None:
            return self.refuse(name)
        if method == "GET":
            return {"body": item["object"]}
        if method == "PATCH":
            ttl = float(str((body or {}).get("ttl", "3600s")).rstrip("s"))
            item["object"]["expireTime"] = stamp(time.time() + ttl)
            item["expires"] = time.time() + ttl
            return {"body": item["object"]}
        if method == "DELETE":
            with self.lock:
                self.items.pop(name, None)
            return {"body": {}}
        return _no_route()

    # -- batches -------------------------------------------------------------------------------
    def create_batch(self, model: str, key: str, body, embed: bool = False) -> dict:
        batch = (body or {}).get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, dict) or not isinstance(batch.get("inputConfig"), dict):
            return error(400, "batch.inputConfig is required.", "INVALID_ARGUMENT")
        refused = self.check_body(body, key)
        if refused:
            return refused
        config = batch["inputConfig"]
        requests = (config.get("requests") or {}).get("requests")
        if requests is None and config.get("fileName"):
            item = self.owned(config["fileName"], key)
            lines = (item or {}).get("data") or b""
            requests = [json.loads(line) for line in lines.splitlines() if line.strip()]
        if not requests:
            return error(400, "The batch has no requests.", "INVALID_ARGUMENT")
        now = time.time()
        name = f"batches/{self._ident()}"
        kind = "EmbedContentBatch" if embed else "GenerateContentBatch"
        metadata = {
            "@type": f"type.googleapis.com/google.ai.generativelanguage.v1main.{kind}",
            "model": f"models/{model}",
            "displayName": batch.get("displayName", ""),
            "createTime": stamp(now),
            "updateTime": stamp(now),
            "batchStats": {"requestCount": str(len(requests)), "pendingRequestCount": str(len(requests))},
            "state": "BATCH_STATE_PENDING",
            "name": name,
        }
        operation = {"name": name, "metadata": metadata}
        self._new(
            "batches", key, operation, requests=requests, model=model, from_file=bool(config.get("fileName"))
        )
        return {"body": operation}

    def batches(self, method: str, rest: str, key: str | None, query: dict) -> dict:
        if rest == "":
            return (
                {"body": self._listing("batches", key, query, "operations")}
                if method == "GET"
                else _no_route()
            )
        ident, _, action = rest.partition(":")
        name = f"batches/{ident}"
        item = self.owned(name, key)
        if item is None:
            return self.refuse(name)
        operation = item["object"]
        if action == "cancel" and method == "POST":
            if not operation.get("done"):
                operation["metadata"]["state"] = "BATCH_STATE_CANCELLED"
                operation["done"] = True
            return {"body": {}}
        if action:
            return _no_route()
        if method == "DELETE":
            with self.lock:
                self.items.pop(name, None)
            return {"body": {}}
        if method != "GET":
            return _no_route()
        if not operation.get("done"):  # done by the time anyone asks
            self._finish_batch(item, key)
        return {"body": operation}

    def _finish_batch(self, item: dict, key: str) -> None:
        operation = item["object"]
        results = []
        for entry in item["requests"]:
            request = entry.get("request", entry)
            response = self.answer(item["model"], request)
            results.append(
                {"response": response, **({"metadata": entry["metadata"]} if "metadata" in entry else {})}
            )
        count = str(len(results))
        metadata = operation["metadata"]
        metadata["batchStats"] = {"requestCount": count, "successfulRequestCount": count}
        metadata["state"] = "BATCH_STATE_SUCCEEDED"
        metadata["endTime"] = metadata["updateTime"] = stamp(time.time())
        if item["from_file"]:
            ident = "batch-" + operation["name"].split("/")[1]
            lines = b"".join(json.dumps({"response": r["response"]}).encode() + b"\n" for r in results)
            self.generated_file(key, ident, lines, "application/jsonl")
            output = {"responsesFile": f"files/{ident}"}
        else:
            output = {"inlinedResponses": {"inlinedResponses": results}}
        metadata["output"] = output
        operation["done"] = True
        operation["response"] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
            **output,
        }

    # -- interactions --------------------------------------------------------------------------
    def interactions(self, method: str, rest: str, key: str | None, body, query: dict) -> dict:
        if rest == "":
            if method != "POST" or not isinstance(body, dict):
                return _no_route()
            return self._interact(key, body)
        ident, _, verb = rest.partition("/")
        name = f"interactions/{ident}"
        item = self.owned(name, key)
        if item is None:
            return self.refuse(name)
        obj = item["object"]
        if verb == "cancel" and method == "POST":
            if obj["status"] in ("in_progress", "queued"):
                obj["status"] = "cancelled"
            return {"body": obj}
        if verb:
            return _no_route()
        if method == "DELETE":
            with self.lock:
                self.items.pop(name, None)
            return {"body": {}}
        if method != "GET":
            return _no_route()
        if obj["status"] == "in_progress":  # a background interaction: done at the second look
            item["looks"] = item.get("looks", 0) + 1
            if item["looks"] >= 2:
                self._complete(obj, item["text"])
        if query.get("stream", [""])[0] == "true":
            return {"interaction_events": self._events(obj, item["text"])}
        return {"body": obj}

    def _interact(self, key: str | None, body: dict) -> dict:
        model = body.get("model") or body.get("agent")
        if not model or "input" not in body:
            return error(400, "An interaction needs a model (or agent) and an input.", "INVALID_ARGUMENT")
        refused = self.check_body(body, key)
        if refused:
            return refused
        turn = 1
        previous = body.get("previous_interaction_id")
        if previous:
            item = self.owned(f"interactions/{previous}", key)
            if item is None:
                return self.refuse(f"interactions/{previous}")
            turn = item["turn"] + 1
        now = time.time()
        obj = {
            "id": f"v1_{secrets.token_urlsafe(12).replace('-', 'x')}",
            "object": "interaction",
            "status": "in_progress",
            "model": model,
            "created": stamp(now),
            "updated": stamp(now),
        }
        if previous:
            obj["previous_interaction_id"] = previous
        text = f"Answer to turn {turn}."
        self._new("interactions", key, obj, turn=turn, text=text)
        if body.get("background"):
            return {"body": obj}
        if body.get("stream"):
            return {"interaction_events": self._events(obj, text, complete=True)}
        self._complete(obj, text)
        return {"body": obj}

    @staticmethod
    def _complete(obj: dict, text: str) -> None:
        obj["status"] = "completed"
        obj["updated"] = stamp(time.time())
        obj["steps"] = [{"type": "model_output", "content": [{"type": "text", "text": text}]}]
        obj["usage"] = {
            "total_input_tokens": 11,
            "total_output_tokens": len(text.split()),
            "total_thought_tokens": 3,
            "total_tokens": 14 + len(text.split()),
        }

    def _events(self, obj: dict, text: str, complete: bool = False) -> list[tuple[str, dict]]:
        head = {k: obj[k] for k in ("id", "object", "model", "created")}
        events: list[tuple[str, dict]] = [
            ("interaction.created", {"interaction": {**head, "status": "in_progress"}}),
            ("interaction.status_update", {"interaction_id": obj["id"], "status": "in_progress"}),
            ("step.start", {"index": 0, "step": {"type": "model_output"}}),
        ]
        for word in text.split(" "):
            events.append(("step.delta", {"index": 0, "delta": {"type": "text", "text": word + " "}}))
        events.append(("step.stop", {"index": 0}))
        if complete:
            self._complete(obj, text)
        done = {**head, "status": obj["status"], "updated": obj["updated"]}
        if "usage" in obj:
            done["usage"] = obj["usage"]
        events.append(("interaction.completed", {"interaction": done}))
        for i, (kind, data) in enumerate(events):
            data["event_type"] = kind
            data["event_id"] = f"e{i}"
        return events

    # -- file search stores --------------------------------------------------------------------
    def stores(self, method: str, rest: str, key: str | None, query: dict, body) -> dict:
        if rest == "":
            if method == "GET":
                return {"body": self._listing("fileSearchStores", key, query, "fileSearchStores")}
            if method != "POST":
                return _no_route()
            now = time.time()
            obj = {
                "name": f"fileSearchStores/{self._ident('store-')}",
                "displayName": (body or {}).get("displayName", ""),
                "createTime": stamp(now),
                "updateTime": stamp(now),
            }
            return {"body": self._new("fileSearchStores", key, obj)}
        head, _, action = rest.partition(":")
        ident, _, child = head.partition("/")
        name = f"fileSearchStores/{ident}"
        item = self.owned(name, key)
        if item is None:
            return self.refuse(name)
        if action == "importFile" and method == "POST":
            refused = self.check_body(body, key)
            if refused:
                return refused
            operation = {"name": f"{name}/operations/{self._ident('op-')}", "done": True}
            item.setdefault("operations", {})[operation["name"]] = operation
            return {"body": operation}
        if child.startswith("operations/") and method == "GET":
            found = item.get("operations", {}).get(f"{name}/{child}")
            return {"body": found} if found else error(404, "Operation not found.", "NOT_FOUND")
        if child or action:
            return _no_route()
        if method == "GET":
            return {"body": item["object"]}
        if method == "DELETE":
            with self.lock:
                self.items.pop(name, None)
            return {"body": {}}
        return _no_route()


def interaction_frames(events: list[tuple[str, dict]]) -> Iterator[bytes]:
    for kind, data in events:
        yield f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
    yield b"event: done\ndata: [DONE]\n\n"


def _named(body) -> list[str]:
    """The files and cached contents a request names, as names (files/abc, cachedContents/c)."""
    text = json.dumps(body) if body is not None else ""
    found = []
    for field in ("fileUri", "file_uri", "uri", "fileName", "file_name", "cachedContent", "cached_content"):
        marker = f'"{field}": "'
        start = 0
        while (at := text.find(marker, start)) >= 0:
            value = text[at + len(marker) : text.find('"', at + len(marker))]
            start = at + 1
            for prefix in ("files/", "cachedContents/"):
                if prefix in value:
                    found.append(prefix + value.split(prefix, 1)[1].split("/")[0].split(":")[0])
    return found


def _headers(env) -> dict:
    found = {k[5:].lower().replace("_", "-"): v for k, v in env.items() if k.startswith("HTTP_")}
    if env.get("CONTENT_TYPE"):
        found["content-type"] = env["CONTENT_TYPE"]
    return found


def _pieces(env) -> Iterator[bytes]:
    remaining = int(env.get("CONTENT_LENGTH") or 0)
    stream = env["wsgi.input"]
    while remaining > 0:
        piece = stream.read(min(remaining, 1 << 20))
        if not piece:
            return
        remaining -= len(piece)
        yield piece


def _read_all(env) -> bytes:
    return b"".join(_pieces(env))


def _no_route() -> dict:
    return {"status": 404, "raw": "not found"}


def query_of(env) -> dict:
    return parse_qs(env.get("QUERY_STRING", ""))
