"""The admin page in a real headless Chromium against a real gateway: log in, a key cools down for a model
after a 429, a request appears, the buttons work; a screenshot lands in test-output/admin.png."""

import os
import shutil

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
