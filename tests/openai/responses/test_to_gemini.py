"""Responses API requests -> Gemini requests, on plain dicts: the recorded Codex requests first, then
one rule per test."""

import pytest

from app.errors import InvalidRequest
from app.openai import tool_ids
from app.openai.responses import to_gemini
from app.openai.responses.ids import encrypted_signature, encrypted_summary
from app.openai.responses.to_gemini import COMPACT_INSTRUCTION, SUMMARY_HEADING, Entry
from app.translate.directives import parse_model_name
from app.translate.signatures import BYPASS_SIGNATURE
from schemas.openai_responses import ResponseCreateRequest
from tests.conftest import fixture_json
from tests.openai.test_to_gemini import PNG, FakeFetch

CODEX = "openai/responses-request-codex-{}.json"


def codex_body(name: str) -> dict:
    return ResponseCreateRequest().load(fixture_json(CODEX.format(name))["body"])


def entries(items) -> list[Entry]:
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    return [
        Entry({"type": "message", **item} if "role" in item else item, f"input[{i}]")
        for i, item in enumerate(items)
    ]


def convert(items="Hi", model="gemini-2.5-flash", fetch=None, **body):
    body = {"model": model, **body}
    request, _ = to_gemini.generate_request(
        body, parse_model_name(model), entries(items), fetch=fetch or FakeFetch()
    )
    return request


def with_names(items="Hi", model="gemini-2.5-flash", **body):
    body = {"model": model, **body}
    return to_gemini.generate_request(body, parse_model_name(model), entries(items), fetch=FakeFetch())


def declared(request) -> dict:
    return {d["name"]: d for t in request.get("tools", []) for d in t.get("functionDeclarations", [])}


def user(text):
    return {"role": "user", "content": [{"type": "input_text", "text": text}]}


# -- the recorded Codex requests ----------------------------------------------------------------------


