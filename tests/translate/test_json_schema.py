import copy
import json

import pytest

from app.errors import InvalidRequest
from app.translate.json_schema import to_gemini_parameters, to_gemini_schema

# Person.model_json_schema() from pydantic 2 (a self-recursive model with Optional, IntEnum and Literal fields).
PYDANTIC_PERSON = json.loads(
    """{"$defs": {"Address": {"properties": {"street": {"title": "Street", "type": "string"}, "city": {"title":
    "City", "type": "string"}, "zip": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null,
    "title": "Zip"}}, "required": ["street", "city"], "title": "Address", "type": "object"}, "Person":
    {"description": "A person to contact.", "properties": {"name": {"description": "Full name", "title": "Name",
    "type": "string"}, "email": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null, "format":
    "email", "title": "Email"}, "address": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}], "default":
    null}, "tags": {"default": [], "items": {"type": "string"}, "title": "Tags", "type": "array"}, "priority":
    {"$ref": "#/$defs/Priority", "default": 2}, "kind": {"default": "friend", "enum": ["friend", "work"],
    "title": "Kind", "type": "string"}, "manager": {"anyOf": [{"$ref": "#/$defs/Person"}, {"type": "null"}],
    "default": null}}, "required": ["name"], "title": "Person", "type": "object"}, "Priority": {"enum": [1, 2,
    3], "title": "Priority", "type": "integer"}}, "$ref": "#/$defs/Person"}"""
)

# The MCP filesystem server's edit_file input schema (zod-to-json-schema output).
MCP_EDIT_FILE = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "edits": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "oldText": {"type": "string", "description": "Text to search for - must match exactly"},
                    "newText": {"type": "string", "description": "Text to replace with"},
                },
                "required": ["oldText", "newText"],
                "additionalProperties": False,
            },
        },
        "dryRun": {
            "type": "boolean",
            "default": False,
            "description": "Preview changes using git-style diff format",
        },
    },
    "required": ["path", "edits"],
    "additionalProperties": False,
    "$schema": "http://json-schema.org/draft-07/schema#",
}

# Playwright MCP's browser_click: a property named `ref`, required.
MCP_BROWSER_CLICK = {
    "type": "object",
    "properties": {
        "element": {"type": "string", "description": "Human-readable element description"},
        "ref": {"type": "string", "description": "Exact target element reference from the page snapshot"},
        "doubleClick": {"type": "boolean"},
        "button": {"type": "string", "enum": ["left", "right", "middle"]},
    },
    "required": ["element", "ref"],
    "additionalProperties": False,
    "$schema": "http://json-schema.org/draft-07/schema#",
}


def test_pydantic_recursive_model():
    out = to_gemini_parameters(PYDANTIC_PERSON)
    assert out["type"] == "OBJECT"
    assert out["description"] == "A person to contact."
    assert out["required"] == ["name"]
    props = out["properties"]
    assert props["name"] == {"description": "Full name", "type": "STRING"}
    # Optional[str] with a format Gemini refuses: nullable string, no format.
    assert props["email"] == {"type": "STRING", "nullable": True}
    # Optional[Address]: the $ref inlined, nullable.
    assert props["address"]["type"] == "OBJECT" and props["address"]["nullable"] is True
    assert set(props["address"]["properties"]) == {"street", "city", "zip"}
    assert props["address"]["required"] == ["street", "city"]
    assert props["address"]["properties"]["zip"] == {"type": "STRING", "nullable": True}
    assert props["tags"] == {"type": "ARRAY", "items": {"type": "STRING"}}
    # IntEnum: integers stay integers, the values are listed for the model.
    assert props["priority"] == {"type": "INTEGER", "description": "Allowed values: 1, 2, 3."}
    assert props["kind"] == {"type": "STRING", "enum": ["friend", "work"]}
    # The recursion is cut cleanly where Person recurs.
    assert props["manager"] == {"type": "OBJECT", "description": "A person to contact.", "nullable": True}
    assert "$defs" not in json.dumps(out) and "$ref" not in json.dumps(out)


