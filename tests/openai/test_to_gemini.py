"""OpenAI chat requests -> Gemini requests, one rule per test, on plain dicts."""

import pytest

from app.errors import InvalidRequest
from app.openai import tool_ids
from app.openai.to_gemini import audio_format, chat_request
from app.translate.directives import parse_model_name
from app.translate.signatures import BYPASS_SIGNATURE, CallRef

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SUM_TOOL = {
    "type": "function",
    "function": {
        "name": "sum",
        "description": "Add two numbers",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
    },
}


class FakeFetch:
    """Stands in for app.media.inline_data_from_url: records what it was asked to fetch."""

    def __init__(self):
        self.calls = []

    def __call__(self, url, *, param):
        self.calls.append((url, param))
        if url.startswith("data:"):
            mime, _, data = url[5:].partition(";base64,")
            return {"mimeType": mime, "data": data}
        return {"mimeType": "image/jpeg", "data": "ZmV0Y2hlZA=="}


def convert(body=None, model="gemini-2.5-flash", fetch=None, known=None, **fields):
    body = dict(body or {"messages": [{"role": "user", "content": "Hi"}]}, model=model, **fields)
    return chat_request(body, parse_model_name(model), fetch=fetch or FakeFetch(), known=known)


def user(content):
    return {"role": "user", "content": content}


def test_plain_text_message():
    assert convert() == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_system_and_developer_messages_become_the_system_instruction_in_order():
    request = convert(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                user("Hi"),
                {"role": "system", "content": "Late rule."},
            ]
        }
    )
    assert request["systemInstruction"] == {
        "parts": [{"text": "Be brief."}, {"text": "Answer in French."}, {"text": "Late rule."}]
    }
    assert request["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_system_message_with_an_image_is_a_400_naming_the_part():
    with pytest.raises(InvalidRequest) as caught:
        convert(
            {
                "messages": [
                    {
                        "role": "system",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
                        ],
                    },
                    user("Hi"),
                ]
            }
        )
    assert caught.value.param == "messages[0].content[0]"


def test_roles_map_and_consecutive_same_role_turns_merge():
    request = convert(
        {
            "messages": [
                user("one"),
                user([{"type": "text", "text": "two"}]),
                {"role": "assistant", "content": "three"},
                {"role": "assistant", "content": "four"},
                user("five"),
            ]
        }
    )
    assert request["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "three"}, {"text": "four"}]},
        {"role": "user", "parts": [{"text": "five"}]},
    ]


def test_empty_messages_are_dropped_and_nothing_left_is_a_400():
    request = convert({"messages": [user(""), {"role": "assistant", "content": None}, user("x")]})
    assert request["contents"] == [{"role": "user", "parts": [{"text": "x"}]}]
    with pytest.raises(InvalidRequest) as caught:
        convert({"messages": [{"role": "system", "content": "only a system prompt"}]})
    assert caught.value.param == "messages"


def test_image_data_url_becomes_inline_data():
    fetch = FakeFetch()
    request = convert(
        {
            "messages": [
                user(
                    [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"},
                        },
                    ]
                )
            ]
        },
        fetch=fetch,
    )
    assert request["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
    ]
    assert fetch.calls == [(f"data:image/png;base64,{PNG}", "messages[0].content[1].image_url.url")]


