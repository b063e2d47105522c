"""Schemas for Anthropic Messages request bodies (`/v1/messages`, `/v1/messages/count_tokens`)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from . import OpenSchema
from .fields import Boolean, Integer, Number

ROLES = ("user", "assistant", "system")
# Blocks produced by Anthropic's own server tools: a client may replay them, they carry nothing
# Gemini can use, so the translator drops them rather than failing the request.
SERVER_TOOL_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
        "tool_reference",
    }
)


class Source(OpenSchema):
    type = fields.String(required=True, validate=validate.OneOf(("base64", "url", "text", "content", "file")))
    media_type = fields.String()
    data = fields.String()
    url = fields.String()
    file_id = fields.String()


class TextBlock(OpenSchema):
    text = fields.String(required=True)


class ImageBlock(OpenSchema):
    source = fields.Nested(Source, required=True)


class DocumentBlock(OpenSchema):
    source = fields.Nested(Source, required=True)
    title = fields.String(allow_none=True)
    context = fields.String(allow_none=True)


class ToolUseBlock(OpenSchema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    input = fields.Dict(required=True)


class ThinkingBlock(OpenSchema):
    thinking = fields.String(required=True)
    signature = fields.String(allow_none=True)


class RedactedThinkingBlock(OpenSchema):
    data = fields.String(required=True)


class SearchResultBlock(OpenSchema):
    source = fields.String()
    title = fields.String()
    content = fields.List(fields.Dict())


class ContentBlocks(fields.Field):
    """A string, or a list of content blocks each checked by the schema for its `type`."""

    def __init__(self, block_schemas: dict[str, Schema], **kwargs):
        super().__init__(**kwargs)
        self.block_schemas = block_schemas

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError("Must be a string or a list of content blocks.")
        errors: dict = {}
        for i, block in enumerate(value):
            if not isinstance(block, dict):
                errors[i] = ["Each content block must be an object."]
                continue
            kind = block.get("type")
            if not isinstance(kind, str):  # a list or an object here must not reach a set or dict lookup
                kind = "" if kind is None else repr(kind)
            if kind in SERVER_TOOL_BLOCKS:
                continue
            schema = self.block_schemas.get(kind)
            if schema is None:
                known = ", ".join(sorted(self.block_schemas))
                errors[i] = {"type": [f"Unsupported content block type {kind!r}; expected one of: {known}."]}
                continue
            found = schema.validate(block)
            if found:
                errors[i] = found
        if errors:
            raise ValidationError(errors)
        return value


# What a tool_result may hold, and what a message may hold.
_RESULT_BLOCKS: dict[str, Schema] = {
    "text": TextBlock(),
    "image": ImageBlock(),
    "document": DocumentBlock(),
    "search_result": SearchResultBlock(),
}


class ToolResultBlock(OpenSchema):
    tool_use_id = fields.String(required=True)
    content = ContentBlocks(_RESULT_BLOCKS, allow_none=True)
    is_error = Boolean(allow_none=True)


_MESSAGE_BLOCKS: dict[str, Schema] = {
    **_RESULT_BLOCKS,
    "tool_use": ToolUseBlock(),
    "tool_result": ToolResultBlock(),
    "thinking": ThinkingBlock(),
    "redacted_thinking": RedactedThinkingBlock(),
}


class Message(OpenSchema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    content = ContentBlocks(_MESSAGE_BLOCKS, required=True)


class Tool(OpenSchema):
    name = fields.String(required=True, validate=validate.Length(min=1))
    type = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    input_schema = fields.Dict()


class ToolChoice(OpenSchema):
    type = fields.String(required=True, validate=validate.OneOf(("auto", "any", "tool", "none")))
    name = fields.String()
    disable_parallel_tool_use = Boolean()


class Thinking(OpenSchema):
    type = fields.String(required=True, validate=validate.OneOf(("enabled", "disabled", "adaptive")))
    budget_tokens = Integer(validate=validate.Range(min=0))
    display = fields.String(allow_none=True, validate=validate.OneOf(("summarized", "omitted")))


class OutputFormat(OpenSchema):
    type = fields.String(required=True, validate=validate.OneOf(("json_schema",)))
    schema = fields.Dict(required=True)


class OutputConfig(OpenSchema):
    effort = fields.String(allow_none=True)
    format = fields.Nested(OutputFormat, allow_none=True)


class CountTokensRequest(OpenSchema):
    model = fields.String(required=True, validate=validate.Length(min=1))
    messages = fields.List(fields.Nested(Message), required=True)
    system = ContentBlocks({"text": TextBlock()}, allow_none=True)
    tools = fields.List(fields.Nested(Tool), allow_none=True)
    tool_choice = fields.Nested(ToolChoice, allow_none=True)
    thinking = fields.Nested(Thinking, allow_none=True)
    output_config = fields.Nested(OutputConfig, allow_none=True)
    output_format = fields.Nested(OutputFormat, allow_none=True)


class MessagesRequest(CountTokensRequest):
    max_tokens = Integer(required=True, validate=validate.Range(min=1))
    stream = Boolean(allow_none=True)
    stop_sequences = fields.List(fields.String(), allow_none=True)
    temperature = Number(allow_none=True, validate=validate.Range(min=0, max=2))
    top_p = Number(allow_none=True, validate=validate.Range(min=0, max=1))
    top_k = Integer(allow_none=True, validate=validate.Range(min=0))
    metadata = fields.Dict(allow_none=True)
