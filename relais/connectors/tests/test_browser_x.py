"""In a real Chromium against `relais run`: an owner connects an X account with the workspace's
own app keys through X's approval page (OAuth 2.0 with PKCE), once cancelling, once approving.

X's API is the contract server of test_x.py on 127.0.0.1 and its approval page
(x.com/i/oauth2/authorize) a local page below; no X server can run here. The browser really
leaves Relais and comes back, and Relais trades the code with the verifier the page's challenge
was made from.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from relais.connectors.tests.test_x import CLIENT_ID, CLIENT_SECRET, XApi
from relais.tests.http_server import LocalHttpServer, respond
from relais.web.tests.test_browser import page, pytestmark, relais_server  # noqa: F401


class XApprovalPage(LocalHttpServer):
    """X's /i/oauth2/authorize: Authorize app or Cancel send the browser back to Relais."""

    def __init__(self) -> None:
        self.opened: list[dict[str, str]] = []
        super().__init__()

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/i/oauth2/authorize"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        if parts.path != "/i/oauth2/authorize":
            respond(handler, 404, b"not found", {"Content-Type": "text/plain"})
            return
        params = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.opened.append(params)
        back, state = params.get("redirect_uri", ""), params.get("state", "")
        approve = f"{back}?{urlencode({'state': state, 'code': 'bWF5YmUtYXBwcm92ZWQ'})}"
        cancel = f"{back}?{urlencode({'error': 'access_denied', 'state': state})}"
        body = (
            "<!doctype html><title>Authorize app</title>"
            f"<p>{html.escape(params.get('client_id', ''))} wants to access your X account"
            f" ({html.escape(params.get('scope', ''))}).</p>"
            f'<a id="authorize" href="{html.escape(approve)}">Authorize app</a> '
            f'<a id="cancel" href="{html.escape(cancel)}">Cancel</a>'
        ).encode()
        respond(handler, 200, body, {"Content-Type": "text/html; charset=utf-8"})


@pytest.fixture
def api() -> Iterator[XApi]:
    contract = XApi()
    yield contract
    contract.server.close()
    assert contract.server.violations == []


@pytest.fixture
def approval() -> Iterator[XApprovalPage]:
    server = XApprovalPage()
    yield server
    server.close()


def start_connection(tab: Any, api: XApi, approval: XApprovalPage) -> None:
    form = tab.locator("form[action$='/accounts/x/']")
    form.locator("input[name=client_id]").fill(CLIENT_ID)
    form.locator("input[name=client_secret]").fill(CLIENT_SECRET)
    form.locator("details summary").click()
    form.locator("input[name=api_base]").fill(api.server.url)
    form.locator("input[name=authorize_url]").fill(approval.authorize_url)
    form.locator("button[type=submit]").click()


def test_an_owner_connects_an_x_account_through_xs_approval_page(
    page: Any,  # noqa: F811
    api: XApi,
    approval: XApprovalPage,
) -> None:
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "relais-demo")
    page.click("form.login button[type=submit]")
    page.goto("/w/demo/accounts/")

    start_connection(page, api, approval)
    expect(page.locator("#cancel")).to_be_visible()  # on X's page now
    page.click("#cancel")
    expect(page.locator(".messages")).to_contain_text("Access was not approved on X")
    assert api.server.requests == []

    start_connection(page, api, approval)
    page.click("#authorize")
    expect(page.locator(".messages")).to_contain_text("@acmesupport is connected.")
    expect(page.locator("table.accounts")).to_contain_text("@acmesupport")

    opened = approval.opened[-1]
    assert (opened["client_id"], opened["code_challenge_method"]) == (CLIENT_ID, "S256")
    token = api.server.served("/2/oauth2/token")[0]
    verifier = token.form()["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge.decode().rstrip("=") == opened["code_challenge"]
    assert token.headers["authorization"].startswith("Basic ")  # a confidential client
    me = api.server.served("/2/users/me")[0]
    assert me.headers["authorization"] == f"Bearer {api.access_token}"  # the token X issued
