"""JSON Schema (OpenAI `parameters`, Anthropic `input_schema`) to the OpenAPI-subset Schema that Gemini accepts."""

from __future__ import annotations

import re
from typing import Any

from .. import budget
from ..budget import MAX_SCHEMA_DEPTH

_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
}
# Gemini answers 400 for any other format ("only 'enum' and 'date-time' are supported for STRING type").
_FORMATS = {"STRING": {"enum", "date-time"}, "INTEGER": {"int32", "int64"}, "NUMBER": {"float", "double"}}
# Only the description is carried over: Google's own SDKs strip `title` and refuse `default` for the
# Gemini API, so neither is worth a 400.
_ANNOTATIONS = ("description",)
_BY_TYPE = {
    "STRING": ("minLength", "maxLength", "pattern", "enum", "format"),
    "NUMBER": ("minimum", "maximum", "format"),
    "INTEGER": ("minimum", "maximum", "format"),
    "BOOLEAN": (),
    "ARRAY": ("items", "minItems", "maxItems"),
    "OBJECT": ("properties", "required", "minProperties", "maxProperties"),
}
# Keywords that imply a type when a schema leaves `type` out.
_IMPLIED = (
    ("OBJECT", ("properties", "additionalProperties", "required", "minProperties", "maxProperties")),
    ("ARRAY", ("items", "prefixItems", "minItems", "maxItems")),
    ("STRING", ("minLength", "maxLength", "pattern")),
    ("NUMBER", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")),
)
# Gemini validates patterns with RE2: lookaround and backreferences would fail the whole request.
_NON_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\\k<")
# Models that predate `responseJsonSchema` take the converted OpenAPI-subset schema instead.
_OLD_SCHEMA_MODELS = re.compile(r"^(gemini-1\.|gemini-2\.0|gemma-)")


def json_output(schema: Any, model: str, *, param: str | None = None) -> dict:
    """generationConfig fields for JSON output: the MIME type, and the schema when there is one
    (as JSON Schema, or converted for models that predate `responseJsonSchema`)."""
    out: dict = {"responseMimeType": "application/json"}
    if schema:
        if _OLD_SCHEMA_MODELS.match(model):
            out["responseSchema"] = to_gemini_schema(schema, param=param)
        else:
            out["responseJsonSchema"] = schema
    return out


def to_gemini_schema(schema: Any, *, param: str | None = None) -> dict:
    """Gemini's Schema for a JSON Schema; pure (the input is never changed).

    `$ref`s are inlined (a recursive one is cut where it recurs, as a bare object), nullable unions
    become `nullable`, `const` and enums become string enums (Gemini's enums are strings only; non-string
    enums keep their type and list the allowed values in the description), `allOf` is merged, and keywords
    Gemini refuses are dropped. A schema that allows anything comes out as STRING, the one type that can
    carry any value. 400 (naming `param`) once the request's schemas, inlined, pass MAX_SCHEMA_NODES
    or MAX_SCHEMA_BYTES (app/budget.py): the bound holds across every schema of one request.
    """
    return _Converter(schema, param).convert(schema, 0)


def to_gemini_parameters(schema: Any, *, param: str | None = None) -> dict | None:
    """A function's `parameters`: an OBJECT schema, or None for a function that takes no arguments.

    Gemini wants an OBJECT at the root of a function declaration and has answered 400 for one without
    properties, so a parameterless tool is best sent with `parameters` left out. A root union of objects
    becomes one object with the properties of all (required: those every branch requires).
    """
    if schema is None or schema is True or schema == {}:
        return None
    converted = to_gemini_schema(schema, param=param)
    branches = converted.get("anyOf")
    if branches and all(b.get("type") == "OBJECT" for b in branches):
        required = [
            r for r in branches[0].get("required", []) if all(r in b.get("required", []) for b in branches)
        ]
        united = _merge([{k: v for k, v in b.items() if k != "required"} for b in branches])
        converted = {**united, **_annotations(converted), "type": "OBJECT"}
        converted.pop("anyOf", None)
        if required:
            converted["required"] = required
    if converted.get("type") != "OBJECT" or not converted.get("properties"):
        return None
    converted.pop("nullable", None)
    return converted


def _annotations(schema: dict) -> dict:
    return {k: schema[k] for k in _ANNOTATIONS if k in schema}


class _Converter:
    def __init__(self, root: Any, param: str | None):
        self.root = root
        self.param = param
        self.expanding: list[str] = []  # $refs being inlined, to cut cycles
        self.budget = budget.current()

    # -- entry points ------------------------------------------------------------------

    def convert(self, node: Any, depth: int) -> dict:
        """A complete Gemini schema (always with a type or an anyOf)."""
        return _ensure_type(self._convert(node, depth))

    def _convert(self, node: Any, depth: int) -> dict:
        """A Gemini schema that may still lack a type (its parent may supply one, as in allOf)."""
        self.budget.schema(1, 0, self.param)
        if not isinstance(node, dict) or depth > MAX_SCHEMA_DEPTH:
            return {}  # true, junk, or too deep: anything goes
        if "$ref" in node:
            return self._ref(node, depth)
        if isinstance(node.get("allOf"), list) and node["allOf"]:
            return self._all_of(node, depth)
        for key in ("anyOf", "oneOf"):
            if isinstance(node.get(key), list) and node[key]:
                return self._any_of(node, key, depth)
        if isinstance(node.get("type"), list):
            return self._type_list(node, depth)
        return self._plain(node, depth)

    # -- combinators -------------------------------------------------------------------

    def _ref(self, node: dict, depth: int) -> dict:
        ref = node["$ref"]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target = self._resolve(ref)
        if target is None:
            return self._convert(siblings, depth)  # an external or broken ref: keep what we know
        if ref in self.expanding:
            # The cycle is cut here: the nested value is still typed (an object), only not described again.
            kind = target.get("type")
            cut = {"type": _TYPES.get(kind.lower(), "OBJECT") if isinstance(kind, str) else "OBJECT"}
            described = siblings.get("description", target.get("description"))
            if not isinstance(described, str):
                return cut
            self.budget.schema(0, len(described), self.param)
            return cut | {"description": described}
        self.expanding.append(ref)
        try:
            merged = {**target, **siblings} if isinstance(target, dict) else siblings
            return self._convert(merged, depth + 1)
        finally:
            self.expanding.pop()

    def _resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            return None
        node = self.root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return None
        return node if isinstance(node, dict) else ({} if node is True else None)

    def _all_of(self, node: dict, depth: int) -> dict:
        parts = [self._convert({k: v for k, v in node.items() if k != "allOf"}, depth)]
        parts += [self._convert(branch, depth + 1) for branch in node["allOf"]]
        return _fit(_merge(parts))

    def _any_of(self, node: dict, key: str, depth: int) -> dict:
        base = self._convert({k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}, depth)
        nullable = bool(base.pop("nullable", False))
        annotations = {k: v for k, v in base.items() if k in _ANNOTATIONS}
        body = {k: v for k, v in base.items() if k not in _ANNOTATIONS}
        branches = []
        for branch in node[key]:
            if _is_null(branch):
                nullable = True
            elif _shapes(branch):
                converted = self._convert(branch, depth + 1)
                if converted.pop("nullable", False):
                    nullable = True
                # Keywords beside the anyOf hold for every branch (common properties of a union of objects).
                branches.append(_fit(_merge([converted, body])) if body else converted)
        if not branches:
            # Only nulls, or branches that merely constrain the parent (one of these is required): keep the parent.
            result = base
        elif len(branches) == 1:
            result = {**branches[0], **annotations}
        else:
            result = _merge_enums(branches) or {"anyOf": [_ensure_type(b) for b in branches]}
            result |= annotations
        if nullable:
            result["nullable"] = True
        return result

    def _type_list(self, node: dict, depth: int) -> dict:
        types = [t.lower() for t in node["type"] if isinstance(t, str)]
        rest = {k: v for k, v in node.items() if k != "type"}
        real = [t for t in dict.fromkeys(types) if t != "null"]
        if len(real) == 1:
            result = self._plain({**rest, "type": real[0]}, depth)
        elif not real:
            result = self._plain(rest, depth)
        else:
            annotations = {k: v for k, v in rest.items() if k in _ANNOTATIONS}
            body = {k: v for k, v in rest.items() if k not in _ANNOTATIONS}
            result = {"anyOf": [_ensure_type(self._plain({**body, "type": t}, depth)) for t in real]}
            result |= self._plain(annotations, depth)
        if "null" in types:
            result["nullable"] = True
        return result

    # -- a single schema ---------------------------------------------------------------

    def _plain(self, node: dict, depth: int) -> dict:
        out: dict = {}
        if isinstance(node.get("description"), str):
            out["description"] = node["description"]
            self.budget.schema(0, len(node["description"]), self.param)
        if node.get("nullable") is True:
            out["nullable"] = True
        kind = node["type"].lower() if isinstance(node.get("type"), str) else ""
        gtype = _TYPES.get(kind)
        if kind == "null":
            out["nullable"] = True

        values = None
        if "const" in node:
            values = [node["const"]]
        elif isinstance(node.get("enum"), list):
            values = node["enum"]
        if values is not None:
            if None in values:
                out["nullable"] = True
                values = [v for v in values if v is not None]
            gtype = self._enum(values, gtype, out)

        if gtype is None:
            gtype = _implied_type(node)
        if gtype is None:
            return out
        out["type"] = gtype
        allowed = _BY_TYPE[gtype]
        if gtype == "OBJECT":
            self._object(node, depth, out)
        elif gtype == "ARRAY":
            self._array(node, depth, out)
        elif gtype in ("NUMBER", "INTEGER"):
            for key, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
                value = node.get(key)
                if not _is_number(value) and _is_number(node.get(exclusive)):
                    value = node[exclusive]  # a hair looser than asked, but the closest Gemini can say
                if _is_number(value):
                    out[key] = value
        elif gtype == "STRING":
            for key in ("minLength", "maxLength"):
                if _is_count(node.get(key)):
                    out[key] = node[key]
            pattern = node.get("pattern")
            if isinstance(pattern, str) and not _NON_RE2.search(pattern):
                out["pattern"] = pattern
                self.budget.schema(0, len(pattern), self.param)
        fmt = node.get("format")
        if "format" in allowed and isinstance(fmt, str) and fmt in _FORMATS.get(gtype, ()):
            out.setdefault("format", fmt)
        return out

    def _enum(self, values: list, gtype: str | None, out: dict) -> str | None:
        """Put `values` on `out` as Gemini can take them; returns the type they imply."""
        if not values:
            return gtype
        self.budget.schema(0, sum(len(v) if isinstance(v, str) else 8 for v in values), self.param)
        if all(isinstance(v, str) for v in values) and gtype in (None, "STRING"):
            out["enum"] = list(dict.fromkeys(values))
            return "STRING"
        kinds = {_json_kind(v) for v in values}
        kind = None
        if kinds == {"BOOLEAN"} and gtype in (None, "BOOLEAN"):
            kind = "BOOLEAN"
        elif kinds and kinds <= {"INTEGER", "NUMBER"} and gtype in (None, "INTEGER", "NUMBER"):
            kind = gtype or ("INTEGER" if kinds == {"INTEGER"} else "NUMBER")
        if kind:
            # Gemini takes enums on strings only; a string "1" would break the client's own validation, so
            # the type stays and the model is told the allowed values.
            listed = ", ".join(_json_text(v) for v in values)
            note = f"Allowed values: {listed}." if len(values) > 1 else f"Must be {listed}."
            out["description"] = f"{out['description']}\n{note}" if out.get("description") else note
            return kind
        # Mixed kinds: strings are the one form Gemini can enumerate.
        out["enum"] = list(dict.fromkeys(v if isinstance(v, str) else _json_text(v) for v in values))
        return "STRING"

    def _object(self, node: dict, depth: int, out: dict) -> None:
        props = node.get("properties")
        if isinstance(props, dict):
            converted = {}
            for name, prop in props.items():
                if prop is False:
                    continue  # a property that must not appear
                self.budget.schema(0, len(name), self.param)
                converted[name] = self.convert(prop, depth + 1)
            if converted:
                out["properties"] = converted
            required = node.get("required")
            if isinstance(required, list):
                kept = [r for r in dict.fromkeys(required) if isinstance(r, str) and r in converted]
                if kept:
                    out["required"] = kept
        for key in ("minProperties", "maxProperties"):
            if _is_count(node.get(key)):
                out[key] = node[key]

    def _array(self, node: dict, depth: int, out: dict) -> None:
        items = node.get("items")
        tuple_items = node.get("prefixItems") if isinstance(node.get("prefixItems"), list) else None
        if isinstance(items, list):
            tuple_items = items
        if tuple_items:
            converted = [self.convert(i, depth + 1) for i in tuple_items]
            unique = [c for i, c in enumerate(converted) if c not in converted[:i]]
            out["items"] = unique[0] if len(unique) == 1 else {"anyOf": unique}
        else:
            out["items"] = self.convert(items if isinstance(items, dict) else {}, depth + 1)
        for key in ("minItems", "maxItems"):
            if _is_count(node.get(key)):
                out[key] = node[key]


_COMMON = {"type", "description", "nullable", "anyOf"}


def _fit(schema: dict) -> dict:
    """Drop keywords that do not belong to the schema's type (left over from a merge)."""
    allowed = _BY_TYPE.get(str(schema.get("type")))
    if allowed is None:
        return schema
    return {k: v for k, v in schema.items() if k in _COMMON or k in allowed}


def _ensure_type(schema: dict) -> dict:
    if "type" in schema or "anyOf" in schema:
        return schema
    # Gemini needs a type; STRING is the one that can carry any value (as text).
    return {**schema, "type": "STRING"}


def _implied_type(node: dict) -> str | None:
    for gtype, keys in _IMPLIED:
        if any(k in node for k in keys):
            return gtype
    return None


def _merge(parts: list[dict]) -> dict:
    """Schemas that all hold at once, merged: properties and required united, otherwise the first wins."""
    merged: dict = {}
    for part in parts:
        for key, value in part.items():
            if key == "properties":
                props = merged.setdefault("properties", {})
                for name, prop in value.items():
                    props.setdefault(name, prop)
            elif key == "required":
                seen = merged.setdefault("required", [])
                seen.extend(r for r in value if r not in seen)
            else:
                merged.setdefault(key, value)
    return merged


_SHAPING = ("type", "$ref", "properties", "items", "prefixItems", "enum", "const", "anyOf", "oneOf", "allOf")


def _shapes(branch: Any) -> bool:
    """Whether an anyOf branch gives a shape of its own, rather than only constraining its parent."""
    return isinstance(branch, dict) and any(k in branch for k in _SHAPING)


def _merge_enums(branches: list[dict]) -> dict | None:
    """anyOf of string enums (as zod and TypeScript unions of literals produce) -> one enum."""
    values: list = []
    for b in branches:
        if b.get("type") != "STRING" or "enum" not in b or set(b) - {"type", "enum", "title", "description"}:
            return None
        values.extend(v for v in b["enum"] if v not in values)
    return {"type": "STRING", "enum": values}


def _is_null(branch: Any) -> bool:
    return isinstance(branch, dict) and (
        str(branch.get("type")).lower() == "null"
        or ("const" in branch and branch["const"] is None)
        or branch.get("enum") == [None]
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "NUMBER"
    if isinstance(value, str):
        return "STRING"
    return "OTHER"


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    from .. import jsonx

    return jsonx.dumps(value).decode()
