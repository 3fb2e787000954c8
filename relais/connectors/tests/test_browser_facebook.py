"""In a real Chromium against `relais run`: an owner connects a Facebook Page, once by pasting its
token and once through Facebook Login (Meta's dialog, a code, then the Page's own token).

The Graph API is the contract server of test_facebook.py on 127.0.0.1 (no Meta server can run
here) and Meta's login dialog a local page (meta_dialog.py); the connection goes browser ->
Relais (its own processes) -> those servers and back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from relais.connectors.tests.meta_dialog import MetaLoginDialog
from relais.connectors.tests.test_facebook import (
    APP_ID,
    TOKEN,
    VERSION,
    WORKSPACE_APP_SECRET,
    GraphApi,
)
from relais.web.tests.test_browser import page, pytestmark, relais_server  # noqa: F401


@pytest.fixture
def graph() -> Iterator[GraphApi]:
    contract = GraphApi()
    yield contract
    contract.server.close()
    assert contract.server.violations == []


def log_in(tab: Any) -> None:
    tab.goto("/accounts/login/")
    tab.fill("#id_username", "demo")
    tab.fill("#id_password", "relais-demo")
    tab.click("form.login button[type=submit]")
    tab.goto("/w/demo/accounts/")


def test_an_owner_connects_a_facebook_page_and_its_instagram_account(page, graph: GraphApi) -> None:  # noqa: F811
    from playwright.sync_api import expect

    log_in(page)
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


@pytest.fixture
def login_graph() -> Iterator[GraphApi]:
    contract = GraphApi(secret=WORKSPACE_APP_SECRET)
    yield contract
    contract.server.close()
    assert contract.server.violations == []


@pytest.fixture
def dialog(login_graph: GraphApi) -> Iterator[MetaLoginDialog]:
    def remember(params: dict[str, str]) -> None:
        login_graph.login_redirect = params.get("redirect_uri", "")

    server = MetaLoginDialog(login_graph.login_code, remember)
    yield server
    server.close()


def fill_login_form(tab: Any, graph: GraphApi, dialog: MetaLoginDialog) -> None:
    form = tab.locator("form.facebook-login-form")
    form.locator("input[name=app_id]").fill(APP_ID)
    form.locator("input[name=app_secret]").fill(WORKSPACE_APP_SECRET)
    form.locator("details summary").click()
    form.locator("input[name=dialog_base]").fill(dialog.base_url)
    form.locator("input[name=graph_base]").fill(graph.server.url)
    form.locator("input[name=graph_version]").fill(VERSION)
    form.locator("button[type=submit]").click()


def test_an_owner_connects_a_page_with_facebook_login(
    page: Any,  # noqa: F811
    login_graph: GraphApi,
    dialog: MetaLoginDialog,
) -> None:
    from playwright.sync_api import expect

    log_in(page)
    fill_login_form(page, login_graph, dialog)
    expect(page.locator("#cancel")).to_be_visible()  # on Meta's dialog now
    page.click("#cancel")
    expect(page.locator(".messages")).to_contain_text("Access was not approved on Facebook")
    assert login_graph.server.requests == []

    fill_login_form(page, login_graph, dialog)
    page.click("#continue")
    expect(page.locator(".messages")).to_contain_text("is connected")
    expect(page.locator("table.accounts")).to_contain_text("Boulangerie Acme")
    expect(page.locator("table.accounts")).to_contain_text("@boulangerie.acme")
    assert dialog.opened[-1]["client_id"] == APP_ID
    assert [r.path.rsplit("/", 1)[-1] for r in login_graph.server.requests] == [
        "access_token", "access_token", "accounts", "me",
    ]  # fmt: skip
