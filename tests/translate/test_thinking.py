import json

import pytest

from app.errors import InvalidRequest
from app.translate.thinking import for_fallback, model_family, thinking_config


@pytest.mark.parametrize(
    "model, family",
    [
        ("gemini-2.5-pro", "gemini-2.5-pro"),
        ("models/gemini-2.5-pro-preview-06-05", "gemini-2.5-pro"),
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("gemini-flash-latest", "gemini-2.5-flash"),
        ("gemini-flash-lite-latest", "gemini-2.5-flash-lite"),
        ("gemini-pro-latest", "gemini-2.5-pro"),
        ("gemini-3-pro-preview", "gemini-3-pro"),
        ("gemini-3.1-pro-preview", "gemini-3.1-pro"),
        ("gemini-3.1-pro-preview-customtools", "gemini-3.1-pro"),
        ("gemini-3-flash-preview", "gemini-3-flash"),
        ("gemini-3.5-flash", "gemini-3-flash"),
        ("gemini-3.1-flash-lite-preview", "gemini-3-flash-lite"),
        ("gemini-3-ultra", "gemini-3"),
        ("gemini-2.0-flash", "none"),
        ("gemini-1.5-pro", "none"),
        ("gemini-2.5-flash-image", "none"),
        ("gemini-2.5-flash-preview-tts", "none"),
        ("gemini-3-pro-image-preview", "none"),
        ("gemini-2.5-computer-use-preview-10-2025", "none"),
        ("gemini-embedding-001", "none"),
        ("gemma-3-27b-it", "none"),
        ("gemini-exp-1206", "none"),
    ],
)
def test_model_family(model, family):
    assert model_family(model) == family


# Google's OpenAI-compatibility table for 2.5: minimal/low 1024, medium 8192, high 24576, none 0.
@pytest.mark.parametrize(
    "effort, budget",
    [("none", 0), ("minimal", 1024), ("low", 1024), ("medium", 8192), ("high", 24576), ("xhigh", 24576)],
)
def test_effort_on_25_flash(effort, budget):
    assert thinking_config("gemini-2.5-flash", effort=effort) == {"thinkingBudget": budget}


def test_25_pro_cannot_turn_thinking_off_so_none_is_its_minimum():
    assert thinking_config("gemini-2.5-pro", effort="none") == {"thinkingBudget": 128}
    assert thinking_config("gemini-2.5-pro", budget=0) == {"thinkingBudget": 128}
    assert thinking_config("gemini-2.5-pro", effort="xhigh") == {"thinkingBudget": 32768}


def test_25_flash_lite_range():
    assert thinking_config("gemini-2.5-flash-lite", effort="none") == {"thinkingBudget": 0}
    assert thinking_config("gemini-2.5-flash-lite", budget=100) == {"thinkingBudget": 512}
    assert thinking_config("gemini-2.5-flash-lite", budget=100000) == {"thinkingBudget": 24576}


def test_budget_on_25_is_clamped_into_range():
    assert thinking_config("gemini-2.5-flash", budget=31999) == {"thinkingBudget": 24576}
    assert thinking_config("gemini-2.5-pro", budget=31999) == {"thinkingBudget": 31999}
    assert thinking_config("gemini-2.5-pro", budget=50) == {"thinkingBudget": 128}
    assert thinking_config("gemini-2.5-flash", budget=-1) == {"thinkingBudget": -1}
    assert thinking_config("gemini-2.5-flash", budget=-7) == {"thinkingBudget": -1}


@pytest.mark.parametrize(
    "model, effort, level",
    [
        # 3 Pro takes LOW and HIGH only; medium rounds up so the client never loses depth.
        ("gemini-3-pro-preview", "none", "LOW"),
        ("gemini-3-pro-preview", "minimal", "LOW"),
        ("gemini-3-pro-preview", "low", "LOW"),
        ("gemini-3-pro-preview", "medium", "HIGH"),
        ("gemini-3-pro-preview", "high", "HIGH"),
        ("gemini-3.1-pro-preview", "none", "LOW"),
        ("gemini-3.1-pro-preview", "minimal", "LOW"),
        ("gemini-3.1-pro-preview", "medium", "MEDIUM"),
        ("gemini-3.1-pro-preview", "xhigh", "HIGH"),
        ("gemini-3-flash-preview", "none", "MINIMAL"),
        ("gemini-3-flash-preview", "minimal", "MINIMAL"),
        ("gemini-3-flash-preview", "low", "LOW"),
        ("gemini-3-flash-preview", "medium", "MEDIUM"),
        ("gemini-3-flash-preview", "high", "HIGH"),
        ("gemini-3.1-flash-lite-preview", "none", "MINIMAL"),
        ("gemini-3-ultra", "medium", "HIGH"),
    ],
)
def test_effort_on_3x_is_the_nearest_supported_level(model, effort, level):
    assert thinking_config(model, effort=effort) == {"thinkingLevel": level}


@pytest.mark.parametrize(
    "model, budget, level",
    [
        ("gemini-3-flash-preview", 0, "MINIMAL"),
        ("gemini-3-flash-preview", 1024, "LOW"),
        ("gemini-3-flash-preview", 4000, "MEDIUM"),
        ("gemini-3-flash-preview", 31999, "HIGH"),
        ("gemini-3-pro-preview", 0, "LOW"),
        ("gemini-3-pro-preview", 1024, "LOW"),
        ("gemini-3-pro-preview", 5000, "HIGH"),
        ("gemini-3.1-pro-preview", 5000, "MEDIUM"),
    ],
)
def test_budget_on_3x_is_a_level(model, budget, level):
    assert thinking_config(model, budget=budget) == {"thinkingLevel": level}