def test_mcp_schema():
    out = to_gemini_parameters(MCP_EDIT_FILE)
    assert out == {
        "type": "OBJECT",
        "properties": {
            "path": {"type": "STRING"},
            "edits": {
                "type": "ARRAY",
                "items": {
                    "type": "OBJECT",
                    "properties": {
                        "oldText": {
                            "type": "STRING",
                            "description": "Text to search for - must match exactly",
                        },
                        "newText": {"type": "STRING", "description": "Text to replace with"},
                    },
                    "required": ["oldText", "newText"],
                },
            },
            "dryRun": {"type": "BOOLEAN", "description": "Preview changes using git-style diff format"},
        },
        "required": ["path", "edits"],
    }


def test_property_named_ref_survives():
    out = to_gemini_schema(MCP_BROWSER_CLICK)
    assert list(out["properties"]) == ["element", "ref", "doubleClick", "button"]
    assert out["properties"]["ref"]["type"] == "STRING"
    assert out["required"] == ["element", "ref"]
    assert out["properties"]["button"] == {"type": "STRING", "enum": ["left", "right", "middle"]}


def test_property_names_that_look_like_keywords_survive():
    keywordish = [
        "ref",
        "type",
        "format",
        "title",
        "description",
        "enum",
        "items",
        "properties",
        "required",
        "default",
        "additionalProperties",
        "$schema",
        "anyOf",
        "const",
        "examples",
    ]
    schema = {
        "type": "object",
        "properties": {name: {"type": "string"} for name in keywordish},
        "required": keywordish,
    }
    out = to_gemini_schema(schema)
    assert list(out["properties"]) == keywordish
    assert all(p == {"type": "STRING"} for p in out["properties"].values())
    assert out["required"] == keywordish


def test_claude_code_bash_tool_with_a_property_named_description():
    schema = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command to execute"},
            "timeout": {"type": "number", "description": "Optional timeout in milliseconds (max 600000)"},
            "description": {
                "type": "string",
                "description": "Clear, concise description of what this command does",
            },
        },
        "required": ["command"],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }
    out = to_gemini_schema(schema)
    assert "description" not in out  # the object itself has none
    assert out["properties"]["description"]["type"] == "STRING"


def test_nested_defs_and_definitions():
    schema = {
        "type": "object",
        "properties": {"order": {"$ref": "#/definitions/Order"}},
        "definitions": {
            "Order": {
                "type": "object",
                "properties": {"lines": {"type": "array", "items": {"$ref": "#/definitions/Line"}}},
            },
            "Line": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
                "required": ["sku"],
            },
        },
    }
    out = to_gemini_schema(schema)
    line = out["properties"]["order"]["properties"]["lines"]["items"]
    assert line == {
        "type": "OBJECT",
        "properties": {"sku": {"type": "STRING"}, "qty": {"type": "INTEGER", "minimum": 1}},
        "required": ["sku"],
    }


def test_ref_siblings_override_the_definition():
    schema = {
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/P", "description": "the field"}},
        "$defs": {"P": {"type": "string", "description": "the type"}},
    }
    assert to_gemini_schema(schema)["properties"]["p"] == {"description": "the field", "type": "STRING"}


def test_json_pointer_refs_as_zod_to_json_schema_writes_them():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"x": {"type": "string", "enum": ["u", "v"]}}},
            "b": {"$ref": "#/properties/a"},
        },
    }
    out = to_gemini_schema(schema)
    assert out["properties"]["b"] == out["properties"]["a"]


def test_root_recursion():
    schema = {
        "type": "object",
        "description": "tree",
        "properties": {"value": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
    }
    out = to_gemini_schema(schema)
    child = out["properties"]["children"]["items"]
    assert child["type"] == "OBJECT" and child["properties"]["value"] == {"type": "STRING"}
    assert child["properties"]["children"]["items"] == {"type": "OBJECT", "description": "tree"}


def test_mutual_recursion_terminates():
    schema = {
        "$defs": {
            "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}},
            "B": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}},
        },
        "$ref": "#/$defs/A",
    }
    out = to_gemini_schema(schema)
    assert out["properties"]["b"]["properties"]["a"] == {"type": "OBJECT"}


