"""The admin page in a real headless Chromium against a real gateway: log in, a key cools down for a model
after a 429, a request appears, the buttons work; runtime settings reach every worker; usage import.
Screenshots land in test-output/."""

import json
import os
import shutil
import time

import pytest
import requests

from tests.conftest import AUTH, ROOT, fixture_json

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "browser test password"
GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)",
    ),
]


@pytest.fixture
def browser(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Debian's Chromium, never a downloaded one; a fresh profile for each run.
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS, timeout=30_000
        )
        context.set_default_timeout(10_000)
        try:
            yield context
        finally:
            context.close()


def test_admin_page_in_a_real_browser(browser, start_gateway, upstream, tmp_path):
    gateway = start_gateway(ADMIN_PASSWORD=PASSWORD)
    upstream.script(
        {
            "status": 429,
            "body": fixture_json("gemini/error_429_resource_exhausted.json"),
            "match": ":generateContent",
        }
    )
    answer = requests.post(gateway.url(GEN), json=BODY, headers=AUTH, timeout=10)
    assert answer.status_code == 200  # key-1 got the 429, key-2 served the call
    request_id = answer.headers["x-request-id"]

    page = browser.new_page()
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(gateway.url("/admin"))
    assert page.url.endswith("/admin/login")  # no session: the login, and no data
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "Wrong password."
    problems.clear()  # Chromium logs the 401 of the refused login itself
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(gateway.url("/admin"))

    key1 = page.locator('tr[data-key="key-1"]')
    assert key1.get_attribute("data-status") == "healthy"  # as a whole: the quota was the model's
    flash = key1.locator('li[data-model="gemini-2.5-flash"]')
    assert flash.get_attribute("data-status") == "cooling"
    assert "until" in flash.inner_text() and "HTTP 429 RESOURCE_EXHAUSTED" in flash.inner_text()
    assert page.locator('tr[data-key="key-2"]').get_attribute("data-status") == "healthy"
    latest = page.locator(f'tr[data-request-id="{request_id}"]')
    assert latest.count() == 1
    assert "gemini-2.5-flash" in latest.inner_text() and "key-2" in latest.inner_text()
    assert page.locator('svg[data-chart="model_requests"] rect').count() >= 1  # drawn by chart.js
    assert "gemini-2.5-flash" in page.locator("#usage .legend").first.inner_text()

    output = ROOT / "test-output"
    output.mkdir(exist_ok=True)
    page.screenshot(path=str(tmp_path / "admin.png"), full_page=True)
    shutil.copy(tmp_path / "admin.png", output / "admin.png")
    assert (output / "admin.png").stat().st_size > 10_000

    # Re-check key-1: the fake answers the model list, so it is healthy again, for every model.
    key1.locator("button", has_text="Re-check").click()
    page.wait_for_selector("#flash")
    assert page.locator('tr[data-key="key-1"] li[data-model]').count() == 0
    assert "key-1: healthy" in page.locator("#flash").inner_text()
    calls = [c for c in upstream.calls() if c["method"] == "GET"]
    assert [c["path"] for c in calls] == ["/v1beta/models"]

    # Disable key-3, then a new request appears after a reload, served by another key.
    page.locator('tr[data-key="key-3"] button', has_text="Disable").click()
    page.wait_for_selector('tr[data-key="key-3"][data-status="disabled"]')
    again = requests.post(gateway.url(GEN), json=BODY, headers=AUTH, timeout=10)
    page.reload()
    row = page.locator(f'tr[data-request-id="{again.headers["x-request-id"]}"]')
    assert row.count() == 1 and "key-3" not in row.inner_text()
    page.locator('tr[data-key="key-3"] button', has_text="Enable").click()
    page.wait_for_selector('tr[data-key="key-3"][data-status="healthy"]')

    # Log out: the page is gone until the next login.
    page.click("text=Log out")
    page.wait_for_url(gateway.url("/admin/login"))
    page.goto(gateway.url("/admin"))
    assert page.url.endswith("/admin/login")
    assert problems == []  # no script error, no CSP violation