def test_never_both_budget_and_level():
    for model in ("gemini-2.5-flash", "gemini-3-pro-preview", "gemini-3-flash-preview"):
        config = thinking_config(model, effort="high", budget=2048, include_thoughts=True)
        assert not ("thinkingBudget" in config and "thinkingLevel" in config)


def test_budget_wins_over_effort():
    assert thinking_config("gemini-2.5-flash", effort="high", budget=2048) == {"thinkingBudget": 2048}


def test_dynamic_budget_on_3x_leaves_the_level_to_the_model():
    assert thinking_config("gemini-3-pro-preview", budget=-1) is None
    assert thinking_config("gemini-3-pro-preview", budget=-1, include_thoughts=True) == {
        "includeThoughts": True
    }


def test_include_thoughts():
    assert thinking_config("gemini-2.5-flash", include_thoughts=True) == {"includeThoughts": True}
    assert thinking_config("gemini-3-flash-preview", effort="low", include_thoughts=True) == {
        "thinkingLevel": "LOW",
        "includeThoughts": True,
    }
    assert thinking_config("gemini-2.5-flash", include_thoughts=False) == {"includeThoughts": False}


def test_thoughts_are_not_requested_when_thinking_is_off():
    assert thinking_config("gemini-2.5-flash", budget=0, include_thoughts=True) == {"thinkingBudget": 0}


def test_nothing_to_set_is_none():
    assert thinking_config("gemini-2.5-flash") is None
    assert thinking_config("gemini-3-pro-preview") is None


def test_models_without_thinking_control_get_nothing():
    assert thinking_config("gemini-2.0-flash", effort="high", include_thoughts=True) is None
    assert thinking_config("gemini-2.5-flash-image", budget=1024) is None


def test_effort_is_case_insensitive():
    assert thinking_config("gemini-2.5-flash", effort="HIGH") == {"thinkingBudget": 24576}


@pytest.mark.parametrize("effort", ["extreme", "", 3])
def test_unknown_effort_is_a_400(effort):
    with pytest.raises(InvalidRequest) as exc:
        thinking_config("gemini-2.5-flash", effort=effort)
    assert exc.value.param == "reasoning_effort"


def test_bad_budget_is_a_400_naming_the_param():
    with pytest.raises(InvalidRequest) as exc:
        thinking_config("gemini-2.5-flash", budget="lots", param="thinking.budget_tokens")
    assert exc.value.param == "thinking.budget_tokens"
    with pytest.raises(InvalidRequest):
        thinking_config("gemini-2.5-flash", budget=True)


def _thinking(model: str, config: dict, outer: str = "generationConfig", inner: str = "thinkingConfig"):
    body = {"contents": [], outer: {"temperature": 0.5, inner: config}}
    sent = for_fallback(json.dumps(body).encode(), model)
    return json.loads(sent)[outer].get(inner), sent


@pytest.mark.parametrize(
    "model, config, expected",
    [
        # a level for a 2.5 model: a budget on Google's table, clamped to the model's range
        ("gemini-2.5-pro", {"thinkingLevel": "HIGH"}, {"thinkingBudget": 24576}),
        ("gemini-2.5-pro", {"thinkingLevel": "minimal"}, {"thinkingBudget": 128}),  # 2.5 Pro cannot stop
        ("gemini-2.5-flash", {"thinkingLevel": "MINIMAL", "includeThoughts": True}, {"thinkingBudget": 0}),
        (
            "gemini-2.5-flash",
            {"thinkingLevel": "MEDIUM", "includeThoughts": True},
            {"thinkingBudget": 8192, "includeThoughts": True},
        ),
        # a budget for a 3.x model: the nearest level it takes; dynamic leaves the model's default
        ("gemini-3-pro-preview", {"thinkingBudget": 0}, {"thinkingLevel": "LOW"}),
        ("gemini-3-flash-preview", {"thinkingBudget": "0"}, {"thinkingLevel": "MINIMAL"}),
        ("gemini-3-pro-preview", {"thinkingBudget": -1, "includeThoughts": True}, {"includeThoughts": True}),
        ("gemini-3-pro-preview", {"thinkingLevel": "MEDIUM"}, {"thinkingLevel": "HIGH"}),  # ties go up
        # 2.5 to 2.5: clamped
        ("gemini-2.5-pro", {"thinkingBudget": 0}, {"thinkingBudget": 128}),
        # a model without thinking control: none at all
        ("gemini-2.0-flash", {"thinkingBudget": 1024}, None),
    ],
)
def test_a_fallback_gets_the_thinking_settings_its_family_takes(model, config, expected):
    assert _thinking(model, config)[0] == expected


def test_a_request_a_fallback_takes_as_it_is_goes_as_it_was_sent():
    for model, config in (
        ("gemini-2.5-flash", {"thinkingBudget": 512}),
        ("gemini-3-flash-preview", {"thinkingLevel": "low"}),
        ("gemini-2.5-flash", {"includeThoughts": True}),
    ):
        body = json.dumps({"generationConfig": {"thinkingConfig": config}}).encode()
        assert for_fallback(body, model) is body
    assert for_fallback(b'{"contents": []}', "gemini-2.0-flash") == b'{"contents": []}'
    assert for_fallback(b"not json thinking", "gemini-2.5-pro") == b"not json thinking"


def test_snake_case_names_stay_snake_case():
    found, sent = _thinking(
        "gemini-2.5-pro", {"thinking_level": "low"}, "generation_config", "thinking_config"
    )
    assert found == {"thinking_budget": 1024} and b"thinkingBudget" not in sent


def test_a_budget_that_is_no_number_is_left_for_gemini_to_judge():
    for budget in ("--5", "²", "ten"):
        body = json.dumps({"generationConfig": {"thinkingConfig": {"thinkingBudget": budget}}}).encode()
        assert for_fallback(body, "gemini-2.5-pro") is body
