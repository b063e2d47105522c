"""Schemas for OpenAI-style request bodies: chat completions, embeddings, images and speech."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate

from . import OpenSchema
from .fields import OPTIONAL, Boolean, Integer, Items, Number, StringOrList

_PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")


def _part_error(part) -> dict | list | None:
    if isinstance(part, str):  # a bare string part: some clients send these; read as text
        return None
    if not isinstance(part, dict):
        return ["Each content part must be an object."]
    kind = part.get("type")
    if kind not in _PART_TYPES:
        return {"type": [f"Must be one of: {', '.join(_PART_TYPES)}."]}
    if kind in ("text", "refusal"):
        if not isinstance(part.get(kind), str):
            return {kind: ["Not a valid string."]}
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            return {"image_url": {"url": ["Missing image URL."]}}
    elif kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
            return {"input_audio": {"data": ["Missing base64 audio data."]}}
        if audio.get("format") is not None and not isinstance(audio.get("format"), str):
            return {"input_audio": {"format": ["Not a valid string."]}}
    elif kind == "file":
        file = part.get("file")
        if not isinstance(file, dict) or not (
            isinstance(file.get("file_data"), str) or isinstance(file.get("file_id"), str)
        ):
            return {"file": ["Needs file_data (a data URL or base64) or file_id."]}
    return None


class MessageContent(
    Items, check=_part_error, text=True, expected="Must be a string or a list of content parts."
):
    """Message content: a string, or a list of typed parts ({"type": "text", "text": ...} and so on)."""


class FunctionCall(OpenSchema):
    name = fields.String(required=True)
    arguments = fields.String(**OPTIONAL)


class ToolCall(OpenSchema):
    id = fields.String(required=True)
    type = fields.String(**OPTIONAL)
    function = fields.Nested(FunctionCall, required=True)
    extra_content = fields.Dict(**OPTIONAL)


class Message(OpenSchema):
    role = fields.String(
        required=True,
        validate=validate.OneOf(("system", "developer", "user", "assistant", "tool", "function")),
    )
    content = MessageContent(**OPTIONAL)
    name = fields.String(**OPTIONAL)
    tool_calls = fields.List(fields.Nested(ToolCall), **OPTIONAL)
    tool_call_id = fields.String(**OPTIONAL)
    function_call = fields.Nested(FunctionCall, **OPTIONAL)


class FunctionDefinition(OpenSchema):
    name = fields.String(required=True, validate=validate.Length(min=1))
    description = fields.String(**OPTIONAL)
    parameters = fields.Dict(**OPTIONAL)
    strict = Boolean(**OPTIONAL)


class Tool(OpenSchema):
    type = fields.String(**OPTIONAL)
    function = fields.Nested(FunctionDefinition, **OPTIONAL)


class ToolChoice(fields.Field):
    """ "none" | "auto" | "required" | {"type": "function", "function": {"name"}} | allowed_tools."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if value not in ("none", "auto", "required"):
                raise ValidationError("Must be 'none', 'auto', 'required' or an object naming a function.")
            return value
        if not isinstance(value, dict):
            raise ValidationError("Must be a string or an object.")
        kind = value.get("type", "function")
        if kind == "function":
            function = value.get("function")
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise ValidationError({"function": {"name": ["Missing function name."]}})
        elif kind == "allowed_tools":
            allowed = value.get("allowed_tools")
            if not isinstance(allowed, dict) or allowed.get("mode") not in ("auto", "required"):
                raise ValidationError({"allowed_tools": {"mode": ["Must be 'auto' or 'required'."]}})
            if not isinstance(allowed.get("tools"), list):
                raise ValidationError({"allowed_tools": {"tools": ["Must be a list of tools."]}})
        else:
            raise ValidationError({"type": ["Must be 'function' or 'allowed_tools'."]})
        return value


class LegacyFunctionCall(fields.Field):
    """The deprecated `function_call`: "none" | "auto" | {"name"}."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value in ("none", "auto"):
            return value
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            return value
        raise ValidationError("Must be 'none', 'auto' or {\"name\": ...}.")


class JSONSchemaFormat(OpenSchema):
    name = fields.String(**OPTIONAL)
    schema = fields.Dict(**OPTIONAL)
    strict = Boolean(**OPTIONAL)


class ResponseFormat(OpenSchema):
    type = fields.String(required=True, validate=validate.OneOf(("text", "json_object", "json_schema")))
    json_schema = fields.Nested(JSONSchemaFormat, **OPTIONAL)


class StreamOptions(OpenSchema):
    include_usage = Boolean(**OPTIONAL)


class Voice(fields.Field):
    """A voice name, or {"id": name} as newer SDKs send for custom voices."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict):
            value = value.get("id")
        if not isinstance(value, str) or not value:
            raise ValidationError("Must be a voice name.")
        return value