def test_http_image_is_fetched_by_the_gateway_with_the_param_path():
    fetch = FakeFetch()
    request = convert(
        {"messages": [user([{"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}])]},
        fetch=fetch,
    )
    assert request["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/jpeg", "data": "ZmV0Y2hlZA=="}}
    ]
    assert fetch.calls == [("https://example.com/cat.jpg", "messages[0].content[0].image_url.url")]


def test_a_failed_fetch_is_the_fetchers_400():
    def refuse(url, *, param):
        raise InvalidRequest("private address", param=param)

    with pytest.raises(InvalidRequest) as caught:
        convert(
            {"messages": [user([{"type": "image_url", "image_url": {"url": "http://10.0.0.1/x.png"}}])]},
            fetch=refuse,
        )
    assert caught.value.param == "messages[0].content[0].image_url.url"


def test_gemini_file_and_youtube_urls_go_by_reference():
    fetch = FakeFetch()
    request = convert(
        {
            "messages": [
                user(
                    [
                        {
                            "type": "image_url",
                            "image_url": {
                                "url": "https://generativelanguage.googleapis.com/v1beta/files/abc"
                            },
                        },
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://www.youtube.com/watch?v=9hE5-98ZeCg"},
                        },
                    ]
                )
            ]
        },
        fetch=fetch,
    )
    assert request["contents"][0]["parts"] == [
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
        {"fileData": {"fileUri": "https://www.youtube.com/watch?v=9hE5-98ZeCg"}},
    ]
    assert fetch.calls == []


def test_input_audio_and_files_become_inline_data():
    request = convert(
        {
            "messages": [
                user(
                    [
                        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                        {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
                        {
                            "type": "file",
                            "file": {
                                "file_data": "data:application/pdf;base64,JVBERi0=",
                                "filename": "a.pdf",
                            },
                        },
                        {"type": "file", "file": {"file_data": "aGVsbG8=", "filename": "notes.txt"}},
                        {"type": "file", "file": {"file_id": "files/xyz"}},
                    ]
                )
            ]
        }
    )
    assert request["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"inlineData": {"mimeType": "text/plain", "data": "aGVsbG8="}},
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/xyz"}},
    ]


def test_a_file_id_from_v1_files_reads_that_gemini_file():
    request = convert(
        {"messages": [user([{"type": "file", "file": {"file_id": "file-abc123", "filename": "report.pdf"}}])]}
    )
    assert request["contents"][0]["parts"] == [
        {
            "fileData": {
                "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123",
                "mimeType": "application/pdf",
            }
        }
    ]


@pytest.mark.parametrize("file_id", ["file-ABC", "file_abc", "abc", "file-" + "a" * 41, "files/../x"])
def test_an_id_that_is_no_files_is_a_400(file_id):
    with pytest.raises(InvalidRequest) as caught:
        convert({"messages": [user([{"type": "file", "file": {"file_id": file_id}}])]})
    assert caught.value.param == "messages[0].content[0].file.file_id"


def test_tools_become_function_declarations_with_converted_schemas():
    tool = {
        "type": "function",
        "function": {
            "name": "find",
            "parameters": {
                "type": "object",
                "$defs": {
                    "Place": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "ref": {"type": "string"}},
                        "required": ["city"],
                    }
                },
                "properties": {
                    "where": {"$ref": "#/$defs/Place"},
                    "unit": {"type": ["string", "null"], "enum": ["c", "f", None]},
                    "days": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "level": {"type": "integer", "enum": [1, 2, 3]},
                    "type": {"const": "x"},
                },
                "required": ["where"],
                "additionalProperties": False,
            },
        },
    }
    [declaration] = convert(
        tools=[
            tool,
            {
                "type": "function",
                "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
            },
        ]
    )["tools"][0]["functionDeclarations"][:1]
    params = declaration["parameters"]
    assert params["type"] == "OBJECT" and params["required"] == ["where"]
    assert "$defs" not in params and "additionalProperties" not in params
    assert params["properties"]["where"]["properties"]["ref"] == {
        "type": "STRING"
    }  # a property named like a keyword
    assert params["properties"]["unit"]["nullable"] is True and params["properties"]["unit"]["enum"] == [
        "c",
        "f",
    ]
    assert params["properties"]["days"] == {"type": "INTEGER", "nullable": True}
    assert params["properties"]["level"]["type"] == "INTEGER"
    assert params["properties"]["type"]["enum"] == ["x"]


def test_a_tool_without_parameters_leaves_them_out():
    tools = convert(
        tools=[
            {
                "type": "function",
                "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
            },
            {"type": "function", "function": {"name": "ping"}},
        ]
    )["tools"]
    assert tools == [{"functionDeclarations": [{"name": "now"}, {"name": "ping"}]}]


def test_non_function_tool_is_a_400():
    with pytest.raises(InvalidRequest) as caught:
        convert(tools=[SUM_TOOL, {"type": "custom", "custom": {"name": "grammar"}}])
    assert caught.value.param == "tools[1].type"


@pytest.mark.parametrize(
    "choice, config",
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "sum"}}, {"mode": "ANY", "allowedFunctionNames": ["sum"]}),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "sum"}}],
                },
            },
            {"mode": "ANY", "allowedFunctionNames": ["sum"]},
        ),
    ],
)
def test_tool_choice(choice, config):
    request = convert(tools=[SUM_TOOL], tool_choice=choice)
    assert request["toolConfig"] == {"functionCallingConfig": config}


