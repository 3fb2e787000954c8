"""In a real Chromium against `relais run`: an owner connects a Bluesky account on the real PDS."""

from __future__ import annotations

import pytest

from relais.connectors.tests.bluesky_testbed import Testbed
from relais.web.tests.test_browser import page, pytestmark, relais_server  # noqa: F401

pytestmark = [*pytestmark, pytest.mark.bluesky, pytest.mark.timeout(1200)]


def test_an_owner_connects_a_bluesky_account_with_an_app_password(page, pds: Testbed) -> None:  # noqa: F811
    from playwright.sync_api import expect

    pds.create_account("cornerbakery.test", "real-password-1")
    page.goto("/accounts/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "relais-demo")
    page.click("form.login button[type=submit]")
    page.goto("/w/demo/accounts/")

    page.fill("input[name=handle]", "@cornerbakery.test")
    page.fill("input[name=app_password]", "wrong-password")
    page.click("details summary")
    page.fill("input[name=service]", pds.pds)
    page.fill("input[name=plc]", pds.plc)
    page.click("form.connect-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("did not accept")

    page.fill("input[name=app_password]", "real-password-1")
    page.click("details summary")
    page.fill("input[name=service]", pds.pds)
    page.fill("input[name=plc]", pds.plc)
    page.click("form.connect-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("@cornerbakery.test is connected.")
    expect(page.locator("table.accounts")).to_contain_text("@cornerbakery.test")
    expect(page.locator("table.accounts")).to_contain_text("Active")
