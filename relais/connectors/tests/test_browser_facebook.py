"""In a real Chromium against `relais run`: an owner connects a Facebook Page with its token.

The Graph API is the contract server of test_facebook.py on 127.0.0.1 (no Meta server can run
here); the connection goes browser -> Relais (its own processes) -> that server and back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relais.connectors.tests.test_facebook import TOKEN, VERSION, GraphApi
from relais.web.tests.test_browser import page, pytestmark, relais_server  # noqa: F401


@pytest.fixture
def graph() -> Iterator[GraphApi]:
    contract = GraphApi()
    yield contract
    contract.server.close()
    assert contract.server.violations == []


def test_an_owner_connects_a_facebook_page_and_its_instagram_account(page, graph: GraphApi) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "relais-demo")
    page.click("form.login button[type=submit]")
    page.goto("/w/demo/accounts/")

    form = page.locator("form.facebook-form")
    form.locator("input[name=page_access_token]").fill("EAAexpired")
    form.locator("details summary").click()
    form.locator("input[name=graph_base]").fill(graph.server.url)
    form.locator("input[name=graph_version]").fill(VERSION)
    form.locator("button[type=submit]").click()
    expect(page.locator(".messages")).to_contain_text("Meta did not accept this token")

    form = page.locator("form.facebook-form")
    form.locator("input[name=page_access_token]").fill(TOKEN)
    form.locator("details summary").click()
    form.locator("input[name=graph_base]").fill(graph.server.url)
    form.locator("input[name=graph_version]").fill(VERSION)
    form.locator("button[type=submit]").click()
    expect(page.locator(".messages")).to_contain_text("Boulangerie Acme (Facebook) is connected.")
    expect(page.locator("table.accounts")).to_contain_text("Boulangerie Acme")
    expect(page.locator("table.accounts")).to_contain_text("@boulangerie.acme")
    assert [r.path for r in graph.server.requests] == [f"/{VERSION}/me", f"/{VERSION}/me"]