def test_codex_first_turn():
    body = codex_body("first-turn")
    request, names = to_gemini.generate_request(
        body, parse_model_name(body["model"]), entries(body["input"]), fetch=FakeFetch()
    )
    # Codex's whole prompt is in developer messages: every text part of them, in order.
    system = [p["text"] for p in request["systemInstruction"]["parts"]]
    developer = [p["text"] for i in body["input"] if i["role"] == "developer" for p in i["content"]]
    assert system == developer and system[0].startswith("You are Codex")
    # The environment context and the prompt are one user turn.
    (turn,) = request["contents"]
    assert turn["role"] == "user" and turn["parts"][-1]["text"].startswith("List the files")
    tools = declared(request)
    assert set(tools) == {
        "exec_command",
        "write_stdin",
        "request_user_input",
        "apply_patch",
        "view_image",
        "get_goal",
        "create_goal",
        "update_goal",
    }
    # apply_patch is a custom tool: one string parameter, its Lark grammar shown in the description.
    patch = tools["apply_patch"]
    assert patch["parameters"] == {
        "type": "OBJECT",
        "properties": {"input": {"type": "STRING", "description": "The tool's whole input, as raw text."}},
        "required": ["input"],
    }
    assert (
        "Lark grammar" in patch["description"]
        and "start: begin_patch hunk+ end_patch" in patch["description"]
    )
    assert names.custom == {"apply_patch"}
    assert tools["get_goal"].get("parameters") is None  # empty properties: declared without parameters
    # web_search beside functions is left out (Gemini 2.x refuses the mix); tool_search is the client's.
    assert len(request["tools"]) == 1 and "googleSearch" not in str(request)
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert request["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 8192}}  # effort medium


def test_codex_tool_follow_up_replays_both_calls_and_their_outputs():
    body = codex_body("tool-followup")
    request = to_gemini.generate_request(
        body, parse_model_name(body["model"]), entries(body["input"]), fetch=FakeFetch()
    )[0]
    roles = [c["role"] for c in request["contents"]]
    assert roles == ["user", "model", "user", "model", "user"]
    shell, shell_out, patch, patch_out = request["contents"][1:]
    assert shell["parts"] == [
        # The recorded reasoning's encrypted_content is another server's: no signature of ours to send.
        {
            "functionCall": {"name": "exec_command", "args": {"cmd": "ls -1"}},
            "thoughtSignature": BYPASS_SIGNATURE,
        }
    ]
    assert shell_out["parts"][0]["functionResponse"]["name"] == "exec_command"
    assert shell_out["parts"][0]["functionResponse"]["response"]["result"].startswith("Chunk ID: 23ef75")
    assert patch["parts"][0]["functionCall"] == {
        "name": "apply_patch",
        "args": {"input": "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"},
    }
    assert patch_out["parts"][0]["functionResponse"]["name"] == "apply_patch"


def test_codex_fallback_tool_set_with_a_namespace_is_accepted():
    body = codex_body("first-turn-fallback-metadata")
    request, names = to_gemini.generate_request(
        body, parse_model_name(body["model"]), entries(body["input"]), fetch=FakeFetch()
    )
    tools = declared(request)
    assert "apply_patch" not in tools
    spawn = tools["multi_agent_v1.spawn_agent"]
    assert spawn["description"] and spawn["parameters"]["type"] == "OBJECT"
    assert names.split("multi_agent_v1.spawn_agent") == ("multi_agent_v1", "spawn_agent")
    assert names.split("exec_command") == (None, "exec_command")
    # reasoning.summary "auto" asks to see thoughts.
    assert request["generationConfig"] == {"thinkingConfig": {"includeThoughts": True}}


# -- input items ---------------------------------------------------------------------------------------


def test_a_string_input_is_one_user_turn():
    assert convert("Hi") == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_instructions_come_before_system_and_developer_messages():
    request = convert(
        [{"role": "developer", "content": "Be brief."}, user("Hi"), {"role": "system", "content": "Late."}],
        instructions="You are helpful.",
    )
    assert request["systemInstruction"] == {
        "parts": [{"text": "You are helpful."}, {"text": "Be brief."}, {"text": "Late."}]
    }


def test_system_messages_take_text_only():
    image = {"type": "input_image", "image_url": "data:image/png;base64," + PNG}
    with pytest.raises(InvalidRequest) as err:
        convert([{"role": "system", "content": [image]}, user("Hi")])
    assert err.value.param == "input[0].content[0].type"


def test_images_and_files_in_user_messages():
    fetch = FakeFetch()
    request = convert(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "data:image/png;base64," + PNG, "detail": "high"},
                    {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "auto"},
                    {"type": "input_image", "file_id": "files/abc"},
                    {"type": "input_file", "filename": "a.pdf", "file_data": "JVBERi0xLjQ="},
                    {"type": "input_file", "file_url": "https://example.com/b.pdf"},
                ],
            }
        ],
        fetch=fetch,
    )
    parts = request["contents"][0]["parts"]
    assert parts[0] == {"text": "What is this?"}
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert parts[2] == {"inlineData": {"mimeType": "image/jpeg", "data": "ZmV0Y2hlZA=="}}
    assert parts[3] == {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}
    assert parts[4] == {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjQ="}}
    assert parts[5]["inlineData"]["data"] == "ZmV0Y2hlZA=="
    assert ("https://example.com/cat.jpg", "input[0].content.content[2].image_url") not in fetch.calls
    assert [param for _, param in fetch.calls] == [
        "input[0].content[1].image_url",
        "input[0].content[2].image_url",
        "input[0].content[5].file_url",
    ]


def test_a_file_id_from_v1_files_reads_that_gemini_file():
    request = convert([{"role": "user", "content": [{"type": "input_file", "file_id": "file-abc"}]}])
    assert request["contents"][0]["parts"] == [
        {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}
    ]


def test_an_id_that_is_no_files_is_refused_with_its_field():
    with pytest.raises(InvalidRequest) as err:
        convert([{"role": "user", "content": [{"type": "input_file", "file_id": "file_ABC"}]}])
    assert err.value.param == "input[0].content[0].file_id"


def test_assistant_messages_are_model_turns():
    request = convert(
        [
            user("Hi"),
            {
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "id": "msg_1",
                "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
            },
            user("Bye"),
        ]
    )
    assert [c["role"] for c in request["contents"]] == ["user", "model", "user"]
    assert request["contents"][1]["parts"] == [{"text": "Hello!"}]


def test_function_calls_and_outputs_in_call_order():
    call_a = tool_ids.encode("gid-a", "c2lnLWE=")
    request = convert(
        [
            user("Weather in Paris and Rome?"),
            {"type": "function_call", "call_id": call_a, "name": "weather", "arguments": '{"city": "Paris"}'},
            {
                "type": "function_call",
                "call_id": "call_b",
                "name": "weather",
                "arguments": '{"city": "Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_b", "output": '{"temp": 20}'},
            {"type": "function_call_output", "call_id": call_a, "output": "18 degrees"},
        ]
    )
    model, answers = request["contents"][1:]
    assert model["parts"] == [
        {
            "functionCall": {"name": "weather", "args": {"city": "Paris"}, "id": "gid-a"},
            "thoughtSignature": "c2lnLWE=",
        },
        {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
    ]
    assert answers == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "weather", "response": {"result": "18 degrees"}, "id": "gid-a"}},
            {"functionResponse": {"name": "weather", "response": {"temp": 20}}},
        ],
    }