def test_runtime_settings_in_a_real_browser_reach_every_worker(browser, start_gateway, upstream, tmp_path):
    gateway = start_gateway(ADMIN_PASSWORD=PASSWORD, WEB_CONCURRENCY=2)
    page = browser.new_page()
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(gateway.url("/admin"))
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(gateway.url("/admin"))
    mode = page.locator('tr[data-setting="STREAMING_MODE"]')
    assert mode.get_attribute("data-value") == "real" and mode.get_attribute("data-changed") == "no"

    # Switch to fake streaming on the page: whichever worker took the form, every worker applies it.
    page.select_option("#rt-STREAMING_MODE", "fake")
    page.check("#rt-FORCE_URL_CONTEXT")
    page.click("#save-settings")
    page.wait_for_selector('tr[data-setting="STREAMING_MODE"][data-value="fake"][data-changed="yes"]')
    assert (
        "Saved: STREAMING_MODE: real → fake; FORCE_URL_CONTEXT: false → true."
        in page.locator("#flash").inner_text()
    )
    changed_at = time.monotonic()
    time.sleep(1.0)  # "within a second"
    upstream.reset()
    workers: set[int] = set()
    served = 0
    while len(workers) < 2 and served < 60:  # new connections, until both workers have served one
        with requests.post(
            gateway.url("/v1/chat/completions"),
            json={
                "model": "gemini-2.5-flash",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
            },
            headers={**AUTH, "Connection": "close"},
            timeout=10,
        ) as r:
            assert r.status_code == 200 and r.content.rstrip().endswith(b"data: [DONE]")
            request_id = r.headers["x-request-id"]
        served += 1
        workers |= {line["worker"] for line in log_lines(gateway) if line.get("request_id") == request_id}
    assert len(workers) == 2, (served, workers)  # a second worker took requests...
    calls = [c for c in upstream.calls() if "enerateContent" in c["path"]]
    assert len(calls) == served and all(
        c["path"].endswith(":generateContent") for c in calls
    )  # ...as fake streams
    assert all(c["body"]["tools"] == [{"urlContext": {}}] for c in calls)
    assert time.monotonic() - changed_at < 60
    [change] = [line for line in log_lines(gateway) if line.get("event") == "settings_changed"]
    assert change["by"] == "admin from 127.0.0.1" and change["changes"]["STREAMING_MODE"] == {
        "from": "real",
        "to": "fake",
    }

    # Usage import: an export from another gateway, uploaded here, appears among the latest requests.
    export = tmp_path / "usage.jsonl"
    export.write_text(
        json.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 120)),
                "request_id": "req_from_the_old_gateway",
                "client": "key-1",
                "dialect": "anthropic",
                "endpoint": "/v1/messages",
                "model": "gemini-2.5-pro",
                "stream": False,
                "status": 200,
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "thought_tokens": 0,
            }
        )
        + "\n"
    )
    page.set_input_files("#usage-file", str(export))
    page.click("#import-usage")
    page.wait_for_selector("#flash")
    assert "Imported 1 usage records; 0 were there already" in page.locator("#flash").inner_text()
    assert page.locator('tr[data-request-id="req_from_the_old_gateway"]').count() == 1

    # Back to the environment's values: real streams again.
    page.click("#reset-settings")
    page.wait_for_selector('tr[data-setting="STREAMING_MODE"][data-value="real"][data-changed="no"]')
    time.sleep(1.0)
    upstream.reset()
    for _ in range(4):
        requests.post(
            gateway.url("/v1/chat/completions"),
            json={
                "model": "gemini-2.5-flash",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
            },
            headers={**AUTH, "Connection": "close"},
            timeout=10,
        ).close()
    assert all(c["path"].endswith(":streamGenerateContent") for c in upstream.calls())
    (ROOT / "test-output").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "test-output" / "admin-runtime.png"), full_page=True)
    assert problems == []


def log_lines(gateway) -> list[dict]:
    """The JSON lines of the gateway's request log (its standard output)."""
    out = []
    for line in gateway.proc.output().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out