def test_unresolvable_ref_keeps_the_rest():
    schema = {
        "type": "object",
        "properties": {
            "x": {"$ref": "https://example.com/s.json", "description": "d"},
            "y": {"$ref": "#/$defs/Missing"},
        },
    }
    out = to_gemini_schema(schema)
    assert out["properties"]["x"] == {"description": "d", "type": "STRING"}
    assert out["properties"]["y"] == {"type": "STRING"}


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({"type": ["string", "null"]}, {"type": "STRING", "nullable": True}),
        ({"type": ["null", "integer"], "minimum": 0}, {"type": "INTEGER", "minimum": 0, "nullable": True}),
        ({"anyOf": [{"type": "number"}, {"type": "null"}]}, {"type": "NUMBER", "nullable": True}),
        (
            {"oneOf": [{"type": "null"}, {"type": "boolean"}], "description": "d"},
            {"type": "BOOLEAN", "description": "d", "nullable": True},
        ),
        ({"type": "string", "nullable": True}, {"type": "STRING", "nullable": True}),
        ({"type": "null"}, {"type": "STRING", "nullable": True}),
    ],
)
def test_nullable_unions(schema, expected):
    assert to_gemini_schema(schema) == expected


def test_real_unions_stay_any_of():
    out = to_gemini_schema(
        {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}], "description": "id"}
    )
    assert out == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}], "description": "id", "nullable": True}
    out = to_gemini_schema({"type": ["string", "array"], "items": {"type": "string"}})
    assert out == {"anyOf": [{"type": "STRING"}, {"type": "ARRAY", "items": {"type": "STRING"}}]}


def test_discriminated_union_of_models():
    schema = {
        "type": "object",
        "properties": {
            "pet": {
                "oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}],
                "discriminator": {"propertyName": "kind"},
            }
        },
        "$defs": {
            "Cat": {"type": "object", "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}}},
            "Dog": {"type": "object", "properties": {"kind": {"const": "dog"}, "bark": {"type": "boolean"}}},
        },
    }
    pet = to_gemini_schema(schema)["properties"]["pet"]
    assert [b["properties"]["kind"] for b in pet["anyOf"]] == [
        {"type": "STRING", "enum": ["cat"]},
        {"type": "STRING", "enum": ["dog"]},
    ]
    assert "discriminator" not in json.dumps(pet)


def test_union_of_string_literals_is_one_enum():
    out = to_gemini_schema(
        {"anyOf": [{"type": "string", "const": "a"}, {"type": "string", "const": "b"}, {"const": "c"}]}
    )
    assert out == {"type": "STRING", "enum": ["a", "b", "c"]}


def test_any_of_that_only_constrains_the_parent_is_dropped():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
    }
    assert to_gemini_schema(schema) == {
        "type": "OBJECT",
        "properties": {"a": {"type": "STRING"}, "b": {"type": "STRING"}},
    }


def test_properties_beside_one_of_hold_for_each_branch():
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}},
        "oneOf": [{"properties": {"x": {"type": "number"}}}, {"properties": {"y": {"type": "number"}}}],
    }
    out = to_gemini_schema(schema)
    assert [sorted(b["properties"]) for b in out["anyOf"]] == [["id", "x"], ["id", "y"]]
    assert all(b["type"] == "OBJECT" for b in out["anyOf"])


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({"const": "fixed"}, {"type": "STRING", "enum": ["fixed"]}),
        ({"type": "string", "const": "fixed"}, {"type": "STRING", "enum": ["fixed"]}),
        ({"enum": ["a", "b", "a"]}, {"type": "STRING", "enum": ["a", "b"]}),
        (
            {"type": "integer", "enum": [0, 90, 180]},
            {"type": "INTEGER", "description": "Allowed values: 0, 90, 180."},
        ),
        ({"enum": [1, 2]}, {"type": "INTEGER", "description": "Allowed values: 1, 2."}),
        ({"type": "number", "enum": [0.5, 1]}, {"type": "NUMBER", "description": "Allowed values: 0.5, 1."}),
        (
            {"const": True, "description": "Must confirm."},
            {"type": "BOOLEAN", "description": "Must confirm.\nMust be true."},
        ),
        ({"const": 3}, {"type": "INTEGER", "description": "Must be 3."}),
        ({"enum": ["auto", 1, False]}, {"type": "STRING", "enum": ["auto", "1", "false"]}),
        ({"enum": ["a", None]}, {"type": "STRING", "enum": ["a"], "nullable": True}),
        (
            {"type": ["string", "null"], "enum": ["x", "y", None]},
            {"type": "STRING", "enum": ["x", "y"], "nullable": True},
        ),
    ],
)
def test_const_and_enums(schema, expected):
    assert to_gemini_schema(schema) == expected