def test_allowed_tools_in_auto_mode_offers_only_those_tools():
    other = {"type": "function", "function": {"name": "mul"}}
    request = convert(
        tools=[SUM_TOOL, other],
        tool_choice={
            "type": "allowed_tools",
            "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "mul"}}]},
        },
    )
    assert request["tools"] == [{"functionDeclarations": [{"name": "mul"}]}]
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_tool_choice_naming_an_unknown_tool_is_a_400():
    with pytest.raises(InvalidRequest) as caught:
        convert(tools=[SUM_TOOL], tool_choice={"type": "function", "function": {"name": "nope"}})
    assert caught.value.param == "tool_choice"


def test_legacy_functions_and_function_call():
    request = convert(functions=[SUM_TOOL["function"]], function_call={"name": "sum"})
    assert request["tools"][0]["functionDeclarations"][0]["name"] == "sum"
    assert request["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["sum"]}
    }


def history(*tool_calls, answers=()):
    return {
        "messages": [
            user("add things"),
            {"role": "assistant", "content": None, "tool_calls": list(tool_calls)},
            *answers,
        ]
    }


def call(call_id, name="sum", arguments='{"a": 1, "b": 2}', **extra):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}, **extra}


@pytest.mark.parametrize("kept", ["in the store", "in the id"])
def test_replayed_call_gets_the_signature_and_gemini_id_kept_for_its_id(kept):
    ref = CallRef("3ae8iwca", "c2lnbmF0dXJl")
    call_id = tool_ids.new_id() if kept == "in the store" else tool_ids.encode(*ref)
    known = {call_id: ref} if kept == "in the store" else None
    request = convert(
        history(call(call_id), answers=[{"role": "tool", "tool_call_id": call_id, "content": "3"}]),
        known=known,
    )
    model, answers = request["contents"][1], request["contents"][2]
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "sum", "args": {"a": 1, "b": 2}, "id": "3ae8iwca"},
                "thoughtSignature": "c2lnbmF0dXJl",
            }
        ],
    }
    assert answers == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "sum", "response": {"result": "3"}, "id": "3ae8iwca"}},
        ],
    }


def test_extra_content_signature_wins_over_the_id():
    call_id = tool_ids.encode(None, "ZnJvbS1pZA==")
    extra = {"google": {"thought_signature": "ZnJvbS1leHRyYQ=="}}
    request = convert(history(call(call_id, extra_content=extra)))
    assert request["contents"][1]["parts"][0]["thoughtSignature"] == "ZnJvbS1leHRyYQ=="
    short = tool_ids.new_id()
    request = convert(history(call(short, extra_content=extra)), known={short: CallRef(None, "ZnJvbS1pZA==")})
    assert request["contents"][1]["parts"][0]["thoughtSignature"] == "ZnJvbS1leHRyYQ=="