def test_a_tool_output_with_an_image_sends_the_image_beside_the_answer():
    request = convert(
        [
            user("Look"),
            {"type": "function_call", "call_id": "c1", "name": "screenshot", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [
                    {"type": "input_text", "text": "here it is"},
                    {"type": "input_image", "image_url": "data:image/png;base64," + PNG},
                ],
            },
        ]
    )
    assert request["contents"][2]["parts"] == [
        {"functionResponse": {"name": "screenshot", "response": {"result": "here it is"}}},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
    ]


def test_custom_and_namespaced_calls_keep_their_gemini_names():
    request = convert(
        [
            user("Go"),
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done"},
            {
                "type": "function_call",
                "call_id": "c2",
                "name": "spawn_agent",
                "namespace": "agents",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "c2", "output": "ok"},
        ]
    )
    calls = [c["parts"][0] for c in request["contents"] if c["role"] == "model"]
    assert calls[0]["functionCall"] == {"name": "apply_patch", "args": {"input": "*** Begin Patch"}}
    assert calls[1]["functionCall"]["name"] == "agents.spawn_agent"
    answers = [c["parts"][0]["functionResponse"]["name"] for c in request["contents"][2::2]]
    assert answers == ["apply_patch", "agents.spawn_agent"]


def test_an_output_without_its_call_is_refused():
    with pytest.raises(InvalidRequest) as err:
        convert([user("Hi"), {"type": "function_call_output", "call_id": "nope", "output": "x"}])
    assert err.value.param == "input[1].call_id" and "nope" in err.value.message