def test_enums_are_always_strings():
    schemas = [
        {"enum": [1, 2]},
        {"enum": ["a", 2.5, None]},
        {"const": 7},
        {"type": "boolean", "enum": [True]},
    ]
    for schema in schemas:
        out = to_gemini_schema(schema)
        assert all(isinstance(v, str) for v in out.get("enum", [])), out
        assert "enum" not in out or out["type"] == "STRING"


def test_all_of_is_merged():
    schema = {
        "allOf": [
            {"$ref": "#/$defs/Base"},
            {"type": "object", "properties": {"extra": {"type": "boolean"}}, "required": ["extra"]},
        ],
        "description": "merged",
        "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
    }
    assert to_gemini_schema(schema) == {
        "description": "merged",
        "type": "OBJECT",
        "properties": {"id": {"type": "STRING"}, "extra": {"type": "BOOLEAN"}},
        "required": ["id", "extra"],
    }


def test_pydantic_v1_style_single_all_of_ref():
    schema = {
        "type": "object",
        "properties": {"color": {"allOf": [{"$ref": "#/definitions/Color"}], "description": "c"}},
        "definitions": {"Color": {"title": "Color", "enum": ["red", "green"], "type": "string"}},
    }
    assert to_gemini_schema(schema)["properties"]["color"] == {
        "description": "c",
        "type": "STRING",
        "enum": ["red", "green"],
    }


def test_unsupported_keywords_are_dropped():
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "x",
        "title": "T",
        "examples": [{}],
        "type": "object",
        "additionalProperties": {"type": "string"},
        "patternProperties": {"^x": {}},
        "properties": {
            "s": {
                "type": "string",
                "format": "email",
                "minLength": 1,
                "maxLength": 9,
                "pattern": "^[a-z]+$",
                "contentEncoding": "base64",
                "default": "a",
                "examples": ["b"],
                "readOnly": True,
            },
            "n": {
                "type": "integer",
                "format": "int64",
                "minimum": 1,
                "exclusiveMaximum": 10,
                "multipleOf": 2,
            },
            "f": {"type": "number", "format": "percent", "exclusiveMinimum": 0},
            "d": {"type": "string", "format": "date-time"},
            "a": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": 3,
                "uniqueItems": True,
            },
            "o": {
                "type": "object",
                "properties": {"k": {"type": "string"}},
                "minProperties": 1,
                "unevaluatedProperties": False,
            },
        },
        "dependentRequired": {"s": ["n"]},
        "if": {},
        "then": {},
        "else": {},
        "not": {},
    }
    assert to_gemini_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "s": {"type": "STRING", "minLength": 1, "maxLength": 9, "pattern": "^[a-z]+$"},
            "n": {"type": "INTEGER", "minimum": 1, "maximum": 10, "format": "int64"},
            "f": {"type": "NUMBER", "minimum": 0},
            "d": {"type": "STRING", "format": "date-time"},
            "a": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1, "maxItems": 3},
            "o": {"type": "OBJECT", "properties": {"k": {"type": "STRING"}}, "minProperties": 1},
        },
    }


def test_patterns_gemini_cannot_compile_are_dropped():
    assert "pattern" not in to_gemini_schema({"type": "string", "pattern": "^(?!admin).*$"})
    assert "pattern" not in to_gemini_schema({"type": "string", "pattern": r"(a)\1"})
    assert to_gemini_schema({"type": "string", "pattern": r"^\d{3}$"})["pattern"] == r"^\d{3}$"


