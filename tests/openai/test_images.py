"""OpenAI image generation <-> Imagen and Gemini image models."""

import pytest

from app.errors import InvalidRequest
from app.openai import images
from app.openai.errors import ContentFiltered
from tests.conftest import fixture_json


@pytest.mark.parametrize(
    "size, ratios, ratio",
    [
        (None, images.IMAGEN_RATIOS, None),
        ("auto", images.IMAGEN_RATIOS, None),
        ("1024x1024", images.IMAGEN_RATIOS, "1:1"),
        ("1792x1024", images.IMAGEN_RATIOS, "16:9"),
        ("1024x1792", images.IMAGEN_RATIOS, "9:16"),
        ("1536x1024", images.IMAGEN_RATIOS, "4:3"),
        ("1536x1024", images.GEMINI_RATIOS, "3:2"),
        ("2560x1080", images.GEMINI_RATIOS, "21:9"),
        ("4:3", images.IMAGEN_RATIOS, "4:3"),
    ],
)
def test_aspect_ratio(size, ratios, ratio):
    assert images.aspect_ratio(size, ratios) == ratio


@pytest.mark.parametrize("size", ["big", "0x100", "21:9", "1024*1024"])
def test_bad_size_is_a_400(size):
    with pytest.raises(InvalidRequest) as caught:
        images.aspect_ratio(size, images.IMAGEN_RATIOS)
    assert caught.value.param == "size"


@pytest.mark.parametrize(
    "name, model, kind",
    [
        (None, images.DEFAULT_MODEL, "imagen"),
        ("dall-e-3", images.DEFAULT_MODEL, "imagen"),
        ("gpt-image-1", images.DEFAULT_MODEL, "imagen"),
        ("imagen-4.0-ultra-generate-001", "imagen-4.0-ultra-generate-001", "imagen"),
        ("gemini-2.5-flash-image", "gemini-2.5-flash-image", "gemini"),
    ],
)
def test_models(name, model, kind):
    assert images.model_name(name) == model and images.kind(model) == kind


def test_a_text_model_is_a_400():
    with pytest.raises(InvalidRequest) as caught:
        images.kind("gemini-2.5-flash")
    assert caught.value.param == "model"


def test_requests():
    assert images.predict_request("cat", 2, "16:9") == {
        "instances": [{"prompt": "cat"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "16:9"},
    }
    assert images.generate_request("cat", None) == {
        "contents": [{"role": "user", "parts": [{"text": "cat"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }


def test_from_predict_skips_filtered_images():
    found = images.from_predict(fixture_json("gemini/imagen_predict_some_filtered.json"))
    assert len(found) == 1 and found[0][0].startswith("image/")


def test_from_predict_all_filtered_or_empty():
    with pytest.raises(ContentFiltered) as caught:
        images.from_predict({"predictions": [{"raiFilteredReason": "Sexual content."}]})
    assert caught.value.status == 400 and "Sexual content." in caught.value.message
    with pytest.raises(ContentFiltered):
        images.from_predict({})


def test_from_generate():
    answer = fixture_json("gemini/image_generation.json")
    [(mime, data)] = images.from_generate(answer)
    assert (
        mime == "image/png" and data == answer["candidates"][0]["content"]["parts"][1]["inlineData"]["data"]
    )
    with pytest.raises(ContentFiltered) as caught:
        images.from_generate(fixture_json("gemini/image_generation_no_image.json"))
    assert "NO_IMAGE" in caught.value.message
    with pytest.raises(ContentFiltered) as caught:
        images.from_generate(fixture_json("gemini/prompt_blocked_prohibited_content.json"))
    assert "PROHIBITED_CONTENT" in caught.value.message


def test_images_response():
    out = images.images_response(
        [("image/jpeg", "AAA"), ("image/jpeg", "BBB")],
        5,
        None,
        {"promptTokenCount": 10, "candidatesTokenCount": 1290},
    )
    assert out == {
        "created": 5,
        "data": [{"b64_json": "AAA"}, {"b64_json": "BBB"}],
        "output_format": "jpeg",
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 10},
            "output_tokens": 1290,
            "total_tokens": 1300,
        },
    }
    assert images.images_response([("image/png", "AAA")], 5, "url", None)["data"] == [
        {"url": "data:image/png;base64,AAA"}
    ]