def test_bad_arguments_name_the_item():
    with pytest.raises(InvalidRequest) as err:
        convert([user("Hi"), {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{oops"}])
    assert err.value.param == "input[1].arguments"


def test_items_of_hosted_tools_are_skipped():
    request = convert(
        [
            user("Search"),
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Found it."}]},
        ]
    )
    assert request["contents"][1] == {"role": "model", "parts": [{"text": "Found it."}]}


def test_only_system_messages_is_a_clear_400():
    with pytest.raises(InvalidRequest) as err:
        convert([{"role": "developer", "content": "Be brief."}])
    assert err.value.param == "input"


# -- thought signatures back to Gemini -------------------------------------------------------------------


def reasoning(signature=None, text=""):
    item = {"type": "reasoning", "id": "rs_1", "summary": [], "content": None}
    if text:
        item["summary"] = [{"type": "summary_text", "text": text}]
    item["encrypted_content"] = encrypted_signature(signature) if signature else None
    return item


def answer(text):
    return {"role": "assistant", "content": [{"type": "output_text", "text": text}]}


def model_parts(items):
    request = convert([user("Hi"), *items, user("Next")])
    return request["contents"][1]["parts"]


def test_a_reasoning_signature_goes_on_the_part_after_it():
    assert model_parts([reasoning("U0lH", "thinking"), answer("Done")]) == [
        {"text": "Done", "thoughtSignature": "U0lH"}
    ]


def test_a_late_signature_goes_on_the_last_part():
    # Gemini 3 sends a text answer's signature after the text; a stream carries it in a reasoning item last.
    assert model_parts([reasoning(None, "thinking"), answer("Done"), reasoning("U0lH")]) == [
        {"text": "Done", "thoughtSignature": "U0lH"}
    ]


def test_a_signature_a_call_carries_is_not_placed_twice():
    call = {"type": "function_call", "call_id": tool_ids.encode(None, "U0lH"), "name": "f", "arguments": "{}"}
    request = convert([user("Hi"), reasoning("U0lH", "plan"), answer("Let me check."), call])
    assert request["contents"][1]["parts"] == [
        {"text": "Let me check."},
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "U0lH"},
    ]


def test_a_call_without_any_signature_gets_the_stand_in():
    call = {"type": "function_call", "call_id": "call_plain", "name": "f", "arguments": "{}"}
    request = convert(
        [user("Hi"), call, {"type": "function_call_output", "call_id": "call_plain", "output": "x"}]
    )
    assert request["contents"][1]["parts"][0]["thoughtSignature"] == BYPASS_SIGNATURE


def test_another_servers_encrypted_reasoning_is_never_sent():
    item = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAABo-openai-opaque"}
    assert model_parts([item, answer("Done")]) == [{"text": "Done"}]


# -- compaction -------------------------------------------------------------------------------------------


def test_a_compaction_item_is_expanded_to_its_summary():
    compaction = {
        "type": "compaction",
        "id": "cmp_1",
        "encrypted_content": encrypted_summary("We fixed the bug."),
    }
    request = convert([user("Fix the bug"), compaction, user("Now add a test")])
    assert request["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "Fix the bug"},
                {"text": f"{SUMMARY_HEADING}\n\nWe fixed the bug."},
                {"text": "Now add a test"},
            ],
        }
    ]


def test_another_services_compaction_is_skipped_and_a_damaged_one_refused():
    foreign = {"type": "compaction", "encrypted_content": "gAAAA-opaque"}
    assert convert([user("Hi"), foreign])["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    damaged = {"type": "compaction_summary", "encrypted_content": "ggc1.@@@"}
    with pytest.raises(InvalidRequest) as err:
        convert([user("Hi"), damaged])
    assert err.value.param == "input[1].encrypted_content"


def test_compact_request_asks_for_the_summary_last_and_calls_nothing():
    items = [
        {"role": "developer", "content": "You are Codex."},
        user("Fix it"),
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
    ]
    body = {"model": "gemini-2.5-flash", "tools": [{"type": "function", "name": "f"}]}
    request = to_gemini.compact_request(body, entries(items), fetch=FakeFetch())
    assert "systemInstruction" not in request
    assert request["contents"][-1] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "f", "response": {"result": "ok"}}},
            {"text": COMPACT_INSTRUCTION},
        ],
    }
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}


# -- tools --------------------------------------------------------------------------------------------------

SUM = {
    "type": "function",
    "name": "sum",
    "description": "Add",
    "strict": True,
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
}


def test_function_tools_convert_their_json_schema():
    tool = declared(convert(tools=[SUM]))["sum"]
    assert tool == {
        "name": "sum",
        "description": "Add",
        "parameters": {
            "type": "OBJECT",
            "properties": {"a": {"type": "INTEGER"}, "b": {"type": "INTEGER"}},
            "required": ["a", "b"],
        },
    }


def test_hosted_search_and_code_without_functions():
    request = convert(
        tools=[{"type": "web_search", "external_web_access": True}, {"type": "code_interpreter"}]
    )
    assert request["tools"] == [{"googleSearch": {}}, {"codeExecution": {}}]


@pytest.mark.parametrize("kind", ["file_search", "computer_use_preview", "image_generation", "mcp", "shell"])
def test_other_hosted_tools_are_a_clear_400(kind):
    with pytest.raises(InvalidRequest) as err:
        convert(tools=[SUM, {"type": kind}])
    assert err.value.param == "tools[1].type" and kind in err.value.message


def test_client_run_tool_search_is_dropped():
    request = convert(tools=[SUM, {"type": "tool_search", "execution": "client", "parameters": {}}])
    assert list(declared(request)) == ["sum"]


def test_tool_names_gemini_cannot_take_and_duplicates_are_refused():
    with pytest.raises(InvalidRequest) as err:
        convert(tools=[{"type": "function", "name": "has space"}])
    assert err.value.param == "tools[0].name"
    with pytest.raises(InvalidRequest) as err:
        convert(tools=[SUM, {**SUM, "description": "again"}])
    assert err.value.param == "tools"


