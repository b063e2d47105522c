"""`GET /openapi.json`: the OpenAPI 3 description of every route, built from the marshmallow request schemas."""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask, Response
from marshmallow import fields

from schemas import anthropic as anthropic_schemas
from schemas import fields as schema_fields
from schemas import gemini as gemini_schemas
from schemas import openai as openai_schemas
from schemas import openai_responses as responses_schemas

from .. import jsonx
from ..http.timing import OVERHEAD_HEADER
from ..upstream.resources import FAMILIES

OPENAPI_VERSION = "3.0.3"
_PREFIXES = {
    "schemas.gemini": "Gemini",
    "schemas.openai": "OpenAI",
    "schemas.openai_responses": "OpenAI",
    "schemas.anthropic": "Anthropic",
}
CLIENT_AUTH: list[dict[str, list]] = [
    {"bearerAuth": []},
    {"xApiKey": []},
    {"xGoogApiKey": []},
    {"keyQuery": []},
]
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <client key>`"},
    "xApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "Anthropic SDK style"},
    "xGoogApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-goog-api-key",
        "description": "Google SDK style",
    },
    "keyQuery": {"type": "apiKey", "in": "query", "name": "key", "description": "`?key=<client key>`"},
    "metricsToken": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN, when it is set"},
}
GEMINI_ERROR_CODES = ("400", "401", "403", "404", "405", "413", "429", "500", "503", "504")
ANTHROPIC_ERROR_CODES = GEMINI_ERROR_CODES + ("529",)

_ANY_OBJECT = {"type": "object", "additionalProperties": True}
_STRINGS = {"type": "array", "items": {"type": "string"}}

# Answers, described loosely: the gateway relays what Gemini sends, and Gemini adds fields.
RESPONSE_SCHEMAS: dict[str, dict] = {
    "GeminiGenerateContentResponse": {
        "type": "object",
        "properties": {
            "candidates": {"type": "array", "items": _ANY_OBJECT},
            "promptFeedback": _ANY_OBJECT,
            "usageMetadata": _ANY_OBJECT,
            "modelVersion": {"type": "string"},
            "responseId": {"type": "string"},
        },
    },
    "GeminiCountTokensResponse": {"type": "object", "properties": {"totalTokens": {"type": "integer"}}},
    "GeminiOperation": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "metadata": _ANY_OBJECT, "done": {"type": "boolean"}},
    },
    "GeminiEmbedContentResponse": {
        "type": "object",
        "properties": {
            "embedding": {
                "type": "object",
                "properties": {"values": {"type": "array", "items": {"type": "number"}}},
            }
        },
    },
    "GeminiBatchEmbedContentsResponse": {
        "type": "object",
        "properties": {"embeddings": {"type": "array", "items": _ANY_OBJECT}},
    },
    "GeminiPredictResponse": {
        "type": "object",
        "properties": {"predictions": {"type": "array", "items": _ANY_OBJECT}},
    },
    "GeminiModel": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "displayName": {"type": "string"},
            "inputTokenLimit": {"type": "integer"},
            "outputTokenLimit": {"type": "integer"},
            "supportedGenerationMethods": _STRINGS,
        },
    },
    "GeminiModelList": {
        "type": "object",
        "properties": {
            "models": {"type": "array", "items": {"$ref": "#/components/schemas/GeminiModel"}},
            "nextPageToken": {"type": "string"},
        },
    },
    "OpenAIChatCompletion": {
        "type": "object",
        "required": ["id", "object", "choices"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["chat.completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array", "items": _ANY_OBJECT},
            "usage": _ANY_OBJECT,
        },
    },
    "OpenAIResponse": {
        "type": "object",
        "required": ["id", "object", "status", "output"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["response"]},
            "created_at": {"type": "integer"},
            "status": {"type": "string", "enum": ["completed", "incomplete", "failed", "in_progress"]},
            "model": {"type": "string"},
            "output": {"type": "array", "items": _ANY_OBJECT},
            "usage": {**_ANY_OBJECT, "nullable": True},
            "error": {**_ANY_OBJECT, "nullable": True},
            "incomplete_details": {**_ANY_OBJECT, "nullable": True},
            "previous_response_id": {"type": "string", "nullable": True},
            "store": {"type": "boolean"},
        },
    },
    "OpenAIResponseDeleted": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["response.deleted"]},
            "deleted": {"type": "boolean"},
        },
    },
    "OpenAIInputItemList": {
        "type": "object",
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ANY_OBJECT},
            "first_id": {"type": "string", "nullable": True},
            "last_id": {"type": "string", "nullable": True},
            "has_more": {"type": "boolean"},
        },
    },
    "OpenAIInputTokens": {
        "type": "object",
        "properties": {
            "object": {"type": "string", "enum": ["response.input_tokens"]},
            "input_tokens": {"type": "integer"},
        },
    },
    "OpenAICompaction": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["response.compaction"]},
            "created_at": {"type": "integer"},
            "output": {"type": "array", "items": _ANY_OBJECT},
            "usage": _ANY_OBJECT,
        },
    },
    "OpenAIEmbeddingList": {
        "type": "object",
        "properties": {
            "object": {"type": "string"},
            "model": {"type": "string"},
            "usage": _ANY_OBJECT,
            "data": {"type": "array", "items": _ANY_OBJECT},
        },
    },
    "OpenAIImagesResponse": {
        "type": "object",
        "properties": {"created": {"type": "integer"}, "data": {"type": "array", "items": _ANY_OBJECT}},
    },
    "OpenAIModel": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
        },
    },
    "OpenAIModelList": {
        "type": "object",
        "properties": {
            "object": {"type": "string"},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/OpenAIModel"}},
        },
    },
    "AnthropicMessageResponse": {
        "type": "object",
        "required": ["id", "type", "role", "content"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["message"]},
            "role": {"type": "string"},
            "model": {"type": "string"},
            "content": {"type": "array", "items": _ANY_OBJECT},
            "stop_reason": {"type": "string", "nullable": True},
            "stop_sequence": {"type": "string", "nullable": True},
            "usage": _ANY_OBJECT,
        },
    },
    "AnthropicTokenCount": {"type": "object", "properties": {"input_tokens": {"type": "integer"}}},
    "AnthropicModel": {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "id": {"type": "string"},
            "display_name": {"type": "string"},
            "created_at": {"type": "string"},
        },
    },
    "AnthropicModelList": {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/AnthropicModel"}},
            "has_more": {"type": "boolean"},
            "first_id": {"type": "string", "nullable": True},
            "last_id": {"type": "string", "nullable": True},
        },
    },
    # The three error shapes, as each dialect's SDK reads them.
    "GeminiError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "status"],
                "properties": {
                    "code": {"type": "integer"},
                    "message": {"type": "string"},
                    "status": {"type": "string"},
                    "details": {"type": "array", "items": _ANY_OBJECT},
                },
            }
        },
    },
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": "string", "nullable": True},
                    "code": {"type": "string", "nullable": True},
                },
            }
        },
    },
    "AnthropicError": {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"type": "string", "enum": ["error"]},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            },
            "request_id": {"type": "string"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
            "store": {"type": "string"},
            "message": {"type": "string"},
            "upstream_keys": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
}

_HEADERS = {
    "x-request-id": {
        "description": "The gateway's id for this request (also in its logs and usage records)",
        "schema": {"type": "string"},
    },
    OVERHEAD_HEADER: {
        "description": "Milliseconds spent in the gateway itself, waiting for Gemini excluded "
        "(for a stream: up to its headers)",
        "schema": {"type": "string"},
    },
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {
        "description": description,
        "headers": _HEADERS,
        "content": {"application/json": {"schema": schema}},
    }


def _errors(dialect: str, codes: tuple[str, ...] = GEMINI_ERROR_CODES) -> dict:
    ref = {"$ref": f"#/components/responses/{dialect}Error"}
    return {**dict.fromkeys(codes, ref), "default": ref}


def _body(name: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


_SSE = {"text/event-stream": {"schema": {"type": "string", "description": "Server-sent events"}}}
_ANY_BODY = {"required": False, "content": {"application/json": {"schema": _ANY_OBJECT}}}
_BYTES = {"schema": {"type": "string", "format": "binary"}}


# -- custom marshmallow fields ---------------------------------------------------------------


def _custom_fields(self, field: fields.Field, **kwargs) -> dict:
    """OpenAPI for the schemas' own field classes (apispec knows only marshmallow's)."""
    o, a, r = openai_schemas, anthropic_schemas, responses_schemas
    strings = {"type": "array", "items": {"type": "string"}}
    if isinstance(field, schema_fields.ProtoNumber):
        return {"oneOf": [{"type": "number"}, {"type": "string"}]}
    if isinstance(field, schema_fields.ProtoInt32):
        return {"oneOf": [{"type": "integer", "format": "int32"}, {"type": "string"}]}
    if isinstance(field, schema_fields.ProtoEnum):
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    if isinstance(field, (schema_fields.StringOrList, o.EmbeddingsInput)):
        return {"oneOf": [{"type": "string"}, strings]}
    if isinstance(field, o.MessageContent):
        part = {
            "type": "object",
            "required": ["type"],
            "additionalProperties": True,
            "properties": {"type": {"type": "string", "enum": list(o._PART_TYPES)}},
        }
        return {"oneOf": [{"type": "string"}, {"type": "array", "items": part}]}
    if isinstance(field, r.Input):
        item = {"type": "object", "additionalProperties": True, "properties": {"type": {"type": "string"}}}
        return {"oneOf": [{"type": "string"}, {"type": "array", "items": item}]}
    if isinstance(field, r.Tools):
        tool = {
            "type": "object",
            "required": ["type"],
            "additionalProperties": True,
            "properties": {"type": {"type": "string"}},
        }
        return {"type": "array", "items": tool}
    if isinstance(field, (o.ToolChoice, r.ToolChoice)):
        return {"oneOf": [{"type": "string", "enum": ["none", "auto", "required"]}, _ANY_OBJECT]}
    if isinstance(field, o.LegacyFunctionCall):
        return {
            "oneOf": [
                {"type": "string", "enum": ["none", "auto"]},
                {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
            ]
        }
    if isinstance(field, o.Voice):
        return {"oneOf": [{"type": "string"}, {"type": "object", "properties": {"id": {"type": "string"}}}]}
    if isinstance(field, a.ContentBlocks):
        blocks = []
        for kind, schema in sorted(field.block_schemas.items()):
            tagged = {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "enum": [kind]}},
            }
            blocks.append({"allOf": [self.resolve_nested_schema(schema), tagged]})
        return {"oneOf": [{"type": "string"}, {"type": "array", "items": {"anyOf": blocks}}]}
    return {}


def _schema_name(schema) -> str:
    cls = resolve_schema_cls(schema)
    assert not isinstance(cls, list)  # every request schema is one class
    return _PREFIXES.get(cls.__module__, "") + cls.__name__


# -- the document ----------------------------------------------------------------------------


def _gemini_paths(spec: APISpec, version: str) -> None:
    model = {
        "name": "model",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "A Gemini model id, e.g. gemini-2.5-flash",
    }
    actions = (
        ("generateContent", "GenerateContentRequest", "GeminiGenerateContentResponse", "Generate a response"),
        ("countTokens", "CountTokensRequest", "GeminiCountTokensResponse", "Count the tokens of a request"),
        ("embedContent", "EmbedContentRequest", "GeminiEmbedContentResponse", "Embed one content"),
        (
            "batchEmbedContents",
            "BatchEmbedContentsRequest",
            "GeminiBatchEmbedContentsResponse",
            "Embed several contents",
        ),
        ("predict", "PredictRequest", "GeminiPredictResponse", "Generate images with Imagen"),
        ("predictLongRunning", "PredictLongRunningRequest", "GeminiOperation", "Start a video with Veo"),
        ("batchGenerateContent", None, "GeminiOperation", "Start a batch of generate requests"),
        ("asyncBatchEmbedContent", None, "GeminiOperation", "Start a batch of embed requests"),
    )
    tag = f"Gemini ({version})"
    for action, request, answer, summary in actions:
        spec.path(
            f"/{version}/models/{{model}}:{action}",
            operations={
                "post": {
                    "tags": [tag],
                    "summary": summary,
                    "operationId": f"gemini_{version}_{action}",
                    "parameters": [model],
                    "requestBody": _body("Gemini" + request) if request else _ANY_BODY,
                    "responses": {
                        "200": _json(_ref(answer), "Gemini's answer, relayed"),
                        **_errors("Gemini"),
                    },
                }
            },
        )
    alt = {
        "name": "alt",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["sse"]},
        "description": "`sse` for server-sent events; without it, one JSON array that grows as it streams",
    }
    spec.path(
        f"/{version}/models/{{model}}:streamGenerateContent",
        operations={
            "post": {
                "tags": [tag],
                "summary": "Generate a response, streamed",
                "operationId": f"gemini_{version}_stream",
                "parameters": [model, alt],
                "requestBody": _body("GeminiGenerateContentRequest"),
                "responses": {
                    "200": {
                        "description": "Each event a GenerateContentResponse",
                        "headers": _HEADERS,
                        "content": {
                            **_SSE,
                            "application/json": {
                                "schema": {"type": "array", "items": _ref("GeminiGenerateContentResponse")}
                            },
                        },
                    },
                    **_errors("Gemini"),
                },
            }
        },
    )
    operation = {"name": "operation", "in": "path", "required": True, "schema": {"type": "string"}}
    spec.path(
        f"/{version}/models/{{model}}/operations/{{operation}}",
        operations={
            "get": {
                "tags": [tag],
                "summary": "Poll a model's long-running operation (a Veo video); the caller's own",
                "operationId": f"gemini_{version}_model_operation",
                "parameters": [model, operation],
                "responses": {"200": _json(_ref("GeminiOperation"), "The operation"), **_errors("Gemini")},
            }
        },
    )
    if version == "v1beta":  # GET /v1/models is the shared, three-dialect list
        page = [
            {"name": "pageSize", "in": "query", "required": False, "schema": {"type": "integer"}},
            {"name": "pageToken", "in": "query", "required": False, "schema": {"type": "string"}},
        ]
        spec.path(
            "/v1beta/models",
            operations={
                "get": {
                    "tags": [tag],
                    "summary": "List Gemini models",
                    "operationId": "gemini_list_models",
                    "parameters": page,
                    "responses": {
                        "200": _json(_ref("GeminiModelList"), "A page of models"),
                        **_errors("Gemini"),
                    },
                }
            },
        )
        spec.path(
            "/v1beta/models/{model}",
            operations={
                "get": {
                    "tags": [tag],
                    "summary": "Get a Gemini model",
                    "operationId": "gemini_get_model",
                    "parameters": [model],
                    "responses": {"200": _json(_ref("GeminiModel"), "The model"), **_errors("Gemini")},
                }
            },
        )


def _resource_paths(spec: APISpec) -> None:
    """Gemini's resource families, forwarded (app/gemini/resources.py), and the upload routes."""
    for version in ("v1beta", "v1"):
        tag = [f"Gemini resources ({version})"]
        families = [f for f in FAMILIES if version == "v1beta" or f != "files"]  # /v1/files: shared
        family = {
            "name": "family",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": families},
            "description": "One of Gemini's resource families",
        }
        sub = {
            "name": "sub",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "A resource (`abc`), a child (`abc/documents/d`) or an action (`abc:cancel`)",
        }
        note = (
            "Forwarded to Gemini through the key pool. A resource is its creator's alone: any other "
            "client gets 404, and lists hold only the caller's own."
        )
        answers = {
            "200": {
                "description": "Gemini's answer, relayed (JSON, server-sent events, or a file's bytes)",
                "headers": _HEADERS,
                "content": {
                    "application/json": {"schema": _ANY_OBJECT},
                    **_SSE,
                    "application/octet-stream": _BYTES,
                },
            },
            **_errors("Gemini"),
        }

        def operation(
            name: str,
            summary: str,
            params: list,
            body: bool,
            tag=tag,
            note=note,
            answers=answers,
            version=version,
        ):
            op = {
                "tags": tag,
                "summary": summary,
                "description": note,
                "operationId": f"gemini_{version}_{name}",
                "parameters": params,
                "responses": answers,
            }
            if body:
                op["requestBody"] = _ANY_BODY
            return op

        spec.path(
            f"/{version}/{{family}}",
            operations={
                "get": operation("list_resources", "List the caller's resources", [family], False),
                "post": operation("create_resource", "Create a resource", [family], True),
            },
        )
        spec.path(
            f"/{version}/{{family}}/{{sub}}",
            operations={
                "get": operation(
                    "get_resource", "Get a resource, a child, or a file's bytes", [family, sub], False
                ),
                "post": operation("resource_action", "An action on a resource", [family, sub], True),
                "patch": operation("update_resource", "Update a resource", [family, sub], True),
                "delete": operation("delete_resource", "Delete a resource", [family, sub], False),
            },
        )
    version_param = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": ["v1beta", "v1"]},
    }
    upload_headers = [
        {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
        for name in ("X-Goog-Upload-Protocol", "X-Goog-Upload-Command", "X-Goog-Upload-Offset")
    ]
    upload_answer = {
        "200": {
            "description": "Gemini's answer; a resumable start's X-Goog-Upload-URL points at the gateway",
            "headers": _HEADERS,
            "content": {
                "application/json": {"schema": _ANY_OBJECT},
                "text/plain": {"schema": {"type": "string"}},
            },
        },
        **_errors("Gemini"),
    }
    upload_body = {
        "required": False,
        "content": {"application/json": {"schema": _ANY_OBJECT}, "application/octet-stream": _BYTES},
    }
    tag = ["Gemini uploads"]
    spec.path(
        "/upload/{version}/files",
        operations={
            "post": {
                "tags": tag,
                "summary": "Upload a file (resumable, multipart or raw), or send to an upload URL",
                "description": "The bytes stream through, never held whole. A handed-out upload URL "
                "(`?upload_id=`) needs no key: its session names the client.",
                "operationId": "gemini_upload_file",
                "parameters": [version_param, *upload_headers],
                "requestBody": upload_body,
                "responses": upload_answer,
            }
        },
    )
    spec.path(
        "/upload/{version}/{rest}",
        operations={
            "post": {
                "tags": tag,
                "summary": "Upload into a resource (`fileSearchStores/{id}:uploadToFileSearchStore`)",
                "operationId": "gemini_upload_to",
                "parameters": [
                    version_param,
                    {"name": "rest", "in": "path", "required": True, "schema": {"type": "string"}},
                    *upload_headers,
                ],
                "requestBody": upload_body,
                "responses": upload_answer,
            }
        },
    )
    spec.path(
        "/download/{version}/files/{sub}",
        operations={
            "get": {
                "tags": tag,
                "summary": "Download a generated file (`{id}:download?alt=media`), streamed",
                "operationId": "gemini_download_file",
                "parameters": [
                    version_param,
                    {"name": "sub", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "The file's bytes",
                        "headers": _HEADERS,
                        "content": {"*/*": _BYTES},
                    },
                    **_errors("Gemini"),
                },
            }
        },
    )


def _openai_paths(spec: APISpec) -> None:
    tag = ["OpenAI-compatible"]
    chat_answers = {
        "description": "A chat completion, or chunks as server-sent events when `stream` is true",
        "headers": _HEADERS,
        "content": {"application/json": {"schema": _ref("OpenAIChatCompletion")}, **_SSE},
    }
    operations = (
        (
            "/v1/chat/completions",
            "chat_completions",
            "Chat completion",
            "ChatCompletionRequest",
            chat_answers,
        ),
        (
            "/v1/embeddings",
            "embeddings",
            "Embeddings",
            "EmbeddingsRequest",
            _json(_ref("OpenAIEmbeddingList"), "The embeddings"),
        ),
        (
            "/v1/images/generations",
            "images",
            "Generate images",
            "ImagesRequest",
            _json(_ref("OpenAIImagesResponse"), "The images"),
        ),
        (
            "/v1/audio/speech",
            "speech",
            "Text to speech",
            "SpeechRequest",
            {
                "description": "The audio, or server-sent events when `stream_format` is sse",
                "headers": _HEADERS,
                "content": {"audio/*": {"schema": {"type": "string", "format": "binary"}}, **_SSE},
            },
        ),
        (
            "/v1/responses",
            "responses_create",
            "Create a response",
            "ResponseCreateRequest",
            {
                "description": "A response, or its events as server-sent events when `stream` is true",
                "headers": _HEADERS,
                "content": {"application/json": {"schema": _ref("OpenAIResponse")}, **_SSE},
            },
        ),
        (
            "/v1/responses/input_tokens",
            "responses_input_tokens",
            "Count a response's input tokens",
            "InputTokensRequest",
            _json(_ref("OpenAIInputTokens"), "The count"),
        ),
        (
            "/v1/responses/compact",
            "responses_compact",
            "Compact a conversation into one compaction item",
            "CompactRequest",
            _json(_ref("OpenAICompaction"), "The user's messages and the compaction item"),
        ),
    )
    for path, op_id, summary, request, answer in operations:
        spec.path(
            path,
            operations={
                "post": {
                    "tags": tag,
                    "summary": summary,
                    "operationId": f"openai_{op_id}",
                    "requestBody": _body("OpenAI" + request),
                    "responses": {"200": answer, **_errors("OpenAI")},
                }
            },
        )


def _responses_paths(spec: APISpec) -> None:
    """The stored responses' routes (the Responses API's POST routes are among _openai_paths')."""
    tag = ["OpenAI-compatible"]
    response_id = {"name": "response_id", "in": "path", "required": True, "schema": {"type": "string"}}
    spec.path(
        "/v1/responses/{response_id}",
        operations={
            "get": {
                "tags": tag,
                "summary": "Read a stored response (the client key that made it only)",
                "operationId": "openai_responses_get",
                "parameters": [
                    response_id,
                    {"name": "include", "in": "query", "required": False, "schema": _STRINGS},
                ],
                "responses": {"200": _json(_ref("OpenAIResponse"), "The response"), **_errors("OpenAI")},
            },
            "delete": {
                "tags": tag,
                "summary": "Delete a stored response",
                "operationId": "openai_responses_delete",
                "parameters": [response_id],
                "responses": {"200": _json(_ref("OpenAIResponseDeleted"), "Deleted"), **_errors("OpenAI")},
            },
        },
    )
    spec.path(
        "/v1/responses/{response_id}/input_items",
        operations={
            "get": {
                "tags": tag,
                "summary": "List a stored response's own input items",
                "operationId": "openai_responses_input_items",
                "parameters": [
                    response_id,
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    {
                        "name": "order",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["asc", "desc"]},
                    },
                    {"name": "after", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json(_ref("OpenAIInputItemList"), "A page of items"),
                    **_errors("OpenAI"),
                },
            }
        },
    )


def _anthropic_paths(spec: APISpec) -> None:
    tag = ["Anthropic-compatible"]
    version = {
        "name": "anthropic-version",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "Accepted, as Anthropic's SDKs send it",
    }
    spec.path(
        "/v1/messages",
        operations={
            "post": {
                "tags": tag,
                "summary": "Create a message",
                "operationId": "anthropic_messages",
                "parameters": [version],
                "requestBody": _body("AnthropicMessagesRequest"),
                "responses": {
                    "200": {
                        "description": "A message, or its events when `stream` is true",
                        "headers": _HEADERS,
                        "content": {"application/json": {"schema": _ref("AnthropicMessageResponse")}, **_SSE},
                    },
                    **_errors("Anthropic", ANTHROPIC_ERROR_CODES),
                },
            }
        },
    )
    spec.path(
        "/v1/messages/count_tokens",
        operations={
            "post": {
                "tags": tag,
                "summary": "Count a message's tokens",
                "operationId": "anthropic_count_tokens",
                "parameters": [version],
                "requestBody": _body("AnthropicCountTokensRequest"),
                "responses": {
                    "200": _json(_ref("AnthropicTokenCount"), "The count"),
                    **_errors("Anthropic", ANTHROPIC_ERROR_CODES),
                },
            }
        },
    )


def _shared_paths(spec: APISpec) -> None:
    tag = ["Models (all dialects)"]
    note = (
        "Answers in Anthropic's shape when `anthropic-version` is sent, Gemini's for a Google-style key "
        "(`x-goog-api-key` or `?key=`), else OpenAI's."
    )
    any_error = {
        "description": "An error in the caller's dialect",
        "headers": _HEADERS,
        "content": {
            "application/json": {
                "schema": {"anyOf": [_ref("OpenAIError"), _ref("GeminiError"), _ref("AnthropicError")]}
            }
        },
    }
    spec.path(
        "/v1/models",
        operations={
            "get": {
                "tags": tag,
                "summary": "List models",
                "description": note,
                "operationId": "list_models",
                "responses": {
                    "200": _json(
                        {
                            "anyOf": [
                                _ref("OpenAIModelList"),
                                _ref("GeminiModelList"),
                                _ref("AnthropicModelList"),
                            ]
                        },
                        "The models",
                    ),
                    "default": any_error,
                },
            }
        },
    )
    spec.path(
        "/v1/models/{model}",
        operations={
            "get": {
                "tags": tag,
                "summary": "Get a model",
                "description": note,
                "operationId": "get_model",
                "parameters": [
                    {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json(
                        {"anyOf": [_ref("OpenAIModel"), _ref("GeminiModel"), _ref("AnthropicModel")]},
                        "The model",
                    ),
                    "default": any_error,
                },
            }
        },
    )
    files_note = (
        "Gemini's Files API for a Google-style key (`x-goog-api-key` or `?key=`), else OpenAI's; "
        "either way backed by Gemini's files, each its creator's alone."
    )
    file_param = {"name": "sub", "in": "path", "required": True, "schema": {"type": "string"}}
    file_answer = {
        "200": {
            "description": "A file, a list of the caller's files, or a file's bytes",
            "headers": _HEADERS,
            "content": {"application/json": {"schema": _ANY_OBJECT}, "application/octet-stream": _BYTES},
        },
        "default": any_error,
    }
    spec.path(
        "/v1/files",
        operations={
            "get": {
                "tags": tag,
                "summary": "List the caller's files",
                "description": files_note,
                "operationId": "list_files",
                "responses": file_answer,
            },
            "post": {
                "tags": tag,
                "summary": "Upload a file (OpenAI: multipart `file` and `purpose`)",
                "description": files_note,
                "operationId": "create_file",
                "requestBody": {
                    "required": False,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "purpose": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": file_answer,
            },
        },
    )
    spec.path(
        "/v1/files/{sub}",
        operations={
            "get": {
                "tags": tag,
                "summary": "Get a file (`{id}`), or its bytes (`{id}/content`, `{id}:download`)",
                "description": files_note,
                "operationId": "get_file",
                "parameters": [file_param],
                "responses": file_answer,
            },
            "delete": {
                "tags": tag,
                "summary": "Delete a file",
                "description": files_note,
                "operationId": "delete_file",
                "parameters": [file_param],
                "responses": file_answer,
            },
        },
    )
    ops = ["Operations"]
    spec.path(
        "/healthz",
        operations={
            "get": {
                "tags": ops,
                "summary": "Health: upstream keys and the state store",
                "operationId": "healthz",
                "security": [],
                "responses": {
                    "200": _json(_ref("Health"), "Serving"),
                    "503": _json(_ref("Health"), "The state store is unavailable"),
                },
            }
        },
    )
    spec.path(
        "/metrics",
        operations={
            "get": {
                "tags": ops,
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "security": [{"metricsToken": []}, {}],
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "headers": _HEADERS,
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": {
                        "description": "METRICS_TOKEN is set and was not sent",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
    )
    spec.path(
        "/openapi.json",
        operations={
            "get": {
                "tags": ops,
                "summary": "This description",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3")},
            }
        },
    )


@lru_cache(maxsize=1)
def document() -> bytes:
    """The OpenAPI document as JSON bytes (built once per process, on first use)."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    try:
        version = metadata.version("gemgate")
    except metadata.PackageNotFoundError:
        version = "0"
    spec = APISpec(
        title="gemgate",
        version=version,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": "A Gemini API gateway that speaks the Gemini, OpenAI and Anthropic dialects. "
            "Request bodies are checked against these schemas; unknown fields pass through."
        },
        security=CLIENT_AUTH,
    )
    plugin.map_to_openapi_type(schema_fields.Number, "number", None)
    plugin.map_to_openapi_type(schema_fields.Integer, "integer", None)
    plugin.map_to_openapi_type(schema_fields.Boolean, "boolean", None)
    assert plugin.converter is not None  # set by init_spec

    plugin.converter.add_attribute_function(_custom_fields)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, schema in RESPONSE_SCHEMAS.items():
        spec.components.schema(name, schema)
    for dialect in ("Gemini", "OpenAI", "Anthropic"):
        spec.components.response(
            f"{dialect}Error", _json(_ref(f"{dialect}Error"), f"An error in {dialect}'s shape")
        )
    requests = (
        (
            gemini_schemas,
            (
                "GenerateContentRequest",
                "CountTokensRequest",
                "EmbedContentRequest",
                "BatchEmbedContentsRequest",
                "PredictRequest",
                "PredictLongRunningRequest",
            ),
        ),
        (openai_schemas, ("ChatCompletionRequest", "EmbeddingsRequest", "ImagesRequest", "SpeechRequest")),
        (responses_schemas, ("ResponseCreateRequest", "InputTokensRequest", "CompactRequest")),
        (anthropic_schemas, ("MessagesRequest", "CountTokensRequest")),
    )
    for module, names in requests:
        for name in names:
            schema = getattr(module, name)
            spec.components.schema(_schema_name(schema), schema=schema)
    for version in ("v1beta", "v1"):
        _gemini_paths(spec, version)
    _resource_paths(spec)
    _openai_paths(spec)
    _responses_paths(spec)
    _anthropic_paths(spec)
    _shared_paths(spec)
    return jsonx.dumps(spec.to_dict())


def init_app(app: Flask) -> None:
    def view():
        return Response(
            document(), mimetype="application/json", headers={"Cache-Control": "public, max-age=300"}
        )

    app.add_url_rule("/openapi.json", "openapi", view, methods=["GET"])
