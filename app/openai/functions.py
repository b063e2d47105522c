"""Function tools as both OpenAI APIs send them: Gemini declarations, the tool choice, call arguments
and the outputs clients send back."""

from __future__ import annotations

from collections.abc import Callable

from .. import jsonx
from ..budget import MAX_JSON_DEPTH
from ..errors import InvalidRequest
from ..translate.json_schema import to_gemini_parameters

# "none" / "auto" / "required" as Gemini's function calling modes.
MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}


def declaration(name: str, description: str | None, parameters: object, *, param: str) -> dict:
    """A Gemini function declaration; `param` names the function's definition in the request."""
    out: dict = {"name": name}
    if description:
        out["description"] = description
    converted = to_gemini_parameters(parameters, param=f"{param}.parameters")
    if converted:
        out["parameters"] = converted
    return out


def restrict(
    declarations: list[dict], names: list[str], mode: str, *, param: str = "tool_choice"
) -> tuple[list[dict], dict]:
    """(declarations, toolConfig) for a choice among named functions: `mode` "required" makes the model
    call one of them, "auto" lets it choose among them or answer."""
    known = {d["name"] for d in declarations}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidRequest(f"{param} names {unknown[0]!r}, which is not among the tools.", param=param)
    if mode == "required":
        return declarations, {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": names}}
    # "auto" among some tools: Gemini restricts names only in ANY mode, so offer just those tools.
    return [d for d in declarations if d["name"] in names], {"functionCallingConfig": {"mode": "AUTO"}}


def arguments(raw: object, param: str) -> dict:
    """A call's `arguments` JSON string as Gemini's `args` object; `param` names the field."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    try:
        args = jsonx.loads(raw) if isinstance(raw, (str, bytes)) else None
    except jsonx.JSONDecodeError:
        raise InvalidRequest("Tool call arguments are not valid JSON.", param=param) from None
    if not isinstance(args, dict):
        raise InvalidRequest("Tool call arguments must be a JSON object.", param=param)
    if jsonx.deeper_than(args, MAX_JSON_DEPTH, raw):
        raise InvalidRequest(
            f"Tool call arguments nest JSON more than {MAX_JSON_DEPTH} levels deep.", param=param
        )
    return args


def response_value(text: str) -> dict:
    """A tool's output as Gemini's `response` object: a JSON object as is, anything else as the result."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = jsonx.loads(stripped)
        except jsonx.JSONDecodeError:
            value = None
        if isinstance(value, dict) and not jsonx.deeper_than(value, MAX_JSON_DEPTH, stripped):
            return value
    return {"result": text}  # not an object, or nested too deep to send on as one: the text as it is


def output_content(
    content: str | list | None, param: str, convert: Callable[[object, str], dict | None]
) -> tuple[str, list[dict]]:
    """(text, media parts) of a tool output given as a string or a list of content parts, each part
    made a Gemini part by `convert(part, param)`. Media go beside the functionResponse, since
    Gemini 2.x takes none inside one."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts, media = [], []
    for j, part in enumerate(content):
        converted = convert(part, f"{param}[{j}]")
        if converted is None:
            continue
        if "text" in converted:
            texts.append(converted["text"])
        else:
            media.append(converted)
    return "\n".join(texts), media


def response_part(
    name: str,
    gemini_id: str | None,
    output: str | list | None,
    param: str,
    convert: Callable[[object, str], dict | None],
) -> tuple[dict, list[dict]]:
    """A tool's output as Gemini's functionResponse part for the call it answers, and the media parts
    that go beside it (see output_content)."""
    text, media = output_content(output, param, convert)
    response: dict = {"name": name, "response": response_value(text)}
    if gemini_id:
        response["id"] = gemini_id
    return {"functionResponse": response}, media