def test_calls_without_any_signature_get_the_bypass_on_the_first_only():
    request = convert(history(call("call_a"), call("call_b")))
    parts = request["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == BYPASS_SIGNATURE
    assert "thoughtSignature" not in parts[1]


def test_a_short_id_the_store_no_longer_knows_falls_back_to_the_bypass():
    # Past the store's week (or another gateway's id), and without extra_content: Google's stand-in.
    request = convert(history(call(tool_ids.new_id()), call(tool_ids.new_id())), known={})
    parts = request["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == BYPASS_SIGNATURE and "thoughtSignature" not in parts[1]
    assert "id" not in parts[0]["functionCall"]


def test_a_real_signature_on_the_first_call_means_no_bypass_anywhere():
    request = convert(history(call(tool_ids.encode(None, "c2ln")), call("call_b")))
    parts = request["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == "c2ln" and "thoughtSignature" not in parts[1]


def test_parallel_answers_travel_in_one_content_in_call_order_with_names_looked_up():
    ids = [tool_ids.new_id() for _ in range(3)]
    known = {call_id: CallRef(f"g{i}", None) for i, call_id in enumerate(ids)}
    calls = [call(ids[0], "sum"), call(ids[1], "mul"), call(ids[2], "pow")]
    answers = [  # the client answers in another order and sends no names
        {"role": "tool", "tool_call_id": ids[2], "content": '{"value": 8}'},
        {"role": "tool", "tool_call_id": ids[0], "content": "3"},
        {"role": "tool", "tool_call_id": ids[1], "content": [{"type": "text", "text": "2"}]},
    ]
    request = convert(history(*calls, answers=[*answers, user("thanks")]), known=known)
    assert request["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "sum", "response": {"result": "3"}, "id": "g0"}},
            {"functionResponse": {"name": "mul", "response": {"result": "2"}, "id": "g1"}},
            {"functionResponse": {"name": "pow", "response": {"value": 8}, "id": "g2"}},
            {"text": "thanks"},
        ],
    }


def test_tool_message_for_an_unknown_call_is_a_400_unless_it_names_the_function():
    with pytest.raises(InvalidRequest) as caught:
        convert(
            history(call("call_a"), answers=[{"role": "tool", "tool_call_id": "call_zzz", "content": "x"}])
        )
    assert caught.value.param == "messages[2].tool_call_id"
    request = convert(
        history(
            call("call_a"),
            answers=[
                {"role": "tool", "tool_call_id": "call_a", "content": "1"},
                {"role": "tool", "tool_call_id": "call_zzz", "name": "other", "content": "2"},
            ],
        )
    )
    assert [p["functionResponse"]["name"] for p in request["contents"][2]["parts"]] == ["sum", "other"]


def test_images_in_a_tool_result_follow_the_function_responses():
    request = convert(
        history(
            call("call_a"),
            answers=[
                {
                    "role": "tool",
                    "tool_call_id": "call_a",
                    "content": [
                        {"type": "text", "text": "here"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    ],
                }
            ],
        )
    )
    assert request["contents"][2]["parts"] == [
        {"functionResponse": {"name": "sum", "response": {"result": "here"}}},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
    ]


def test_invalid_tool_call_arguments_are_a_400_naming_the_field():
    with pytest.raises(InvalidRequest) as caught:
        convert(history(call("call_a", arguments="{not json")))
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"
    request = convert(history(call("call_a", arguments="")))
    assert request["contents"][1]["parts"][0]["functionCall"]["args"] == {}


def test_legacy_function_message_answers_by_name():
    request = convert(
        {
            "messages": [
                user("time?"),
                {"role": "assistant", "content": None, "function_call": {"name": "now", "arguments": "{}"}},
                {"role": "function", "name": "now", "content": "noon"},
            ]
        }
    )
    assert request["contents"][1]["parts"][0]["functionCall"] == {"name": "now", "args": {}}
    assert request["contents"][2]["parts"] == [
        {"functionResponse": {"name": "now", "response": {"result": "noon"}}}
    ]


def test_assistant_markdown_images_go_back_as_images():
    text = f"Here it is:\n\n![image](data:image/png;base64,{PNG})\n\nEnjoy."
    request = convert({"messages": [user("draw"), {"role": "assistant", "content": text}, user("again")]})
    assert request["contents"][1]["parts"] == [
        {"text": "Here it is:"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"text": "Enjoy."},
    ]


def test_assistant_reasoning_content_is_not_replayed():
    request = convert(
        {
            "messages": [
                user("q"),
                {"role": "assistant", "content": "a", "reasoning_content": "hmm"},
                user("q2"),
            ]
        }
    )
    assert request["contents"][1]["parts"] == [{"text": "a"}]


@pytest.mark.parametrize(
    "model, effort, thinking",
    [
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024, "includeThoughts": True}),
        ("gemini-2.5-flash", "high", {"thinkingBudget": 24576, "includeThoughts": True}),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-3-pro-preview", "high", {"thinkingLevel": "HIGH", "includeThoughts": True}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "MINIMAL", "includeThoughts": True}),
    ],
)
def test_reasoning_effort_per_model_family(model, effort, thinking):
    assert convert(model=model, reasoning_effort=effort)["generationConfig"]["thinkingConfig"] == thinking


def test_extra_body_google_thinking_config():
    request = convert(
        extra_body={"google": {"thinking_config": {"thinking_budget": 2048, "include_thoughts": False}}}
    )
    assert request["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 2048, "includeThoughts": False}


def test_thinking_suffix_in_the_model_name_wins_and_shows_thoughts():
    request = convert(model="gemini-2.5-flash-high", reasoning_effort="low")
    assert request["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576, "includeThoughts": True}


def test_bad_reasoning_effort_is_a_400():
    with pytest.raises(InvalidRequest) as caught:
        convert(reasoning_effort="extreme")
    assert caught.value.param == "reasoning_effort"


def test_sampling_fields():
    request = convert(
        max_tokens=100,
        max_completion_tokens=200,
        temperature=0.2,
        top_p=0.9,
        n=2,
        seed=7,
        stop="END",
        presence_penalty=0,
        frequency_penalty=0.5,
        logprobs=True,
        top_logprobs=3,
    )
    assert request["generationConfig"] == {
        "maxOutputTokens": 200,
        "temperature": 0.2,
        "topP": 0.9,
        "candidateCount": 2,
        "seed": 7,
        "frequencyPenalty": 0.5,
        "stopSequences": ["END"],
        "responseLogprobs": True,
        "logprobs": 3,
    }
    assert convert(stop=["a", "b"], max_tokens=5)["generationConfig"] == {
        "maxOutputTokens": 5,
        "stopSequences": ["a", "b"],
    }


def test_unknown_and_null_fields_are_ignored():
    request = convert(
        user="u1",
        metadata={"a": "b"},
        store=True,
        temperature=None,
        stop=None,
        tools=None,
        prediction={"type": "content"},
        verbosity="low",
        service_tier="auto",
    )
    assert request == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_response_format_json_object_and_json_schema():
    assert convert(response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    schema = {
        "type": "object",
        "properties": {"x": {"type": "integer"}},
        "required": ["x"],
        "additionalProperties": False,
    }
    config = convert(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": schema, "strict": True},
        }
    )
    assert config["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    assert convert(response_format={"type": "text"}).get("generationConfig") is None


def test_json_schema_on_an_old_model_uses_the_converted_response_schema():
    schema = {"type": "object", "properties": {"x": {"type": ["integer", "null"]}}}
    config = convert(
        model="gemini-2.0-flash", response_format={"type": "json_schema", "json_schema": {"schema": schema}}
    )
    assert config["generationConfig"]["responseSchema"] == {
        "type": "OBJECT",
        "properties": {"x": {"type": "INTEGER", "nullable": True}},
    }


def test_audio_modality_and_tts_models_ask_for_audio_with_the_voice():
    config = convert(modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"})[
        "generationConfig"
    ]
    assert config == {
        "responseModalities": ["AUDIO"],
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
    }
    assert convert(model="gemini-2.5-flash-preview-tts")["generationConfig"] == {
        "responseModalities": ["AUDIO"]
    }


def test_audio_format_is_checked_before_calling_gemini():
    assert audio_format({"modalities": ["audio"], "audio": {"format": "pcm16"}}, "gemini-2.5-flash") == "pcm"
    assert audio_format({"modalities": ["text"]}, "gemini-2.5-flash") is None
    assert audio_format({}, "gemini-2.5-flash-preview-tts") == "wav"
    with pytest.raises(InvalidRequest) as caught:
        audio_format({"modalities": ["audio"], "audio": {"format": "midi"}}, "gemini-2.5-flash")
    assert caught.value.param == "audio.format" and "wav" in caught.value.message


def test_image_modality_and_google_image_config():
    config = convert(
        model="gemini-2.5-flash-image",
        modalities=["text", "image"],
        extra_body={"google": {"image_config": {"aspect_ratio": "16:9"}}},
    )["generationConfig"]
    assert config == {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "16:9"}}


def test_web_search_options_add_google_search():
    assert convert(web_search_options={})["tools"] == [{"googleSearch": {}}]


def test_with_media_urls_passed_an_https_image_goes_to_gemini_by_reference():
    from app.translate.media import UrlMedia

    fetched = FakeFetch()
    url = "https://bucket.example/cat.png?X-Amz-Signature=abc"
    content = [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "image_url", "image_url": {"url": "http://plain.example/dog"}},  # Gemini fetches https only
        {"type": "image_url", "image_url": {"url": "https://cdn.example/no-extension"}},
    ]
    request = convert({"messages": [user(content)]}, fetch=UrlMedia("pass", "gemini-2.5-flash", fetched))
    assert request["contents"][0]["parts"] == [
        {"fileData": {"fileUri": url, "mimeType": "image/png"}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "ZmV0Y2hlZA=="}},
        {"fileData": {"fileUri": "https://cdn.example/no-extension"}},
    ]
    assert [u for u, _ in fetched.calls] == ["http://plain.example/dog"]


@pytest.mark.parametrize("mode, model", [("fetch", "gemini-2.5-flash"), ("pass", "gemini-2.0-flash")])
def test_fetch_mode_and_older_models_keep_the_guarded_download(mode, model):
    from app.translate.media import UrlMedia

    fetched = FakeFetch()
    url = "https://bucket.example/cat.png"
    request = convert(
        {"messages": [user([{"type": "image_url", "image_url": {"url": url}}])]},
        model=model,
        fetch=UrlMedia(mode, model, fetched),
    )
    assert request["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/jpeg", "data": "ZmV0Y2hlZA=="}}
    ]
    assert [u for u, _ in fetched.calls] == [url]
