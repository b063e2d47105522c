"""Schemas for Gemini-native request bodies (camelCase, as Google documents them)."""

from __future__ import annotations

from marshmallow import fields, validate

from . import OpenSchema

INT32_MAX = 2**31 - 1


def Int32(minimum: int = -INT32_MAX - 1, **kwargs) -> fields.Integer:
    """A proto int32 field: Gemini rejects anything wider."""
    return fields.Integer(validate=validate.Range(min=minimum, max=INT32_MAX), **kwargs)


class Blob(OpenSchema):
    mimeType = fields.String(required=True)
    data = fields.String(required=True)


class FileData(OpenSchema):
    mimeType = fields.String()
    fileUri = fields.String(required=True)


class FunctionCall(OpenSchema):
    name = fields.String(required=True)
    args = fields.Dict()
    id = fields.String()


class FunctionResponse(OpenSchema):
    name = fields.String(required=True)
    response = fields.Dict()
    id = fields.String()


class Part(OpenSchema):
    text = fields.String()
    inlineData = fields.Nested(Blob)
    fileData = fields.Nested(FileData)
    functionCall = fields.Nested(FunctionCall)
    functionResponse = fields.Nested(FunctionResponse)
    executableCode = fields.Dict()
    codeExecutionResult = fields.Dict()
    thought = fields.Boolean()
    thoughtSignature = fields.String()


class Content(OpenSchema):
    role = fields.String()
    parts = fields.List(fields.Nested(Part), required=True)


class SystemInstruction(Content):
    parts = fields.List(fields.Nested(Part), required=True)


class ThinkingConfig(OpenSchema):
    includeThoughts = fields.Boolean()
    thinkingBudget = Int32()
    thinkingLevel = fields.String()


class GenerationConfig(OpenSchema):
    temperature = fields.Float()
    topP = fields.Float()
    topK = fields.Float()
    candidateCount = Int32(1)
    maxOutputTokens = Int32(1)
    stopSequences = fields.List(fields.String())
    presencePenalty = fields.Float()
    frequencyPenalty = fields.Float()
    seed = Int32()
    responseMimeType = fields.String()
    responseModalities = fields.List(fields.String())
    responseLogprobs = fields.Boolean()
    logprobs = Int32()
    thinkingConfig = fields.Nested(ThinkingConfig)
    speechConfig = fields.Dict()
    imageConfig = fields.Dict()


class SafetySetting(OpenSchema):
    category = fields.String(required=True)
    threshold = fields.String(required=True)


class GenerateContentRequest(OpenSchema):
    contents = fields.List(fields.Nested(Content), required=True, validate=validate.Length(min=1))
    systemInstruction = fields.Nested(SystemInstruction)
    tools = fields.List(fields.Dict())
    toolConfig = fields.Dict()
    safetySettings = fields.List(fields.Nested(SafetySetting))
    generationConfig = fields.Nested(GenerationConfig)
    cachedContent = fields.String()


class CountTokensRequest(OpenSchema):
    contents = fields.List(fields.Nested(Content))
    generateContentRequest = fields.Nested(GenerateContentRequest)


class EmbedContentRequest(OpenSchema):
    model = fields.String()
    content = fields.Nested(Content, required=True)
    taskType = fields.String()
    title = fields.String()
    outputDimensionality = Int32(1)


class BatchEmbedContentsRequest(OpenSchema):
    requests = fields.List(fields.Nested(EmbedContentRequest), required=True, validate=validate.Length(min=1))


class PredictInstance(OpenSchema):
    prompt = fields.String(required=True)


class PredictParameters(OpenSchema):
    sampleCount = fields.Integer(validate=validate.Range(min=1, max=4))
    aspectRatio = fields.String()


class PredictRequest(OpenSchema):
    instances = fields.List(fields.Nested(PredictInstance), required=True, validate=validate.Length(min=1))
    parameters = fields.Nested(PredictParameters)