def test_custom_tool_with_a_regex_and_a_plain_one():
    request, names = with_names(
        tools=[
            {
                "type": "custom",
                "name": "date",
                "format": {"type": "grammar", "syntax": "regex", "definition": r"\d+"},
            },
            {"type": "custom", "name": "note", "description": "Free text", "format": {"type": "text"}},
        ]
    )
    tools = declared(request)
    assert "regular expression" in tools["date"]["description"] and r"\d+" in tools["date"]["description"]
    assert tools["note"]["description"] == "Free text"
    assert names.custom == {"date", "note"}


@pytest.mark.parametrize(
    "choice, config, offered",
    [
        ("none", {"mode": "NONE"}, ["sum", "note"]),
        ("required", {"mode": "ANY"}, ["sum", "note"]),
        (
            {"type": "function", "name": "sum"},
            {"mode": "ANY", "allowedFunctionNames": ["sum"]},
            ["sum", "note"],
        ),
        (
            {"type": "custom", "name": "note"},
            {"mode": "ANY", "allowedFunctionNames": ["note"]},
            ["sum", "note"],
        ),
        (
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "sum"}]},
            {"mode": "AUTO"},
            ["sum"],
        ),
        ({"type": "web_search_preview"}, None, ["sum", "note"]),
    ],
)
def test_tool_choice(choice, config, offered):
    request = convert(tools=[SUM, {"type": "custom", "name": "note"}], tool_choice=choice)
    assert request.get("toolConfig") == ({"functionCallingConfig": config} if config else None)
    assert list(declared(request)) == offered


def test_tool_choice_naming_an_unknown_tool_is_refused():
    with pytest.raises(InvalidRequest) as err:
        convert(tools=[SUM], tool_choice={"type": "function", "name": "nope"})
    assert err.value.param == "tool_choice"


# -- generation config ----------------------------------------------------------------------------------------


def test_sampling_and_output_limit():
    config = convert(max_output_tokens=2**40, temperature=0.2, top_p=0.9)["generationConfig"]
    assert config == {"maxOutputTokens": 2**31 - 1, "temperature": 0.2, "topP": 0.9}


def test_json_schema_and_json_object_formats():
    schema = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
    config = convert(text={"format": {"type": "json_schema", "name": "X", "schema": schema, "strict": True}})
    assert config["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    old = convert(
        model="gemini-2.0-flash", text={"format": {"type": "json_schema", "name": "X", "schema": schema}}
    )
    assert old["generationConfig"]["responseSchema"]["type"] == "OBJECT"
    plain = convert(text={"format": {"type": "json_object"}, "verbosity": "low"})
    assert plain["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    "model, reasoning, thinking",
    [
        ("gemini-2.5-flash", {"effort": "low"}, {"thinkingBudget": 1024}),
        ("gemini-2.5-flash", {"effort": "max"}, {"thinkingBudget": 24576}),
        ("gemini-2.5-flash", {"effort": "none", "summary": "detailed"}, {"thinkingBudget": 0}),
        (
            "gemini-3-pro-preview",
            {"effort": "medium", "summary": "auto"},
            {"thinkingLevel": "HIGH", "includeThoughts": True},
        ),
        (
            "gemini-3-flash-preview",
            {"effort": "minimal", "summary": "none"},
            {"thinkingLevel": "MINIMAL", "includeThoughts": False},
        ),
        ("gemini-3-flash-preview-low", {"effort": "high"}, {"thinkingLevel": "LOW"}),
    ],
)
def test_reasoning_effort_and_summary(model, reasoning, thinking):
    assert convert(model=model, reasoning=reasoning)["generationConfig"]["thinkingConfig"] == thinking


def test_count_tokens_request_wraps_the_whole_prompt():
    body = {
        "model": "gemini-2.5-flash-search",
        "instructions": "Be brief.",
        "tools": [SUM],
        "max_output_tokens": 5,
    }
    request = to_gemini.count_tokens_request(
        body, parse_model_name(body["model"]), entries("Hi"), fetch=FakeFetch()
    )
    inner = request["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-flash"
    assert inner["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert inner["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    assert "generationConfig" not in inner and {"googleSearch": {}} in inner["tools"]