def test_required_names_only_defined_properties():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "gone": False},
        "required": ["a", "b", "gone", "a"],
    }
    assert to_gemini_schema(schema) == {
        "type": "OBJECT",
        "properties": {"a": {"type": "STRING"}},
        "required": ["a"],
    }


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({}, {"type": "STRING"}),
        (True, {"type": "STRING"}),
        ({"description": "anything"}, {"description": "anything", "type": "STRING"}),
        (
            {"properties": {"a": {"type": "string"}}},
            {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
        ),
        ({"items": {"type": "integer"}}, {"type": "ARRAY", "items": {"type": "INTEGER"}}),
        ({"maxLength": 3}, {"type": "STRING", "maxLength": 3}),
        ({"minimum": 0}, {"type": "NUMBER", "minimum": 0}),
        ({"type": "object"}, {"type": "OBJECT"}),
        ({"type": "object", "additionalProperties": {"type": "number"}}, {"type": "OBJECT"}),
        ({"type": "array"}, {"type": "ARRAY", "items": {"type": "STRING"}}),
        ({"type": "array", "items": {}}, {"type": "ARRAY", "items": {"type": "STRING"}}),
        (
            {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}]},
            {"type": "ARRAY", "items": {"type": "NUMBER"}},
        ),
        (
            {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
            {"type": "ARRAY", "items": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}},
        ),
        ({"type": "wat"}, {"type": "STRING"}),
        ("not a schema", {"type": "STRING"}),
    ],
)
def test_schemas_without_a_usable_type_still_get_one(schema, expected):
    assert to_gemini_schema(schema) == expected


@pytest.mark.parametrize(
    "schema",
    [
        None,
        {},
        True,
        {"type": "object"},
        {"type": "object", "properties": {}},
        {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
    ],
)
def test_parameterless_functions_have_no_parameters(schema):
    assert to_gemini_parameters(schema) is None


def test_parameters_from_a_root_union_of_objects():
    schema = {
        "anyOf": [
            {
                "type": "object",
                "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
                "required": ["q", "n"],
            },
            {
                "type": "object",
                "properties": {"q": {"type": "string"}, "url": {"type": "string"}},
                "required": ["q"],
            },
        ]
    }
    assert to_gemini_parameters(schema) == {
        "type": "OBJECT",
        "properties": {"q": {"type": "STRING"}, "n": {"type": "INTEGER"}, "url": {"type": "STRING"}},
        "required": ["q"],
    }


def test_the_input_is_never_mutated():
    for schema in (PYDANTIC_PERSON, MCP_EDIT_FILE, MCP_BROWSER_CLICK):
        before = copy.deepcopy(schema)
        to_gemini_schema(schema)
        to_gemini_parameters(schema)
        assert schema == before


def test_output_shares_nothing_with_the_input():
    schema = {"type": "object", "properties": {"e": {"type": "string", "enum": ["a"]}}, "required": ["e"]}
    out = to_gemini_schema(schema)
    out["properties"]["e"]["enum"].append("z")
    out["required"].append("z")
    assert schema == {
        "type": "object",
        "properties": {"e": {"type": "string", "enum": ["a"]}},
        "required": ["e"],
    }


def test_deep_nesting_is_cut_not_a_crash():
    schema: dict = {"type": "string"}
    for _ in range(3000):
        schema = {"type": "object", "properties": {"x": schema}}
    out = to_gemini_schema(schema)
    depth = 0
    while "properties" in out:
        out = out["properties"]["x"]
        depth += 1
    assert 10 < depth < 100


def test_exponential_ref_expansion_is_a_400():
    defs = {"D0": {"type": "string"}}
    for i in range(1, 30):
        defs[f"D{i}"] = {
            "type": "object",
            "properties": {"a": {"$ref": f"#/$defs/D{i - 1}"}, "b": {"$ref": f"#/$defs/D{i - 1}"}},
        }
    with pytest.raises(InvalidRequest) as exc:
        to_gemini_schema({"$ref": "#/$defs/D29", "$defs": defs}, param="tools[0].function.parameters")
    assert exc.value.param == "tools[0].function.parameters"


def test_gemini_style_upper_case_types_are_understood():
    schema = {
        "type": "OBJECT",
        "properties": {
            "n": {"type": "INTEGER"},
            "s": {"type": ["STRING", "NULL"]},
            "o": {"anyOf": [{"type": "NUMBER"}, {"type": "NULL"}]},
        },
    }
    assert to_gemini_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "n": {"type": "INTEGER"},
            "s": {"type": "STRING", "nullable": True},
            "o": {"type": "NUMBER", "nullable": True},
        },
    }
