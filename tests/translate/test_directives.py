import pytest

from app.errors import InvalidRequest
from app.translate.directives import Forced, ModelSpec, apply_directives, parse_model_name


@pytest.mark.parametrize(
    "name, spec",
    [
        ("gemini-2.5-flash", ModelSpec("gemini-2.5-flash", None, False, False)),
        ("models/gemini-2.5-flash", ModelSpec("gemini-2.5-flash", None, False, False)),
        ("gemini-2.5-flash-low", ModelSpec("gemini-2.5-flash", "low", False, False)),
        ("gemini-2.5-flash-high", ModelSpec("gemini-2.5-flash", "high", False, False)),
        ("gemini-2.5-flash-minimal", ModelSpec("gemini-2.5-flash", "minimal", False, False)),
        ("gemini-2.5-flash-none", ModelSpec("gemini-2.5-flash", "none", False, False)),
        ("gemini-2.5-flash-medium", ModelSpec("gemini-2.5-flash", "medium", False, False)),
        ("gemini-3-pro-preview(minimal)", ModelSpec("gemini-3-pro-preview", "minimal", False, False)),
        ("gemini-3-pro-preview(HIGH)", ModelSpec("gemini-3-pro-preview", "high", False, False)),
        ("gemini-2.5-flash-search", ModelSpec("gemini-2.5-flash", None, True, False)),
        ("gemini-2.5-flash-code", ModelSpec("gemini-2.5-flash", None, False, True)),
        ("gemini-2.5-flash-search-high", ModelSpec("gemini-2.5-flash", "high", True, False)),
        ("gemini-2.5-flash-high-search", ModelSpec("gemini-2.5-flash", "high", True, False)),
        ("gemini-2.5-pro-code-search-low", ModelSpec("gemini-2.5-pro", "low", True, True)),
        ("gemini-2.5-flash-search(low)", ModelSpec("gemini-2.5-flash", "low", True, False)),
        ("models/gemini-2.5-flash-lite-search", ModelSpec("gemini-2.5-flash-lite", None, True, False)),
        # Real name parts are never eaten.
        ("gemini-2.5-flash-lite", ModelSpec("gemini-2.5-flash-lite", None, False, False)),
        ("gemini-2.5-flash-preview-tts", ModelSpec("gemini-2.5-flash-preview-tts", None, False, False)),
        ("gemini-2.5-flash-image", ModelSpec("gemini-2.5-flash-image", None, False, False)),
        ("gemini-flash-latest", ModelSpec("gemini-flash-latest", None, False, False)),
        ("gemini-flash-lite-latest-high", ModelSpec("gemini-flash-lite-latest", "high", False, False)),
        ("gemini-exp-1206", ModelSpec("gemini-exp-1206", None, False, False)),
        ("gemini-exp-1206-search", ModelSpec("gemini-exp-1206", None, True, False)),
        (
            "gemini-2.5-flash-preview-09-2025-low",
            ModelSpec("gemini-2.5-flash-preview-09-2025", "low", False, False),
        ),
        # Streaming modes, and the seed's order: level, streaming mode, tools.
        ("gemini-2.5-flash-fake", ModelSpec("gemini-2.5-flash", None, False, False, "fake")),
        ("gemini-2.5-flash-real", ModelSpec("gemini-2.5-flash", None, False, False, "real")),
        (
            "gemini-3-flash-preview(minimal)-fake-search-code",
            ModelSpec("gemini-3-flash-preview", "minimal", True, True, "fake"),
        ),
        ("gemini-2.5-flash-high-FAKE-search", ModelSpec("gemini-2.5-flash", "high", True, False, "fake")),
        ("gemini-2.5-flash-search-fake(low)", ModelSpec("gemini-2.5-flash", "low", True, False, "fake")),
        # A name that is only a directive word is a model name, not an empty one.
        ("high", ModelSpec("high", None, False, False)),
    ],
)
def test_parse_model_name(name, spec):
    assert parse_model_name(name) == spec


def test_spec_is_frozen():
    spec = parse_model_name("gemini-2.5-flash-high")
    with pytest.raises(AttributeError):
        spec.effort = "low"


@pytest.mark.parametrize(
    "name",
    [
        "gemini-2.5-flash-low-high",
        "gemini-2.5-flash-high(low)",
        "gemini-2.5-flash-fake-real",
        "gemini-2.5-flash(low)-search(high)",
        "gemini-2.5-flash(lots)",
        "gemini-2.5-flash()",
        "bad name",
        "",
        "-high",
        None,
        42,
    ],
)
def test_bad_names_are_a_400_naming_the_param(name):
    with pytest.raises(InvalidRequest) as exc:
        parse_model_name(name, param="body.model")
    assert exc.value.param == "body.model"


def test_repeating_the_same_level_is_fine():
    assert parse_model_name("gemini-2.5-flash-high(high)").effort == "high"


def _request(**extra):
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **extra}


def test_apply_search_and_code():
    out = apply_directives(parse_model_name("gemini-2.5-flash-search-code"), _request())
    assert out["tools"] == [{"googleSearch": {}}, {"codeExecution": {}}]


