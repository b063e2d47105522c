"""/openapi.json: a valid OpenAPI 3 document covering every route, true to real requests and answers."""

import json
import re

import pytest
import responses as responses_lib
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from app.http.routes import GEMINI_METHODS
from tests.conftest import AUTH, BASE, FIXTURES, fixture_bytes, fixture_json

SEED = (FIXTURES / "seed" / "api-examples.md").read_text()


@pytest.fixture(scope="module")
def spec():
    import tempfile

    from app import create_app
    from tests.conftest import make_env

    with tempfile.TemporaryDirectory() as data:
        r = create_app(make_env(DATA_DIR=data)).test_client().get("/openapi.json")  # no client key needed
    assert r.status_code == 200 and r.mimetype == "application/json"
    return json.loads(r.data)


def conforms(spec: dict, schema: dict, instance) -> list[str]:
    """Validation errors of `instance` against `schema`, whose $refs point into the spec."""
    validator = OAS30Validator({**schema, "components": spec["components"]})
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def operation(spec: dict, method: str, path: str) -> dict:
    """The operation whose path template matches the concrete path (concrete templates first, as
    OpenAPI matches them: `/v1/messages` before `/v1/{family}`)."""
    for template, ops in sorted(spec["paths"].items(), key=lambda item: item[0].count("{")):
        pattern = re.sub(r"\\\{[^}]+\\\}", r"[^/:]+", re.escape(template))
        if re.fullmatch(pattern, path) and method in ops:
            return ops[method]
    raise AssertionError(f"no operation for {method.upper()} {path}")


