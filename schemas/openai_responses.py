"""Schemas for the OpenAI Responses API: create, input token counts and compaction.

Input items and tools are checked here for the fields each type needs, so the translator can rely
on them; fields these schemas do not know are accepted as sent (clients send many, and more each month).
"""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate

from . import OpenSchema
from .fields import OPTIONAL, Boolean, Integer, Items, Number

ROLES = ("user", "assistant", "system", "developer")
# Content parts of input messages and of tool outputs, with the string fields each one needs.
CONTENT_PARTS = ("input_text", "output_text", "refusal", "input_image", "input_file")
# Input item type -> its required string fields. Items whose output is a string or a content list
# are checked apart (OUTPUT_ITEMS).
ITEM_FIELDS = {
    "message": ("role",),
    "function_call": ("call_id", "name"),
    "custom_tool_call": ("call_id", "name", "input"),
    "function_call_output": ("call_id",),
    "custom_tool_call_output": ("call_id",),
    "reasoning": (),
    "item_reference": ("id",),
    "compaction": (),
    "compaction_summary": (),
}
OUTPUT_ITEMS = ("function_call_output", "custom_tool_call_output")
# Items a client replays from a conversation with hosted tools: nothing in them reaches Gemini.
SKIPPED_ITEMS = (
    "web_search_call",
    "file_search_call",
    "code_interpreter_call",
    "image_generation_call",
    "tool_search_call",
    "tool_search_output",
    "mcp_list_tools",
)
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = ("auto", "concise", "detailed", "none")


def _string(value: object) -> bool:
    return isinstance(value, str)


def _part_error(part: object) -> dict | list | None:
    if not isinstance(part, dict):
        return ["Each content part must be an object."]
    kind = part.get("type")
    if kind not in CONTENT_PARTS:
        return {"type": [f"Must be one of: {', '.join(CONTENT_PARTS)}."]}
    if kind in ("input_text", "output_text") and not _string(part.get("text")):
        return {"text": ["Not a valid string."]}
    if kind == "refusal" and not _string(part.get("refusal")):
        return {"refusal": ["Not a valid string."]}
    if kind == "input_image" and not (_string(part.get("image_url")) or _string(part.get("file_id"))):
        return {"image_url": ["Needs image_url (a data or http(s) URL) or file_id."]}
    if kind == "input_file" and not any(_string(part.get(k)) for k in ("file_data", "file_url", "file_id")):
        return {"file_data": ["Needs file_data (a data URL or base64), file_url or file_id."]}
    return None


def _content_error(content: object, *, allow_string: bool = True) -> dict | list | None:
    if allow_string and isinstance(content, str):
        return None
    if not isinstance(content, list):
        return ["Must be a string or a list of content parts." if allow_string else "Must be a list."]
    for i, part in enumerate(content):
        error = _part_error(part)
        if error:
            return {i: error}
    return None


def item_error(item: object) -> dict | list | None:
    """What is wrong with one input item, in marshmallow's error shape (None: nothing)."""
    if not isinstance(item, dict):
        return ["Each input item must be an object."]
    kind = item.get("type", "message" if "role" in item else None)
    if kind is not None and not isinstance(kind, str):  # a list or an object cannot be looked up
        return {"type": ["Must be a string."]}
    if kind in SKIPPED_ITEMS:
        return None
    if kind not in ITEM_FIELDS:
        return {"type": [f"Input items of type {kind!r} are not supported here."]}
    for name in ITEM_FIELDS[kind]:
        if not _string(item.get(name)):
            return {name: ["Missing or not a string."]}
    if kind == "message":
        if item["role"] not in ROLES:
            return {"role": [f"Must be one of: {', '.join(ROLES)}."]}
        error = _content_error(item.get("content"))
        return {"content": error} if error else None
    if kind == "function_call":
        if item.get("arguments") is not None and not _string(item["arguments"]):
            return {"arguments": ["Must be a JSON string."]}
    elif kind in OUTPUT_ITEMS:
        error = _content_error(item.get("output"))
        return {"output": error} if error else None
    elif kind == "reasoning":
        if item.get("encrypted_content") is not None and not _string(item["encrypted_content"]):
            return {"encrypted_content": ["Not a valid string."]}
    elif kind in ("compaction", "compaction_summary") and not _string(item.get("encrypted_content")):
        return {"encrypted_content": ["Missing or not a string."]}
    for name in ("namespace", "id"):
        if item.get(name) is not None and not _string(item[name]):
            return {name: ["Not a valid string."]}
    return None


class Input(Items, check=item_error, text=True, expected="Must be a string or a list of input items."):
    """`input`: a string (one user message), or a list of input items."""


