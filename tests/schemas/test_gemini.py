"""The Gemini-native schemas read bodies as Gemini's proto-JSON parser does: both spellings of every
field name, mixed within one body, and numbers written as strings."""

import pytest
from marshmallow import ValidationError

from schemas import first_error
from schemas.gemini import BatchEmbedContentsRequest, CountTokensRequest, GenerateContentRequest, camel_name

GENERATE = GenerateContentRequest()


def problem(schema, data):
    try:
        schema.load(data)
    except ValidationError as err:
        return first_error(err.normalized_messages())
    return None


def test_google_genai_s_inline_data_with_snake_case_mime_type_loads():
    # What google-genai sends for types.Part.from_bytes(data=..., mime_type="image/png").
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is this?"},
                    {"inlineData": {"data": "iVBORw0K", "mime_type": "image/png"}},
                ],
            }
        ]
    }
    loaded = GENERATE.load(body)
    assert loaded["contents"][0]["parts"][1]["inlineData"] == {"mimeType": "image/png", "data": "iVBORw0K"}


def test_snake_case_and_camel_case_mixed_in_one_body():
    body = {
        "contents": [
            {"parts": [{"file_data": {"file_uri": "https://x/files/a", "mimeType": "application/pdf"}}]}
        ],
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "generation_config": {
            "max_output_tokens": "100",
            "temperature": "0.5",
            "thinking_config": {"thinking_budget": 0, "includeThoughts": False},
        },
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }
    loaded = GENERATE.load(body)
    config = loaded["generationConfig"]
    assert config["maxOutputTokens"] == 100 and config["temperature"] == 0.5
    assert config["thinkingConfig"] == {"thinkingBudget": 0, "includeThoughts": False}
    assert loaded["safetySettings"][0]["threshold"] == "BLOCK_NONE"
    assert loaded["contents"][0]["parts"][0]["fileData"]["fileUri"] == "https://x/files/a"


@pytest.mark.parametrize(
    "body, field",
    [
        (
            {"contents": [{"parts": [{"inline_data": {"data": "AA=="}}]}]},
            "contents[0].parts[0].inlineData.mimeType",
        ),
        ({"contents": [{"parts": [{"thought": "true"}]}]}, "contents[0].parts[0].thought"),
        (
            {"contents": [{"parts": []}], "generation_config": {"max_output_tokens": "many"}},
            "generationConfig.maxOutputTokens",
        ),
        (
            {"contents": [{"parts": []}], "generationConfig": {"candidate_count": 0}},
            "generationConfig.candidateCount",
        ),
        ({"contents": [{"parts": []}], "generationConfig": {"seed": str(2**40)}}, "generationConfig.seed"),
        ({"contents": []}, "contents"),
    ],
)
def test_refusals_name_the_field_in_camel_case(body, field):
    assert problem(GENERATE, body)[0] == field


def test_one_field_under_both_names_is_refused():
    body = {"contents": [{"parts": []}], "generationConfig": {"topK": 1, "top_k": 2}}
    assert problem(GENERATE, body) == ("generationConfig.top_k", "Given twice, as 'topK' and 'top_k'.")


def test_struct_fields_keep_their_own_keys():
    call = {"function_call": {"name": "f", "args": {"snake_key": 1, "other_key": {"deep_key": 2}}}}
    loaded = GENERATE.load({"contents": [{"role": "model", "parts": [call]}]})
    assert loaded["contents"][0]["parts"][0]["functionCall"]["args"] == {
        "snake_key": 1,
        "other_key": {"deep_key": 2},
    }


def test_count_tokens_and_batch_embeddings_take_both_spellings():
    wrapped = {"generate_content_request": {"model": "models/m", "contents": [{"parts": [{"text": "x"}]}]}}
    assert "generateContentRequest" in CountTokensRequest().load(wrapped)
    embed = {
        "requests": [
            {"model": "models/e", "content": {"parts": [{"text": "x"}]}, "output_dimensionality": "8"}
        ]
    }
    assert BatchEmbedContentsRequest().load(embed)["requests"][0]["outputDimensionality"] == 8


def test_camel_name():
    assert camel_name("generation_config") == "generationConfig"
    assert camel_name("mimeType") == "mimeType"
    assert camel_name("response_json_schema") == "responseJsonSchema"
