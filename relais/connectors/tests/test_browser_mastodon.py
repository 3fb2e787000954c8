"""In a real Chromium against `relais run`: an owner connects a Mastodon account through the
server's approval page (OAuth authorization code), once refusing and once approving.

The server is the contract server of test_mastodon.py, which also serves the approval page a
Mastodon server shows at /oauth/authorize: the browser really leaves Relais and comes back.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from relais.connectors.tests.test_mastodon import MastodonServer, fixture
from relais.tests.http_server import respond
from relais.web.tests.test_browser import page, pytestmark, relais_server  # noqa: F401

pytestmark = [*pytestmark, pytest.mark.timeout(600)]


class ApprovingServer(MastodonServer):
    """Serves the approval page: Authorize or Deny send the browser back to Relais."""

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        if parts.path == "/favicon.ico":  # the browser asks; not part of the API contract
            handler.send_error(404)
            return
        if parts.path != "/oauth/authorize":
            super().handle(handler)
            return
        params = {key: values[0] for key, values in parse_qs(parts.query).items()}
        back = params.get("redirect_uri", "")
        state = params.get("state", "")
        approve = f"{back}?{urlencode({'code': 'approved-code', 'state': state})}"
        deny = f"{back}?{urlencode({'error': 'access_denied', 'state': state})}"
        body = (
            "<!doctype html><title>Authorization required</title>"
            f"<p>Relais would like to access your account ({html.escape(params.get('scope', ''))})"
            f'<a id="authorize" href="{html.escape(approve)}">Authorize</a>'
            f'<a id="deny" href="{html.escape(deny)}">Deny</a>'
        ).encode()
        respond(handler, 200, body, {"Content-Type": "text/html; charset=utf-8"})


@pytest.fixture
def server() -> Iterator[ApprovingServer]:
    known = {s["id"]: s for s in fixture("statuses.json").values()}
    contract = ApprovingServer(list(fixture("notifications.json")["notifications"]), known)
    yield contract
    contract.close()
    assert contract.violations == []


def test_an_owner_connects_a_mastodon_account_through_the_servers_approval(
    page: Any,  # noqa: F811
    server: ApprovingServer,
) -> None:
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "relais-demo")
    page.click("form.login button[type=submit]")

    page.goto("/w/demo/accounts/")
    page.fill("input[name=instance]", server.url)
    page.click("form[action$='/accounts/mastodon/'] button[type=submit]")
    expect(page.locator("#deny")).to_be_visible()  # on the server's own page now
    page.click("#deny")
    expect(page.locator(".messages")).to_contain_text("Access was not approved")
    expect(page.locator("table.accounts")).not_to_contain_text("trwnh@127.0.0.1")

    page.fill("input[name=instance]", server.url)
    page.click("form[action$='/accounts/mastodon/'] button[type=submit]")
    page.click("#authorize")
    expect(page.locator(".messages")).to_contain_text("@trwnh@127.0.0.1 is connected.")
    expect(page.locator("table.accounts")).to_contain_text("trwnh@127.0.0.1")
    expect(page.locator("table.accounts")).to_contain_text("Active")
    token_requests = server.served("/oauth/token")
    assert len(token_requests) == 1
    assert token_requests[0].form()["code"] == "approved-code"