def tool_error(tool: object, *, nested: bool = False) -> dict | list | None:
    """What is wrong with one tool (None: nothing). Hosted tools gemgate cannot serve pass here and
    are refused by the translator, which can say why."""
    if not isinstance(tool, dict):
        return ["Each tool must be an object."]
    kind = tool.get("type")
    if not _string(kind):
        return {"type": ["Missing or not a string."]}
    if kind in ("function", "custom", "namespace") and not (_string(tool.get("name")) and tool["name"]):
        return {"name": ["Missing or not a string."]}
    if nested and kind not in ("function", "custom"):
        return {"type": ["A namespace holds function and custom tools only."]}
    if kind == "function":
        if tool.get("parameters") is not None and not isinstance(tool["parameters"], dict):
            return {"parameters": ["Must be a JSON Schema object."]}
    elif kind == "custom":
        fmt = tool.get("format")
        if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in ("text", "grammar")):
            return {"format": {"type": ["Must be 'text' or 'grammar'."]}}
        if fmt and fmt["type"] == "grammar" and not _string(fmt.get("definition")):
            return {"format": {"definition": ["Missing or not a string."]}}
    elif kind == "namespace":
        if not isinstance(tool.get("tools"), list):
            return {"tools": ["Must be a list of function and custom tools."]}
        for i, inner in enumerate(tool["tools"]):
            error = tool_error(inner, nested=True)
            if error:
                return {"tools": {i: error}}
    for name in ("description",):
        if tool.get(name) is not None and not _string(tool[name]):
            return {name: ["Not a valid string."]}
    return None


class Tools(Items, check=tool_error, expected="Must be a list of tools."):
    """`tools`: function, custom and namespace tools, and hosted ones (refused by the translator)."""


class ToolChoice(fields.Field):
    """ "none" | "auto" | "required" | {"type": "function" | "custom", "name"} | allowed_tools |
    {"type": <a hosted tool>}."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if value not in ("none", "auto", "required"):
                raise ValidationError("Must be 'none', 'auto', 'required' or an object naming a tool.")
            return value
        if not isinstance(value, dict) or not _string(value.get("type")):
            raise ValidationError("Must be a string or an object with a type.")
        kind = value["type"]
        if kind in ("function", "custom") and not _string(value.get("name")):
            raise ValidationError({"name": ["Missing tool name."]})
        if kind == "allowed_tools":
            if value.get("mode") not in ("auto", "required"):
                raise ValidationError({"mode": ["Must be 'auto' or 'required'."]})
            if not isinstance(value.get("tools"), list) or not all(
                isinstance(t, dict) for t in value["tools"]
            ):
                raise ValidationError({"tools": ["Must be a list of tools."]})
        return value


class Reasoning(OpenSchema):
    effort = fields.String(validate=validate.OneOf(EFFORTS), **OPTIONAL)
    summary = fields.String(validate=validate.OneOf(SUMMARIES), **OPTIONAL)
    generate_summary = fields.String(validate=validate.OneOf(SUMMARIES), **OPTIONAL)


class TextFormat(OpenSchema):
    type = fields.String(required=True, validate=validate.OneOf(("text", "json_schema", "json_object")))
    name = fields.String(**OPTIONAL)
    schema = fields.Dict(**OPTIONAL)
    description = fields.String(**OPTIONAL)
    strict = Boolean(**OPTIONAL)


class Text(OpenSchema):
    format = fields.Nested(TextFormat, **OPTIONAL)
    verbosity = fields.String(validate=validate.OneOf(("low", "medium", "high")), **OPTIONAL)


class _Prompt(OpenSchema):
    """What every Responses request that reads a conversation shares."""

    input = Input(**OPTIONAL)
    instructions = fields.String(**OPTIONAL)
    previous_response_id = fields.String(validate=validate.Length(min=1), **OPTIONAL)
    tools = Tools(**OPTIONAL)
    tool_choice = ToolChoice(**OPTIONAL)
    parallel_tool_calls = Boolean(**OPTIONAL)
    reasoning = fields.Nested(Reasoning, **OPTIONAL)
    text = fields.Nested(Text, **OPTIONAL)


class ResponseCreateRequest(_Prompt):
    model = fields.String(required=True, validate=validate.Length(min=1))
    stream = Boolean(**OPTIONAL)
    store = Boolean(**OPTIONAL)
    background = Boolean(**OPTIONAL)
    include = fields.List(fields.String(), **OPTIONAL)
    max_output_tokens = Integer(validate=validate.Range(min=1), **OPTIONAL)
    max_tool_calls = Integer(validate=validate.Range(min=1), **OPTIONAL)
    temperature = Number(validate=validate.Range(min=0, max=2), **OPTIONAL)
    top_p = Number(validate=validate.Range(min=0, max=1), **OPTIONAL)
    top_logprobs = Integer(validate=validate.Range(min=0, max=20), **OPTIONAL)
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), **OPTIONAL)
    user = fields.String(**OPTIONAL)
    safety_identifier = fields.String(**OPTIONAL)
    prompt_cache_key = fields.String(**OPTIONAL)
    truncation = fields.String(validate=validate.OneOf(("auto", "disabled")), **OPTIONAL)
    service_tier = fields.String(**OPTIONAL)
    stream_options = fields.Dict(**OPTIONAL)


class InputTokensRequest(_Prompt):
    # OpenAI's own count takes no model; Gemini counts per model, so gemgate needs one.
    model = fields.String(required=True, validate=validate.Length(min=1))
    truncation = fields.String(validate=validate.OneOf(("auto", "disabled")), **OPTIONAL)


class CompactRequest(_Prompt):
    model = fields.String(required=True, validate=validate.Length(min=1))
