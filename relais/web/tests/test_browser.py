"""End to end in a real Chromium: `relais run` as a user starts it, then an agent works the inbox.

The server runs in its own processes (web, worker, beat) on a fresh SQLite data folder, exactly
as `make run` starts them, so the live updates travel the real path: sandbox replay on the
worker -> database -> server-sent events -> htmx in the browser.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None and os.environ.get("CI") != "true",
        reason="Debian's chromium is not installed (make browser-deps installs it)",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def relais_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "RELAIS_BROKER_URL"}}
    env.update(
        RELAIS_DATA_DIR=str(tmp_path_factory.mktemp("relais-e2e")),
        RELAIS_SANDBOX_TICK_SECONDS="1",
        RELAIS_TASKS_EAGER="0",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "relais.cli", "run", "--port", str(port), "--speed", "600"],
        env=env,
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(address + "/accounts/login/", timeout=2):  # noqa: S310
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail(process.stdout.read().decode() if process.stdout else "run exited")
            time.sleep(0.5)
    yield address
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("relais run did not stop within 20 s of Ctrl-C")


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