class AudioOutput(OpenSchema):
    voice = Voice(**OPTIONAL)
    format = fields.String(**OPTIONAL)


class ChatCompletionRequest(OpenSchema):
    model = fields.String(required=True, validate=validate.Length(min=1))
    messages = fields.List(fields.Nested(Message), required=True, validate=validate.Length(min=1))
    stream = Boolean(**OPTIONAL)
    stream_options = fields.Nested(StreamOptions, **OPTIONAL)
    max_tokens = Integer(validate=validate.Range(min=1), **OPTIONAL)
    max_completion_tokens = Integer(validate=validate.Range(min=1), **OPTIONAL)
    temperature = Number(validate=validate.Range(min=0, max=2), **OPTIONAL)
    top_p = Number(validate=validate.Range(min=0, max=1), **OPTIONAL)
    n = Integer(validate=validate.Range(min=1, max=8), **OPTIONAL)
    stop = StringOrList(**OPTIONAL)
    presence_penalty = Number(validate=validate.Range(min=-2, max=2), **OPTIONAL)
    frequency_penalty = Number(validate=validate.Range(min=-2, max=2), **OPTIONAL)
    seed = Integer(**OPTIONAL)
    logprobs = Boolean(**OPTIONAL)
    top_logprobs = Integer(validate=validate.Range(min=0, max=20), **OPTIONAL)
    response_format = fields.Nested(ResponseFormat, **OPTIONAL)
    tools = fields.List(fields.Nested(Tool), **OPTIONAL)
    tool_choice = ToolChoice(**OPTIONAL)
    parallel_tool_calls = Boolean(**OPTIONAL)
    functions = fields.List(fields.Nested(FunctionDefinition), **OPTIONAL)
    function_call = LegacyFunctionCall(**OPTIONAL)
    reasoning_effort = fields.String(**OPTIONAL)
    modalities = fields.List(fields.String(), **OPTIONAL)
    audio = fields.Nested(AudioOutput, **OPTIONAL)
    extra_body = fields.Dict(**OPTIONAL)


class EmbeddingsInput(fields.Field):
    """A string or a list of strings; token arrays are refused (Gemini embeds text, not token ids)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if not value:
                raise ValidationError("Must not be an empty string.")
            return value
        if not isinstance(value, list) or not value:
            raise ValidationError("Must be a string or a non-empty list of strings.")
        for i, item in enumerate(value):
            if isinstance(item, (int, list)) and not isinstance(item, bool):
                raise ValidationError(
                    "Token arrays are not supported: Gemini embeds text, so send the input as strings."
                )
            if not isinstance(item, str):
                raise ValidationError({i: ["Not a valid string."]})
            if not item:
                raise ValidationError({i: ["Must not be an empty string."]})
        return value


class EmbeddingsRequest(OpenSchema):
    model = fields.String(required=True, validate=validate.Length(min=1))
    input = EmbeddingsInput(required=True)
    dimensions = Integer(validate=validate.Range(min=1), **OPTIONAL)
    encoding_format = fields.String(validate=validate.OneOf(("float", "base64")), **OPTIONAL)


class ImagesRequest(OpenSchema):
    prompt = fields.String(required=True, validate=validate.Length(min=1))
    model = fields.String(**OPTIONAL)
    n = Integer(validate=validate.Range(min=1, max=4, error="Must be between 1 and 4."), **OPTIONAL)
    size = fields.String(**OPTIONAL)
    response_format = fields.String(validate=validate.OneOf(("url", "b64_json")), **OPTIONAL)


class SpeechRequest(OpenSchema):
    model = fields.String(required=True, validate=validate.Length(min=1))
    input = fields.String(required=True, validate=validate.Length(min=1))
    voice = Voice(**OPTIONAL)
    instructions = fields.String(**OPTIONAL)
    response_format = fields.String(**OPTIONAL)
    speed = Number(validate=validate.Range(min=0.25, max=4.0), **OPTIONAL)
    stream_format = fields.String(validate=validate.OneOf(("audio", "sse")), **OPTIONAL)
