"""Codex CLI itself against the gateway: `codex exec` (pinned, installed by `make codex` into .tools/)
runs headless with a custom Responses provider pointing at the real server, the fake Gemini answering
as Gemini would (a shell call, then an `apply_patch` call, then a message). The patch must land.

Codex gets the model catalog entry the README describes (its bundled GPT-5.5 entry renamed), which
turns on its freeform `apply_patch` tool. Every connection but the gateway's goes to a dead proxy:
the run needs no internet.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLIENT_KEY, ROOT
from tests.openai.test_e2e import answer

CODEX = ROOT / ".tools" / "codex" / "node_modules" / ".bin" / "codex"
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
PROMPT = "List the files in this directory, then add a file hello.txt that says hello."
DEAD_PROXY = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def codex() -> Path:
    """The pinned Codex CLI, installed from npm on first use (the version is the Makefile's)."""
    subprocess.run(["make", "-s", "codex"], cwd=ROOT, check=True, timeout=600, capture_output=True)
    return CODEX


def catalog_entry(codex: Path, home: Path, slug: str) -> dict:
    """The README's recipe: Codex's bundled GPT-5.5 entry under the Gemini model's name."""
    out = subprocess.run(
        [codex, "debug", "models", "--bundled"],
        env=_env(home),
        capture_output=True,
        check=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    (entry,) = [m for m in json.loads(out.stdout)["models"] if m["slug"] == "gpt-5.5"]
    return {**entry, "slug": slug, "display_name": slug, "upgrade": None}


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PROXY", "_proxy"))}
    env.update(
        CODEX_HOME=str(home),
        GEMGATE_API_KEY=CLIENT_KEY,
        HTTPS_PROXY=DEAD_PROXY,
        HTTP_PROXY=DEAD_PROXY,
        ALL_PROXY=DEAD_PROXY,
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


def run_codex(codex: Path, gateway, tmp_path: Path, model: str, *extra_config: str) -> tuple[Path, str]:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "gemini-models.json").write_text(json.dumps({"models": [catalog_entry(codex, home, model)]}))
    config = f"""
model = "{model}"
model_provider = "gemgate"
model_catalog_json = "{home / "gemini-models.json"}"
check_for_update_on_startup = false
{chr(10).join(extra_config)}

[model_providers.gemgate]
name = "gemgate"
base_url = "{gateway.url("/v1")}"
env_key = "GEMGATE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false
"""
    (home / "config.toml").write_text(config)
    project = tmp_path / "project"
    project.mkdir()
    (project / "existing.txt").write_text("a\n")
    done = subprocess.run(
        [
            codex,
            "exec",
            "--strict-config",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "-C",
            project,
            PROMPT,
        ],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return project, output


def streamed_calls(upstream, model: str) -> list[dict]:
    calls = [c for c in upstream.calls() if c["path"].endswith(":streamGenerateContent")]
    assert {c["path"] for c in calls} == {f"/v1beta/models/{model}:streamGenerateContent"}
    return [c["body"] for c in calls]


def test_codex_edits_a_file_on_gemini_2_5(codex, gateway, upstream, tmp_path):
    model = "gemini-2.5-flash"
    shell_signature, patch_signature = "c2hlbGwtc2lnbmF0dXJl", "cGF0Y2gtc2lnbmF0dXJl"
    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [
                answer(
                    {
                        "functionCall": {"name": "exec_command", "args": {"cmd": "ls -1"}},
                        "thoughtSignature": shell_signature,
                    }
                )
            ],
        },
        {
            "match": ":streamGenerateContent",
            "events": [
                answer(
                    {
                        "functionCall": {"name": "apply_patch", "args": {"input": PATCH}},
                        "thoughtSignature": patch_signature,
                    }
                )
            ],
        },
        {"match": ":streamGenerateContent", "events": [answer({"text": "Added hello.txt."})]},
    )
    project, output = run_codex(codex, gateway, tmp_path, model)
    assert (project / "hello.txt").read_text() == "hello\n", output
    first, second, third = streamed_calls(upstream, model)
    declared = {d["name"]: d for d in first["tools"][0]["functionDeclarations"]}
    assert declared["apply_patch"]["parameters"]["required"] == ["input"]  # Codex sent it as a custom tool
    assert second["contents"][-2]["parts"] == [
        {
            "functionCall": {"name": "exec_command", "args": {"cmd": "ls -1"}},
            "thoughtSignature": shell_signature,
        }
    ]
    listing = second["contents"][-1]["parts"][0]["functionResponse"]
    assert listing["name"] == "exec_command" and "existing.txt" in listing["response"]["result"]
    assert third["contents"][-2]["parts"] == [
        {
            "functionCall": {"name": "apply_patch", "args": {"input": PATCH}},
            "thoughtSignature": patch_signature,
        }
    ]
    applied = third["contents"][-1]["parts"][0]["functionResponse"]
    assert applied["name"] == "apply_patch" and "A hello.txt" in applied["response"]["result"]
    assert "Added hello.txt." in output


def test_codex_edits_a_file_on_gemini_3_with_thoughts_and_late_signatures(codex, gateway, upstream, tmp_path):
    model = "gemini-3-flash-preview"
    signatures = ["c2lnLW9uZQ==", "c2lnLXR3bw==", "c2lnLXRocmVl"]

    def thought(text):
        return answer({"text": text, "thought": True}, finish=None)

    upstream.script(
        {
            "match": ":streamGenerateContent",
            "events": [
                thought("**Looking around**\n\nI will list the files first."),
                answer(
                    {
                        "functionCall": {"name": "exec_command", "args": {"cmd": "ls"}, "id": "g3-ls"},
                        "thoughtSignature": signatures[0],
                    }
                ),
            ],
        },
        {
            "match": ":streamGenerateContent",
            "events": [
                thought("**Writing the file**"),
                answer(
                    {
                        "functionCall": {"name": "apply_patch", "args": {"input": PATCH}, "id": "g3-patch"},
                        "thoughtSignature": signatures[1],
                    }
                ),
            ],
        },
        {
            "match": ":streamGenerateContent",
            "events": [
                answer({"text": "Done: hello.txt says hello."}, finish=None),
                answer({"text": "", "thoughtSignature": signatures[2]}),  # Gemini 3's late signature
            ],
        },
    )
    project, output = run_codex(codex, gateway, tmp_path, model, 'model_reasoning_summary = "auto"')
    assert (project / "hello.txt").read_text() == "hello\n", output
    first, second, third = streamed_calls(upstream, model)
    assert first["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "MEDIUM", "includeThoughts": True}
    assert third["contents"][-4:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "exec_command", "args": {"cmd": "ls"}, "id": "g3-ls"},
                    "thoughtSignature": signatures[0],
                }
            ],
        },
        {"role": "user", "parts": [third["contents"][-3]["parts"][0]]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "apply_patch", "args": {"input": PATCH}, "id": "g3-patch"},
                    "thoughtSignature": signatures[1],
                }
            ],
        },
        {"role": "user", "parts": [third["contents"][-1]["parts"][0]]},
    ]
    assert [third["contents"][i]["parts"][0]["functionResponse"]["id"] for i in (-3, -1)] == [
        "g3-ls",
        "g3-patch",
    ]
    assert "Done: hello.txt says hello." in output
