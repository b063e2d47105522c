"""Schemas for Gemini-native request bodies, read as Gemini's proto-JSON parser reads them.

Gemini takes every field under its lowerCamelCase name or its original snake_case name, mixed within
one body (`inlineData: {"mime_type": ...}` is what google-genai sends), and numbers written as strings.
These schemas check both spellings; a loaded body has the camelCase names, and the view forwards what
the client sent.
"""

from __future__ import annotations

from marshmallow import ValidationError, fields, pre_load, validate

from . import OpenSchema
from .fields import Boolean, ProtoEnum, ProtoInt32, ProtoNumber


def camel_name(name: str) -> str:
    """`generation_config` -> `generationConfig`; a camelCase name stays as it is."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_keys(data: dict) -> dict:
    """The object with its keys in camelCase; 400 when one field is given under both names."""
    if not any("_" in key for key in data if isinstance(key, str)):
        return data
    out: dict = {}
    for key, value in data.items():
        name = camel_name(key) if isinstance(key, str) else key
        if name in out:
            raise ValidationError({key: [f"Given twice, as {name!r} and {key!r}."]})
        out[name] = value
    return out


class ProtoSchema(OpenSchema):
    """An object of Gemini's API: both spellings of every field name are taken."""

    @pre_load
    def _camel_case(self, data, **kwargs):
        return camel_keys(data) if isinstance(data, dict) else data


class Blob(ProtoSchema):
    mimeType = fields.String(required=True)
    data = fields.String(required=True)


class FileData(ProtoSchema):
    mimeType = fields.String()
    fileUri = fields.String(required=True)


class FunctionCall(ProtoSchema):
    name = fields.String(required=True)
    args = fields.Dict()
    id = fields.String()


class FunctionResponse(ProtoSchema):
    name = fields.String(required=True)
    response = fields.Dict()
    id = fields.String()


class Part(ProtoSchema):
    text = fields.String()
    inlineData = fields.Nested(Blob)
    fileData = fields.Nested(FileData)
    functionCall = fields.Nested(FunctionCall)
    functionResponse = fields.Nested(FunctionResponse)
    executableCode = fields.Dict()
    codeExecutionResult = fields.Dict()
    thought = Boolean()
    thoughtSignature = fields.String()


class Content(ProtoSchema):
    role = fields.String()
    parts = fields.List(fields.Nested(Part), required=True)


class ThinkingConfig(ProtoSchema):
    includeThoughts = Boolean()
    thinkingBudget = ProtoInt32()
    thinkingLevel = ProtoEnum()


class GenerationConfig(ProtoSchema):
    temperature = ProtoNumber()
    topP = ProtoNumber()
    topK = ProtoNumber()
    candidateCount = ProtoInt32(1)
    maxOutputTokens = ProtoInt32(1)
    stopSequences = fields.List(fields.String())
    presencePenalty = ProtoNumber()
    frequencyPenalty = ProtoNumber()
    seed = ProtoInt32()
    responseMimeType = fields.String()
    responseModalities = fields.List(ProtoEnum())
    responseLogprobs = Boolean()
    logprobs = ProtoInt32()
    thinkingConfig = fields.Nested(ThinkingConfig)
    speechConfig = fields.Dict()
    imageConfig = fields.Dict()


class SafetySetting(ProtoSchema):
    category = ProtoEnum(required=True)
    threshold = ProtoEnum(required=True)


class GenerateContentRequest(ProtoSchema):
    contents = fields.List(fields.Nested(Content), required=True, validate=validate.Length(min=1))
    systemInstruction = fields.Nested(Content)
    tools = fields.List(fields.Dict())
    toolConfig = fields.Dict()
    safetySettings = fields.List(fields.Nested(SafetySetting))
    generationConfig = fields.Nested(GenerationConfig)
    cachedContent = fields.String()


class CountTokensRequest(ProtoSchema):
    contents = fields.List(fields.Nested(Content))
    generateContentRequest = fields.Nested(GenerateContentRequest)


class EmbedContentRequest(ProtoSchema):
    model = fields.String()
    content = fields.Nested(Content, required=True)
    taskType = ProtoEnum()
    title = fields.String()
    outputDimensionality = ProtoInt32(1)


class BatchEmbedContentsRequest(ProtoSchema):
    requests = fields.List(fields.Nested(EmbedContentRequest), required=True, validate=validate.Length(min=1))


class PredictInstance(ProtoSchema):
    prompt = fields.String(required=True)


class PredictParameters(ProtoSchema):
    sampleCount = ProtoInt32(1, 4)
    aspectRatio = fields.String()


class PredictRequest(ProtoSchema):
    instances = fields.List(fields.Nested(PredictInstance), required=True, validate=validate.Length(min=1))
    parameters = fields.Nested(PredictParameters)


class VideoInstance(ProtoSchema):
    prompt = fields.String()  # optional: a video may start from an image alone


class VideoParameters(ProtoSchema):
    sampleCount = ProtoInt32(1, 4)
    durationSeconds = ProtoInt32(1)


class PredictLongRunningRequest(ProtoSchema):
    """Veo's request: one instance (its prompt, image, frames or video) and the parameters."""

    instances = fields.List(
        fields.Nested(VideoInstance), required=True, validate=validate.Length(min=1, max=4)
    )
    parameters = fields.Nested(VideoParameters)