def test_it_is_valid_openapi_3(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.0")


def test_every_route_of_the_app_is_described(app, spec):
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/admin"):
            continue  # Flask's default static route serves nothing; /admin is a page, not API
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if "{model_action}" in path:
                for action in GEMINI_METHODS:
                    assert (method.lower(), path.replace("{model_action}", "{model}:" + action)) in documented
            else:
                assert (method.lower(), path) in documented, path


def test_client_auth_has_the_four_key_sources_and_public_routes_need_none(spec):
    schemes = spec["components"]["securitySchemes"]
    sources = {(s["type"], s.get("scheme") or f"{s['in']}:{s['name']}") for s in schemes.values()}
    assert {
        ("http", "bearer"),
        ("apiKey", "header:x-api-key"),
        ("apiKey", "header:x-goog-api-key"),
        ("apiKey", "query:key"),
    } <= sources
    assert len(spec["security"]) == 4  # any one of them
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert spec["paths"]["/openapi.json"]["get"]["security"] == []


def test_request_schemas_come_from_the_marshmallow_schemas(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["GeminiGenerateContentRequest"]["required"] == ["contents"]
    assert set(schemas["OpenAIChatCompletionRequest"]["required"]) == {"model", "messages"}
    assert set(schemas["AnthropicMessagesRequest"]["required"]) >= {"model", "messages", "max_tokens"}
    temperature = schemas["OpenAIChatCompletionRequest"]["properties"]["temperature"]
    assert temperature["type"] == "number" and temperature["maximum"] == 2 and temperature["nullable"] is True
    content = schemas["OpenAIMessage"]["properties"]["content"]
    assert {"type": "string"} in content["oneOf"]


@pytest.mark.parametrize(
    "name, path",
    [
        ("gemini/generate_text.request.json", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("gemini/embed_batch.request.json", "/v1beta/models/gemini-embedding-001:batchEmbedContents"),
        ("gemini/imagen_predict.request.json", "/v1beta/models/imagen-4.0-generate-001:predict"),
    ],
)
def test_recorded_requests_conform(spec, name, path):
    schema = operation(spec, "post", path)["requestBody"]["content"]["application/json"]["schema"]
    assert conforms(spec, schema, fixture_json(name)) == []


def test_every_seed_example_request_conforms(spec):
    blocks = re.findall(r"```bash\n(.*?)```", SEED, re.S)
    checked = 0
    for block in blocks:
        body = re.search(r"-d '(.*)'", block, re.S)
        path = re.search(r"http://localhost:7860(/[^\s\"'?\\]+)", block).group(1)
        if not body:
            continue
        schema = operation(spec, "post", path)["requestBody"]["content"]["application/json"]["schema"]
        assert conforms(spec, schema, json.loads(body.group(1))) == [], path
        checked += 1
    assert checked >= 15


def test_a_request_the_gateway_refuses_does_not_conform(spec):
    schema = operation(spec, "post", "/v1/messages")["requestBody"]["content"]["application/json"]["schema"]
    assert conforms(spec, schema, {"model": "m", "messages": []})  # max_tokens missing
    schema = operation(spec, "post", "/v1/chat/completions")["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert conforms(
        spec, schema, {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}
    )


@pytest.mark.parametrize(
    "name, path",
    [
        ("gemini/generate_text.json", "/v1beta/models/m:generateContent"),
        ("gemini/count_tokens.json", "/v1beta/models/m:countTokens"),
        ("gemini/embed_batch.json", "/v1beta/models/m:batchEmbedContents"),
        ("gemini/imagen_predict.json", "/v1beta/models/m:predict"),
        ("gemini/models_list_page.json", "/v1beta/models"),
        ("openai/chat_completion_text.json", "/v1/chat/completions"),
        ("openai/chat_completion_tool_call.json", "/v1/chat/completions"),
        ("openai/embeddings.json", "/v1/embeddings"),
        ("openai/images_generations_b64.json", "/v1/images/generations"),
        ("anthropic/message_text.json", "/v1/messages"),
        ("anthropic/message_tool_use.json", "/v1/messages"),
        ("anthropic/count_tokens.json", "/v1/messages/count_tokens"),
        ("openai/models_list.json", "/v1/models"),
        ("anthropic/models_list.json", "/v1/models"),
    ],
)
def test_recorded_answers_conform(spec, name, path):
    method = "get" if path.endswith("/models") else "post"
    schema = operation(spec, method, path)["responses"]["200"]["content"]["application/json"]["schema"]
    assert conforms(spec, schema, fixture_json(name)) == []


@pytest.mark.parametrize(
    "dialect, path, fixtures",
    [
        (
            "Gemini",
            "/v1beta/models/m:generateContent",
            ["gemini/error_400_invalid_argument.json", "gemini/error_429_resource_exhausted.json"],
        ),
        (
            "OpenAI",
            "/v1/chat/completions",
            ["openai/error_400_invalid_request.json", "openai/error_429_rate_limit.json"],
        ),
        (
            "Anthropic",
            "/v1/messages",
            ["anthropic/error_400_invalid_request.json", "anthropic/error_529_overloaded.json"],
        ),
    ],
)
def test_error_shapes_fit_real_errors_and_the_gateways_own(spec, client, dialect, path, fixtures):
    response = spec["components"]["responses"][f"{dialect}Error"]
    schema = response["content"]["application/json"]["schema"]
    for name in fixtures:
        assert conforms(spec, schema, fixture_json(name)) == [], name
    op = operation(spec, "post", path)
    assert (
        op["responses"]["400"]
        == op["responses"]["default"]
        == {"$ref": f"#/components/responses/{dialect}Error"}
    )
    r = client.post(path, json={"x": 1}, headers={**AUTH, "anthropic-version": "2023-06-01"})
    assert r.status_code == 400
    assert conforms(spec, schema, r.get_json()) == []
    assert set(response["headers"]) == {"x-request-id", "x-gemgate-overhead-ms"}


@pytest.mark.parametrize("name", ["first-turn", "tool-followup", "first-turn-fallback-metadata"])
def test_recorded_codex_requests_conform(spec, name):
    schema = operation(spec, "post", "/v1/responses")["requestBody"]["content"]["application/json"]["schema"]
    body = fixture_json(f"openai/responses-request-codex-{name}.json")["body"]
    assert conforms(spec, schema, body) == []


def test_a_responses_answer_conforms(spec, client):
    with responses_lib.RequestsMock() as mocked:
        mocked.post(
            BASE + "/v1beta/models/gemini-2.5-flash:generateContent",
            body=fixture_bytes("gemini/generate_text.json"),
        )
        r = client.post("/v1/responses", json={"model": "gemini-2.5-flash", "input": "Hi"}, headers=AUTH)
    schema = operation(spec, "post", "/v1/responses")["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    assert conforms(spec, schema, r.get_json()) == []
    stored = client.get(f"/v1/responses/{r.get_json()['id']}/input_items", headers=AUTH)
    schema = operation(spec, "get", "/v1/responses/x/input_items")["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    assert conforms(spec, schema, stored.get_json()) == []
