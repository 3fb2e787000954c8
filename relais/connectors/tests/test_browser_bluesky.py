"""In a real Chromium: an owner signs a Bluesky account in through atproto OAuth, on the real
reference PDS's own sign-in and consent pages, without any app password.

Relais runs in this test's process (so the test can read what it stored) on 127.0.0.1, where it
is the spec's loopback client. The account then posts through its DPoP session, its tokens are
refreshed, and once the session is revoked on the PDS the account asks to be reconnected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from pytest_django.live_server_helper import LiveServer

from relais.connectors import atproto_oauth
from relais.connectors.actions import (
    bluesky_connector_for,
    do_poll_bluesky_account,
    do_store_credentials,
)
from relais.connectors.base import OutboundPost
from relais.connectors.client import HttpClient
from relais.connectors.credentials import decrypt_credentials
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.bluesky import AtUri, Xrpc
from relais.connectors.tests.bluesky_testbed import Testbed
from relais.connectors.tests.test_bluesky_oauth_pds import RecordingTransport
from relais.tests.live_server import CHROMIUM, CHROMIUM_FLAGS

pytestmark = [
    pytest.mark.bluesky,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
    pytest.mark.timeout(600),
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "pds-test-password-1"  # an account on a throwaway local server


@pytest.fixture
def relais(settings: Any) -> Iterator[str]:
    """Relais on 127.0.0.1, allowed to call the local PDS (a private address)."""
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    server = LiveServer("127.0.0.1:0")
    yield server.url
    # Each request thread closes the shared test connection when it ends; one still ending after
    # stop() (a keep-alive socket the closing browser just dropped) would close it unshared.
    for thread in threading.enumerate():
        if thread.name.endswith("(process_request_thread)"):
            thread.join(timeout=10)
    server.stop()


@pytest.fixture
def page(relais: str, client: Any, owner: Any, monkeypatch: Any) -> Iterator[Any]:
    """A Chromium page signed in to Relais as the workspace's owner."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own database reads
    # are plain synchronous calls all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    client.force_login(owner)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(base_url=relais, locale="en-US")
        context.add_cookies(
            [{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": relais}]
        )
        # The live updates (server-sent events) need the ASGI server; this one speaks WSGI.
        context.route("**/events/**", lambda route: route.abort())
        opened = context.new_page()
        opened.set_default_timeout(30_000)
        yield opened
        browser.close()


def sign_in_with_bluesky(page: Any, workspace: Any, pds: Testbed, handle: str) -> None:
    """From Relais' accounts page to the PDS's sign-in, then its consent page."""
    from playwright.sync_api import expect

    page.goto(f"/w/{workspace.slug}/accounts/")
    form = page.locator("form.bluesky-oauth-form")
    form.locator("input[name=handle]").fill(handle)
    form.locator("summary").click()
    form.locator("input[name=service]").fill(pds.pds)
    form.locator("input[name=plc]").fill(pds.plc)
    form.locator("button[type=submit]").click()
    expect(page.locator("input[name=password]")).to_be_visible()  # the PDS's own page now
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()


def connected_with_bluesky(page: Any, pds: Testbed, workspace: Any) -> ConnectedAccount:
    """A new PDS account connected to the workspace through the PDS's sign-in and consent."""
    from playwright.sync_api import expect

    handle = f"brand{time.monotonic_ns() % 10**8}.test"
    pds.create_account(handle, PASSWORD)
    sign_in_with_bluesky(page, workspace, pds, handle)
    page.get_by_role("button", name="Authorize").click()
    expect(page.locator(".messages")).to_contain_text(f"@{handle} is connected.")
    return ConnectedAccount.objects.get(workspace=workspace, network="bluesky", handle=handle)


def test_an_owner_signs_in_with_bluesky_and_the_account_posts_through_its_dpop_session(
    page: Any, pds: Testbed, workspace: Any
) -> None:
    from playwright.sync_api import expect

    account = connected_with_bluesky(page, pds, workspace)
    handle = account.handle
    row = page.locator("table.accounts tr", has_text=handle)
    expect(row).to_contain_text("Active")
    credentials = decrypt_credentials(account.credentials)
    assert credentials["auth"] == "oauth"
    assert "app_password" not in credentials
    assert credentials["access_token"] not in account.credentials  # stored encrypted
    assert set(credentials["scope"].split()) >= {"atproto", "transition:generic"}

    # Towards the PDS too, a proof without the nonce it wants is refused once, then accepted.
    signer = atproto_oauth.DpopSigner(credentials["dpop_key"])
    recording = RecordingTransport()
    pds_xrpc = Xrpc(
        account.settings["service"],
        HttpClient(transport=signer.transport(recording)),
        dpop=signer,
    )
    session = pds_xrpc.query("com.atproto.server.getSession", {}, token=credentials["access_token"])
    assert session["did"] == credentials["did"]
    assert [(e.status, e.error) for e in recording.exchanges] == [
        (401, "use_dpop_nonce"),
        (200, ""),
    ]
    assert recording.exchanges[1].proof["nonce"] == recording.exchanges[0].nonce
    assert "ath" in recording.exchanges[1].proof

    # A post through the DPoP session, read back on the PDS.
    text = "Signed in without an app password #relais"
    published = bluesky_connector_for(account).publish(
        OutboundPost(text=text), idempotency_key="k1"
    )
    uri = AtUri.parse(published.remote_id)
    record = httpx.get(
        f"{pds.pds}/xrpc/com.atproto.repo.getRecord",
        params={"repo": uri.repo, "collection": uri.collection, "rkey": uri.rkey},
        timeout=10,
    ).json()
    assert uri.repo == credentials["did"]
    assert record["value"]["text"] == text
    assert record["value"]["facets"][0]["features"][0]["tag"] == "relais"

    # The access token stops working: the refresh token buys new ones, rotated and stored.
    do_store_credentials(account, {**credentials, "access_token": "no-longer-valid"})
    account.refresh_from_db()
    bluesky_connector_for(account).check_session()
    renewed = decrypt_credentials(ConnectedAccount.objects.get(pk=account.pk).credentials)
    assert renewed["access_token"] not in {"no-longer-valid", credentials["access_token"]}
    assert renewed["refresh_token"] != credentials["refresh_token"]
    assert renewed["dpop_key"] == credentials["dpop_key"]  # the tokens stay bound to one key

    # The session is revoked on the PDS: the account asks to be connected again.
    signer = atproto_oauth.DpopSigner(renewed["dpop_key"])
    atproto_oauth.revoke(renewed, atproto_oauth.signed_http(signer, public_only=True), signer)
    do_poll_bluesky_account(account.pk)
    account.refresh_from_db()
    assert account.status == AccountStatus.RECONNECT_NEEDED
    assert "Bluesky ended the authorization" in account.last_error
    page.reload()
    expect(page.locator("table.accounts tr", has_text=handle)).to_contain_text("Reconnect needed")


def test_an_owner_who_denies_access_on_the_pds_connects_nothing(
    page: Any, pds: Testbed, workspace: Any
) -> None:
    from playwright.sync_api import expect

    handle = f"brand{time.monotonic_ns() % 10**8}.test"
    pds.create_account(handle, PASSWORD)

    sign_in_with_bluesky(page, workspace, pds, handle)
    page.get_by_role("button", name="Deny access").click()

    expect(page.locator(".messages")).to_contain_text("Access was not approved on Bluesky")
    assert not ConnectedAccount.objects.filter(network="bluesky", handle=handle).exists()


def test_two_processes_refreshing_in_turn_keep_the_session(
    page: Any, pds: Testbed, workspace: Any
) -> None:
    account = connected_with_bluesky(page, pds, workspace)

    # Two processes (the stream reader, a worker) loaded the same tokens.
    first, second = bluesky_connector_for(account), bluesky_connector_for(account)
    first.credentials["access_token"] = "no-longer-valid"
    first.check_session()  # refreshes: the stored refresh token rotates
    second.credentials["access_token"] = "no-longer-valid"
    second.check_session()  # must use the rotated tokens, not replay its old refresh token

    account.refresh_from_db()
    bluesky_connector_for(account).check_session()
    assert second.credentials["refresh_token"] == first.credentials["refresh_token"]
    assert account.status == AccountStatus.ACTIVE