def test_apply_does_not_mutate_the_request():
    request = _request(tools=[{"codeExecution": {}}], generationConfig={"temperature": 0.2})
    before = repr(request)
    apply_directives(parse_model_name("gemini-2.5-flash-search-high"), request)
    assert repr(request) == before


def test_apply_does_not_duplicate_tools():
    request = _request(tools=[{"google_search": {}}, {"codeExecution": {}}])
    out = apply_directives(
        parse_model_name("gemini-2.5-flash-search-code"), request, Forced(search=True, code=True)
    )
    assert out["tools"] == [{"google_search": {}}, {"codeExecution": {}}]


def test_apply_nothing_leaves_the_request_as_is():
    request = _request()
    assert apply_directives(parse_model_name("gemini-2.5-flash"), request) == request


def test_apply_thinking_level_on_25_and_3x():
    out = apply_directives(parse_model_name("gemini-2.5-flash-low"), _request())
    assert out["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 1024}}
    out = apply_directives(parse_model_name("gemini-3-pro-preview(minimal)"), _request())
    assert out["generationConfig"] == {"thinkingConfig": {"thinkingLevel": "LOW"}}


def test_suffix_level_replaces_a_budget_and_keeps_include_thoughts():
    request = _request(
        generationConfig={
            "temperature": 1,
            "thinkingConfig": {"thinkingBudget": 8000, "includeThoughts": True},
        }
    )
    out = apply_directives(parse_model_name("gemini-3-flash-preview-high"), request)
    assert out["generationConfig"] == {
        "temperature": 1,
        "thinkingConfig": {"thinkingLevel": "HIGH", "includeThoughts": True},
    }


def test_suffix_none_turns_thinking_off_and_drops_include_thoughts():
    request = _request(generationConfig={"thinkingConfig": {"includeThoughts": True}})
    out = apply_directives(parse_model_name("gemini-2.5-flash-none"), request)
    assert out["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_suffix_level_on_a_model_without_thinking_control_is_ignored():
    out = apply_directives(parse_model_name("gemini-2.0-flash-high"), _request())
    assert "generationConfig" not in out


def test_force_switches():
    out = apply_directives(parse_model_name("gemini-2.5-flash"), _request(), Forced(search=True, code=True))
    assert out["tools"] == [{"googleSearch": {}}, {"codeExecution": {}}]


def test_force_switches_leave_function_calling_requests_alone():
    functions = [{"functionDeclarations": [{"name": "f"}]}]
    out = apply_directives(
        parse_model_name("gemini-2.5-flash"), _request(tools=functions), Forced(search=True, code=True)
    )
    assert out["tools"] == functions
    # The client's own suffix is still honoured.
    out = apply_directives(
        parse_model_name("gemini-2.5-flash-search"), _request(tools=functions), Forced(search=True)
    )
    assert out["tools"] == functions + [{"googleSearch": {}}]


def test_an_alias_target_may_carry_directives():
    aliases = (("claude-*", "gemini-2.5-pro-fake-search"),)
    assert parse_model_name("claude-sonnet-4", aliases=aliases) == ModelSpec(
        "gemini-2.5-pro", None, True, False, "fake"
    )


def test_forced_url_context_and_thinking():
    out = apply_directives(
        parse_model_name("gemini-2.5-flash"), _request(), Forced(url_context=True, thinking=True)
    )
    assert out["tools"] == [{"urlContext": {}}]
    assert out["generationConfig"] == {"thinkingConfig": {"includeThoughts": True}}
    # A client's own tool and choice stay as they are.
    request = _request(
        tools=[{"url_context": {}}],
        generationConfig={"temperature": 1, "thinkingConfig": {"include_thoughts": False}},
    )
    assert (
        apply_directives(
            parse_model_name("gemini-2.5-flash"), request, Forced(url_context=True, thinking=True)
        )
        == request
    )


@pytest.mark.parametrize(
    "model, generation",
    [
        ("gemini-2.5-flash", {"thinkingConfig": {"thinkingBudget": 0}}),  # thinking off: no thoughts to show
        ("gemini-2.0-flash", None),  # a model that does not think
        ("gemini-2.5-flash-preview-tts", None),
    ],
)
def test_forced_thinking_leaves_models_without_thoughts_alone(model, generation):
    request = _request(generationConfig=generation) if generation else _request()
    assert apply_directives(parse_model_name(model), request, Forced(thinking=True)) == request


def test_forced_thinking_with_a_level_suffix():
    out = apply_directives(parse_model_name("gemini-3-flash-preview-low"), _request(), Forced(thinking=True))
    assert out["generationConfig"] == {"thinkingConfig": {"thinkingLevel": "LOW", "includeThoughts": True}}
    out = apply_directives(parse_model_name("gemini-2.5-flash-none"), _request(), Forced(thinking=True))
    assert out["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 0}}


def test_forced_url_context_leaves_function_calling_requests_alone():
    functions = [{"functionDeclarations": [{"name": "f"}]}]
    out = apply_directives(
        parse_model_name("gemini-2.5-flash"), _request(tools=functions), Forced(url_context=True)
    )
    assert out["tools"] == functions
