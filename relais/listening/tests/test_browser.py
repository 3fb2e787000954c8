"""Listening end to end in a real Chromium against `relais run`: a manager creates a query, sees
mentions of the live sandbox replay arrive without reloading, and opens a crisis alert that
appears on the open alerts page when the detector raises it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relais.tests.live_server import CHROMIUM, CHROMIUM_FLAGS, relais_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None and os.environ.get("CI") != "true",
        reason="Debian's chromium is not installed (make browser-deps installs it)",
    ),
]

ROOT = Path(__file__).resolve().parents[3]

# Run against the server's data folder: a quiet day of mentions, a burst, then the detector (the
# beat may run it first; either way one alert opens).
RAISE_AN_ALERT = """
from datetime import timedelta
from relais.accounts.models import Workspace
from relais.connectors.base import InboundAuthor, InboundItem, PostKind
from relais.core import clock
from relais.listening.actions import do_evaluate_alerts
from relais.pipeline.actions import do_ingest_items

workspace = Workspace.objects.get(slug="demo")
now = clock.now()
def item(key, text, age):
    return InboundItem(
        remote_id="drill-" + key, kind=PostKind.POST,
        author=InboundAuthor(remote_id="drill-" + key, handle="drill" + key, name="Drill"),
        text=text, created_at=now - age,
    )
quiet = [item(f"q{h}", "zorglub is fine", timedelta(hours=h)) for h in range(1, 25)]
burst = [item(f"b{i}", "zorglub outage everywhere", timedelta(seconds=3 * i)) for i in range(30)]
do_ingest_items(workspace.pk, "archive", quiet + burst)
do_evaluate_alerts(workspace.pk)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """`relais run` on a fresh data folder; yields its address and environment."""
    with relais_run(tmp_path_factory.mktemp("relais-listening-e2e")) as live:
        yield live.address, live.env


def test_a_query_shows_live_mentions_and_an_alert_opens(server) -> None:
    from playwright.sync_api import expect, sync_playwright

    address, env = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_context(base_url=address, locale="en-US").new_page()
        page.set_default_timeout(60_000)
        page.goto("/accounts/login/")
        page.fill("#id_username", "demo")
        page.fill("#id_password", "relais-demo")
        page.click("form.login button[type=submit]")
        page.click("nav.main >> text=Listening")
        page.click(".listening-tabs >> text=Queries")

        # A mistake is pointed at, then fixed.
        page.fill("input[name=name]", "Drill")
        page.fill("textarea[name=text]", "zorglub AND (outage")
        page.click("form.query-form button[type=submit]")
        expect(page.locator(".query-error mark")).to_have_text("(")
        # Free's replay only: the airline handles have the demo's seeded history behind them,
        # against which the drill's burst would be ordinary.
        page.fill("textarea[name=text]", "zorglub OR free OR freebox")
        page.click("form.query-form button[type=submit]")
        expect(page.locator("table.queries")).to_contain_text("Drill")

        # Mentions of the replay arrive while the stream page stays open.
        page.click(".listening-tabs >> text=Mentions")
        page.wait_for_function("() => document.querySelectorAll('li.mention').length > 0")
        newest = page.locator("li.mention").first.get_attribute("data-mention")
        page.wait_for_function(
            "id => document.querySelector('li.mention').dataset.mention !== id", arg=newest
        )

        # The alert appears on the open alerts page when the detector raises it.
        page.click(".listening-tabs >> text=Alerts")
        # (The demo's own American Airlines alert may already be listed.)
        expect(page.locator("tr.alert-row", has_text="Drill")).to_have_count(0)
        subprocess.run(
            [sys.executable, "-m", "relais.cli", "shell", "-c", RAISE_AN_ALERT],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=120,
        )
        row = page.locator("tr.alert-row", has_text="Drill")
        expect(row).to_be_visible()
        row.locator("a").click()
        expect(page.locator(".alert-detail")).to_contain_text("Ongoing")
        expect(page.locator(".alert-detail")).to_contain_text("zorglub")
        browser.close()
