"""Messages requests -> Gemini requests, on plain dicts."""

import base64

import pytest

from app.anthropic import ids
from app.anthropic.to_gemini import count_tokens_request, generate_request, options
from app.errors import InvalidRequest
from app.translate.directives import parse_model_name
from app.translate.finalize import finalize
from app.translate.signatures import BYPASS_SIGNATURE

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
PDF = base64.b64encode(b"%PDF-1.7\n...").decode()


def no_fetch(url, *, param):
    raise AssertionError(f"unexpected fetch of {url}")


def build(body=None, model="gemini-2.5-flash", fetch=no_fetch, **fields):
    body = dict(body or {"messages": [{"role": "user", "content": "Hi"}]}, **fields)
    body.setdefault("model", model)
    body.setdefault("max_tokens", 100)
    return generate_request(body, parse_model_name(body["model"]), fetch=fetch)


def user(*blocks):
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks):
    return {"role": "assistant", "content": list(blocks)}


def tool_use(tool_id, name="lookup", **args):
    return {"type": "tool_use", "id": tool_id, "name": name, "input": args}


def result(tool_id, content="ok", **extra):
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content, **extra}


# -- prompt ----------------------------------------------------------------------------


def test_minimal_request():
    assert build() == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {"maxOutputTokens": 100},
    }


def test_system_as_string_blocks_and_system_messages():
    request = build(
        {
            "system": [
                {"type": "text", "text": "One.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Two."},
            ],
            "messages": [{"role": "system", "content": "Three."}, {"role": "user", "content": "Hi"}],
        }
    )
    assert request["systemInstruction"] == {"parts": [{"text": "One."}, {"text": "Two."}, {"text": "Three."}]}
    assert build({"system": "S", "messages": [{"role": "user", "content": "x"}]})["systemInstruction"] == {
        "parts": [{"text": "S"}]
    }


def test_roles_and_merged_consecutive_turns():
    request = build(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
                {"role": "assistant", "content": "c"},
                {"role": "user", "content": ""},
                {"role": "user", "content": "d"},
            ]
        }
    )
    assert request["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}]},
        {"role": "user", "parts": [{"text": "d"}]},
    ]


def test_no_content_at_all_is_a_400():
    with pytest.raises(InvalidRequest) as err:
        build({"messages": [{"role": "user", "content": ""}]})
    assert err.value.param == "messages"


def test_unknown_fields_are_ignored():
    request = build(
        metadata={"user_id": "u"},
        service_tier="auto",
        context_management={"edits": []},
        cache_control={"type": "ephemeral"},
    )
    assert set(request) == {"contents", "generationConfig"}


def test_sampling_settings_and_stop_sequences():
    request = build(temperature=0.5, top_p=0.8, top_k=40, stop_sequences=["END", ""])
    # Up to five stop sequences go to Gemini, which stops generating there (the answer ends as end_turn).
    assert request["generationConfig"] == {
        "maxOutputTokens": 100,
        "temperature": 0.5,
        "topP": 0.8,
        "topK": 40,
        "stopSequences": ["END"],
    }
    assert options({"stop_sequences": ["END", ""]})["stop_sequences"] == []


def test_more_than_five_stop_sequences_are_applied_by_the_gateway():
    six = [f"STOP{i}" for i in range(6)]
    request = build(stop_sequences=six)
    # The gateway scans the text and can say which one matched; Gemini takes at most five.
    assert "stopSequences" not in request["generationConfig"]
    assert options({"stop_sequences": six})["stop_sequences"] == six


# -- media -----------------------------------------------------------------------------


def test_images_base64_and_url():
    seen = []

    def fetch(url, *, param):
        seen.append((url, param))
        return {"mimeType": "image/webp", "data": "UklGRg=="}

    request = build(
        {
            "messages": [
                user(
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.webp"}},
                )
            ]
        },
        fetch=fetch,
    )
    assert request["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": PNG}},  # the bytes win over the label
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
    ]
    assert seen == [("https://example.com/cat.webp", "messages[0].content[1].source.url")]


@pytest.mark.parametrize(
    "source, param",
    [
        (
            {"type": "base64", "media_type": "image/png", "data": "%%%not base64"},
            "messages[0].content[0].source.data",
        ),
        ({"type": "base64", "media_type": "image/png"}, "messages[0].content[0].source.data"),
        ({"type": "file", "file_id": "file_011"}, "messages[0].content[0].source.type"),
        ({"type": "url"}, "messages[0].content[0].source.url"),
    ],
)
def test_bad_image_sources_name_the_field(source, param):
    with pytest.raises(InvalidRequest) as err:
        build({"messages": [user({"type": "image", "source": source})]})
    assert err.value.param == param


