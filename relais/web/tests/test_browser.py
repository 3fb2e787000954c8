"""End to end in a real Chromium: `relais run` as a user starts it, then an agent works the inbox.

The server runs in its own processes (web, worker, beat) on a fresh SQLite data folder, exactly
as `make run` starts them, so the live updates travel the real path: sandbox replay on the
worker -> database -> server-sent events -> htmx in the browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from relais.tests.live_server import CHROMIUM, CHROMIUM_FLAGS, relais_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None and os.environ.get("CI") != "true",
        reason="Debian's chromium is not installed (make browser-deps installs it)",
    ),
]


@pytest.fixture(scope="module")
def relais_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with relais_run(tmp_path_factory.mktemp("relais-e2e")) as server:
        yield server.address


@pytest.fixture
def page(relais_server: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(base_url=relais_server, locale="en-US")
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def test_an_agent_logs_in_sees_live_posts_replies_and_switches_to_french(page) -> None:
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "relais-demo")
    page.click("form.login button[type=submit]")
    expect(page.locator("h1")).to_have_text("Demo")
    expect(page.locator(".sandbox-banner")).to_contain_text("Sandbox workspace")

    # The counter grows while the page stays open: the live stream works without reloading.
    counter = page.locator('[data-counter="posts"]')
    first = int(counter.inner_text())
    page.wait_for_function(
        "n => Number(document.querySelector('[data-counter=posts]').textContent) > n", arg=first
    )

    page.click("nav.main >> text=Inbox")
    first_conversation = page.locator("table.inbox tbody tr td a").first
    expect(first_conversation).to_be_visible()
    first_conversation.click()
    expect(page.locator("ol.thread li").first).to_be_visible()

    reply = "Thank you for writing to us, we are looking into it right now."
    page.fill("#reply-text", reply)
    page.click("form.reply button[type=submit]")
    expect(page.locator("ol.thread li.outbound").last).to_contain_text(reply)

    page.click("form.language button")
    expect(page.locator("nav.main")).to_contain_text("Boîte de réception")
    expect(page.locator("form.reply button[type=submit]")).to_have_text("Envoyer la réponse")
