"""Forced features and model-name directives end to end, with each dialect's official SDK: what reaches
the fake Gemini."""

import anthropic
import openai
from google import genai
from google.genai import types

from tests.conftest import CLIENT_KEY


def generate_calls(upstream) -> list[dict]:
    return [c for c in upstream.calls() if "enerateContent" in c["path"]]


def test_forced_url_context_and_thinking_for_the_dialects_the_operator_chose(start_gateway, upstream):
    gateway = start_gateway(
        FORCE_URL_CONTEXT="true", FORCE_THINKING="true", FORCE_DIALECTS="gemini,anthropic"
    )
    native = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=gateway.base_url))
    claude = anthropic.Anthropic(base_url=gateway.base_url, api_key=CLIENT_KEY, max_retries=0)
    chat = openai.OpenAI(base_url=gateway.url("/v1"), api_key=CLIENT_KEY, max_retries=0)
    try:
        assert native.models.generate_content(model="gemini-2.5-flash", contents="hi").text == "Paris"
        claude.messages.create(
            model="gemini-2.5-flash", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        chat.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}])
        # A native client that declares its own functions gets no forced tool (its thoughts, though, yes).
        lookup = types.FunctionDeclaration(
            name="lookup", parameters=types.Schema(type="OBJECT", properties={})
        )
        native.models.generate_content(
            model="gemini-2.5-flash",
            contents="hi",
            config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[lookup])]),
        )
    finally:
        claude.close()
        chat.close()
    by_native, by_claude, by_chat, with_functions = (c["body"] for c in generate_calls(upstream))
    for body in (by_native, by_claude):
        assert body["tools"] == [{"urlContext": {}}]
        assert body["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    assert "tools" not in by_chat and "thinkingConfig" not in by_chat.get("generationConfig", {})
    assert [list(t) for t in with_functions["tools"]] == [["functionDeclarations"]]
    assert with_functions["generationConfig"]["thinkingConfig"]["includeThoughts"] is True


def test_directives_on_native_paths_with_google_genai(gateway, upstream):
    native = genai.Client(api_key=CLIENT_KEY, http_options=types.HttpOptions(base_url=gateway.base_url))
    assert native.models.generate_content(model="gemini-2.5-flash-search", contents="news?").text == "Paris"
    native.models.generate_content(model="gemini-3-flash-preview(minimal)-code", contents="sum?")
    chunks = list(
        native.models.generate_content_stream(model="gemini-2.5-flash-fake-search-high", contents="x")
    )
    assert "".join(c.text for c in chunks) == "Paris"  # a fake stream: the whole answer as one event
    search, code, fake = generate_calls(upstream)
    assert search["path"].endswith("/models/gemini-2.5-flash:generateContent")
    assert search["body"]["tools"] == [{"googleSearch": {}}]
    assert code["path"].endswith("/models/gemini-3-flash-preview:generateContent")
    assert code["body"]["tools"] == [{"codeExecution": {}}]
    assert code["body"]["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "MINIMAL"}
    assert fake["path"].endswith("/models/gemini-2.5-flash:generateContent")  # not streamGenerateContent
    assert fake["body"]["tools"] == [{"googleSearch": {}}]
    assert fake["body"]["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576}