def test_documents():
    request = build(
        {
            "messages": [
                user(
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        "title": "Q3",
                        "context": "Quarterly numbers",
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "Plain text."},
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "content",
                            "content": [
                                {"type": "text", "text": "Chunk one"},
                                {
                                    "type": "image",
                                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                                },
                            ],
                        },
                    },
                    {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                )
            ]
        },
        fetch=lambda url, *, param: {"mimeType": "application/pdf", "data": PDF},
    )
    assert request["contents"][0]["parts"] == [
        {"text": "Q3\nQuarterly numbers"},
        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
        {"text": "Plain text."},
        {"text": "Chunk one"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
    ]


def test_search_results_and_server_tool_artifacts():
    request = build(
        {
            "messages": [
                user(
                    {
                        "type": "search_result",
                        "source": "https://x.test",
                        "title": "X",
                        "content": [{"type": "text", "text": "fact"}],
                    }
                ),
                assistant(
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "text", "text": "Found it."},
                ),
            ]
        }
    )
    assert request["contents"] == [
        {"role": "user", "parts": [{"text": "X\nhttps://x.test\nfact"}]},
        {"role": "model", "parts": [{"text": "Found it."}]},
    ]


# -- tools in history, and thought signatures --------------------------------------------


def test_tool_use_and_results_with_signatures_restored():
    sig = "c2lnbmF0dXJlLW9uZQ=="
    first, second = ids.tool_use_id("g-1", sig), ids.tool_use_id("g-2")
    request = build(
        {
            "messages": [
                user({"type": "text", "text": "Weather in Paris and Rome?"}),
                assistant(
                    {
                        "type": "thinking",
                        "thinking": "I should look both up.",
                        "signature": ids.thinking_signature(sig),
                    },
                    {"type": "text", "text": "Checking."},
                    tool_use(first, city="Paris"),
                    tool_use(second, city="Rome"),
                ),
                user(
                    result(first, "18C"),
                    result(second, [{"type": "text", "text": "21C"}], is_error=True),
                    {"type": "text", "text": "Thanks"},
                ),
            ]
        }
    )
    model, results = request["contents"][1:]
    assert model["parts"] == [
        {"text": "Checking."},  # the signature is the call's own: not also put on the text
        {"functionCall": {"name": "lookup", "args": {"city": "Paris"}, "id": "g-1"}, "thoughtSignature": sig},
        {"functionCall": {"name": "lookup", "args": {"city": "Rome"}, "id": "g-2"}},
    ]
    assert results["parts"] == [
        {"functionResponse": {"name": "lookup", "response": {"output": "18C"}, "id": "g-1"}},
        {"functionResponse": {"name": "lookup", "response": {"error": "21C"}, "id": "g-2"}},
        {"text": "Thanks"},
    ]


def test_a_thinking_signature_goes_to_the_part_after_it():
    sig = "dGV4dC1zaWduYXR1cmU="
    request = build(
        {
            "messages": [
                user({"type": "text", "text": "q"}),
                assistant(
                    {"type": "thinking", "thinking": "", "signature": ids.thinking_signature(sig)},
                    {"type": "text", "text": "answer"},
                ),
                user({"type": "text", "text": "more"}),
                # Anthropic's own signature, from a conversation that began on Claude: never sent to Gemini.
                assistant(
                    {"type": "thinking", "thinking": "hm", "signature": "EvMCCkYICxgCKkCHP2cS"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                    {"type": "text", "text": "again"},
                ),
            ]
        }
    )
    assert request["contents"][1]["parts"] == [{"text": "answer", "thoughtSignature": sig}]
    assert request["contents"][3]["parts"] == [{"text": "again"}]


def test_a_thinking_signature_reaches_a_call_whose_id_lost_it():
    sig = "Y2FsbC1zaWduYXR1cmU="
    request = build(
        {
            "messages": [
                user({"type": "text", "text": "q"}),
                assistant(
                    {"type": "thinking", "thinking": "", "signature": ids.thinking_signature(sig)},
                    tool_use("toolu_rewritten_by_client"),
                ),
                user(result("toolu_rewritten_by_client")),
            ]
        }
    )
    assert request["contents"][1]["parts"] == [
        {"functionCall": {"name": "lookup", "args": {}}, "thoughtSignature": sig}
    ]


def test_gemini3_calls_without_a_signature_get_googles_stand_in():
    history = {
        "messages": [
            user({"type": "text", "text": "q"}),
            assistant(
                {"type": "text", "text": "Let me check."}, tool_use("toolu_01A"), tool_use("toolu_01B")
            ),
            user(result("toolu_01A"), result("toolu_01B")),
        ]
    }
    for model in ("gemini-3-pro-preview", "gemini-2.5-flash"):  # 2.5 accepts the stand-in too
        parts = build(history, model=model)["contents"][1]["parts"]
        assert parts[1]["thoughtSignature"] == BYPASS_SIGNATURE and "thoughtSignature" not in parts[2]


def test_images_in_tool_results():
    history = {
        "messages": [
            user({"type": "text", "text": "Take a screenshot"}),
            assistant(tool_use("toolu_01S", "screenshot")),
            user(
                result(
                    "toolu_01S",
                    [
                        {"type": "text", "text": "here"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                    ],
                )
            ),
        ]
    }
    image = {"inlineData": {"mimeType": "image/png", "data": PNG}}
    gemini3 = build(history, model="gemini-3-flash-preview")["contents"][2]["parts"]
    assert gemini3 == [
        {"functionResponse": {"name": "screenshot", "response": {"output": "here"}, "parts": [image]}}
    ]
    gemini25 = build(history)["contents"][2]["parts"]  # 2.5 takes no media in a function response
    assert gemini25 == [{"functionResponse": {"name": "screenshot", "response": {"output": "here"}}}, image]


@pytest.mark.parametrize(
    "messages, param",
    [
        ([user(result("toolu_unknown"))], "messages[0].content[0].tool_use_id"),
        (
            [user({"type": "text", "text": "x"}), assistant(tool_use("toolu_1")), user(tool_use("toolu_2"))],
            "messages[2].content[0].type",
        ),
        ([user({"type": "text", "text": "x"}), assistant(result("toolu_1"))], "messages[1].content[0].type"),
    ],
)
def test_misplaced_tool_blocks_name_the_field(messages, param):
    with pytest.raises(InvalidRequest) as err:
        build({"messages": messages})
    assert err.value.param == param


# -- tools and tool_choice ---------------------------------------------------------------


def test_tools_become_function_declarations_and_builtins():
    request = build(
        tools=[
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "cache_control": {"type": "ephemeral"},
                "input_schema": {
                    "type": "object",
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            },
            {"name": "now", "input_schema": {"type": "object", "properties": {}}},
            {"type": "custom", "name": "noop", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "web_fetch_20250910", "name": "web_fetch"},
            {"type": "code_execution_20250825", "name": "code_execution"},
            {"type": "web_search_20260101", "name": "web_search_2"},
        ]
    )
    declarations = request["tools"][0]["functionDeclarations"]
    assert declarations[0]["name"] == "get_weather" and declarations[0]["description"] == "Weather for a city"
    assert declarations[0]["parameters"]["type"] == "OBJECT"
    assert declarations[0]["parameters"]["required"] == ["city"]
    assert "additionalProperties" not in declarations[0]["parameters"]
    assert declarations[1:] == [{"name": "now"}, {"name": "noop"}]  # no parameters: left out, as Gemini wants
    assert request["tools"][1:] == [{"googleSearch": {}}, {"urlContext": {}}, {"codeExecution": {}}]


def test_an_unsupported_anthropic_tool_type_is_a_400():
    with pytest.raises(InvalidRequest) as err:
        build(tools=[{"type": "bash_20250124", "name": "bash"}])
    assert err.value.param == "tools[0].type"
    # ...unless it brings its own schema.
    request = build(
        tools=[
            {
                "type": "mcp_like_tool",
                "name": "t",
                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            }
        ]
    )
    assert request["tools"][0]["functionDeclarations"][0]["name"] == "t"


@pytest.mark.parametrize(
    "choice, config",
    [
        ({"type": "auto"}, {"mode": "AUTO"}),
        ({"type": "any", "disable_parallel_tool_use": True}, {"mode": "ANY"}),
        ({"type": "tool", "name": "f"}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
        ({"type": "none"}, {"mode": "NONE"}),
    ],
)
def test_tool_choice(choice, config):
    tools = [{"name": "f", "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}]
    assert build(tools=tools, tool_choice=choice)["toolConfig"] == {"functionCallingConfig": config}
    assert "toolConfig" not in build(tool_choice=choice)  # nothing declared: nothing to configure
    assert options({"tool_choice": choice})["single_tool"] == bool(choice.get("disable_parallel_tool_use"))


def test_tool_choice_tool_needs_a_name():
    tools = [{"name": "f", "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}]
    with pytest.raises(InvalidRequest) as err:
        build(tools=tools, tool_choice={"type": "tool"})
    assert err.value.param == "tool_choice.name"


# -- thinking, directives, structured output ---------------------------------------------


@pytest.mark.parametrize(
    "model, thinking, expected",
    [
        (
            "gemini-2.5-flash",
            {"type": "enabled", "budget_tokens": 4096},
            {"thinkingBudget": 4096, "includeThoughts": True},
        ),
        (
            "gemini-2.5-pro",
            {"type": "enabled", "budget_tokens": 100000},
            {"thinkingBudget": 32768, "includeThoughts": True},
        ),
        (
            "gemini-3-pro-preview",
            {"type": "enabled", "budget_tokens": 2000},
            {"thinkingLevel": "HIGH", "includeThoughts": True},
        ),
        (
            "gemini-3-flash-preview",
            {"type": "enabled", "budget_tokens": 1024},
            {"thinkingLevel": "LOW", "includeThoughts": True},
        ),
        (
            "gemini-2.5-flash",
            {"type": "enabled", "budget_tokens": 2048, "display": "omitted"},
            {"thinkingBudget": 2048, "includeThoughts": False},
        ),
        ("gemini-2.5-flash", {"type": "adaptive"}, {"includeThoughts": True}),
        ("gemini-2.5-flash", {"type": "disabled"}, {"thinkingBudget": 0}),
        ("gemini-2.5-pro", {"type": "disabled"}, {"thinkingBudget": 128}),  # Pro cannot switch it off
        ("gemini-3-flash-preview", {"type": "disabled"}, {"thinkingLevel": "MINIMAL"}),
    ],
)
def test_thinking(model, thinking, expected):
    assert build(model=model, thinking=thinking)["generationConfig"]["thinkingConfig"] == expected
    assert options({"thinking": thinking})["thinking"] == (thinking["type"] != "disabled")


def test_thinking_enabled_needs_a_budget():
    with pytest.raises(InvalidRequest) as err:
        build(thinking={"type": "enabled"})
    assert err.value.param == "thinking.budget_tokens"


def test_effort_from_output_config():
    config = build(model="gemini-3-flash-preview", output_config={"effort": "low"})["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingLevel": "LOW"}
    config = build(model="gemini-2.5-flash", thinking={"type": "adaptive"}, output_config={"effort": "max"})
    assert config["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576, "includeThoughts": True}


def test_model_name_directives_apply_when_the_request_is_finalized():
    spec = parse_model_name("gemini-2.5-flash-search-low")
    request = finalize(build(model=spec.model), spec, safety_threshold="OFF")
    assert request["tools"] == [{"googleSearch": {}}]
    assert request["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024}
    # The name's level wins over the request's own budget, as in every dialect; includeThoughts stays.
    spec = parse_model_name("gemini-2.5-flash-low")
    body = build(model=spec.model, thinking={"type": "enabled", "budget_tokens": 5000})
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 5000, "includeThoughts": True}
    request = finalize(body, spec, safety_threshold="OFF")
    assert request["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 1024}


def test_structured_output():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    for fields in (
        {"output_config": {"format": {"type": "json_schema", "schema": schema}}},
        {"output_format": {"type": "json_schema", "schema": schema}},
    ):
        config = build(**fields)["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseSchema"] == {
            "type": "OBJECT",
            "properties": {"name": {"type": "STRING"}},
            "required": ["name"],
        }


def test_count_tokens_request():
    body = {
        "model": "gemini-2.5-flash-search-high",
        "system": "sys",
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}],
    }
    request = count_tokens_request(body, parse_model_name(body["model"]), fetch=no_fetch)
    inner = request["generateContentRequest"]
    assert set(inner) == {"model", "contents", "systemInstruction", "tools"}
    assert inner["model"] == "models/gemini-2.5-flash"
    assert inner["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    assert inner["systemInstruction"] == {"parts": [{"text": "sys"}]}
    assert inner["tools"] == [
        {
            "functionDeclarations": [
                {"name": "f", "parameters": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}}}
            ]
        },
        {"googleSearch": {}},
    ]


def test_with_media_urls_passed_https_images_and_documents_go_by_reference():
    from app.translate.media import UrlMedia

    media = UrlMedia("pass", "gemini-2.5-pro", no_fetch)  # nothing is fetched by the gateway
    request = build(
        {
            "messages": [
                user(
                    {"type": "image", "source": {"type": "url", "url": "https://img.example/a.webp"}},
                    {"type": "document", "source": {"type": "url", "url": "https://docs.example/report"}},
                )
            ]
        },
        fetch=media,
    )
    assert request["contents"][0]["parts"] == [
        {"fileData": {"fileUri": "https://img.example/a.webp", "mimeType": "image/webp"}},
        {"fileData": {"fileUri": "https://docs.example/report", "mimeType": "application/pdf"}},
    ]


def test_with_media_urls_fetched_a_url_is_downloaded_inline():
    from app.translate.media import UrlMedia

    seen = []

    def fetch(url, *, param):
        seen.append((url, param))
        return {"mimeType": "image/png", "data": "iVBORw=="}

    request = build(
        {
            "messages": [
                user({"type": "image", "source": {"type": "url", "url": "https://img.example/a.png"}})
            ]
        },
        fetch=UrlMedia("fetch", "gemini-2.5-pro", fetch),
    )
    assert request["contents"][0]["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}}]
    assert seen == [("https://img.example/a.png", "messages[0].content[0].source.url")]
