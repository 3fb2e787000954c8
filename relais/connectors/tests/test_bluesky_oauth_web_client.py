"""atproto OAuth's web client against the real reference PDS (``pytest -m bluesky``): the PDS
fetches Relais' client metadata document (and, for a confidential client, its JWKS) from an
https ``client_id``, and checks the client assertions Relais signs.

Relais is served over https (a test CA's certificate) at ``https://relais.internal:<port>``; a
PDS of its own trusts that CA and resolves that one name to 127.0.0.1 (see
``bluesky_testbed.TestTls``). The whole sign-in in Chromium is in test_browser_bluesky.py.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from joserfc.jwk import ECKey

from relais.connectors import atproto_oauth
from relais.connectors.actions import (
    bluesky_connector_for,
    do_poll_bluesky_account,
    do_store_credentials,
)
from relais.connectors.atproto_oauth import ClientKeys, OAuthRefusedError, client_for
from relais.connectors.base import CredentialsExpiredError
from relais.connectors.credentials import decrypt_credentials
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.bluesky import begin_oauth, resolve_identity
from relais.connectors.tests import bluesky_testbed
from relais.connectors.tests.bluesky_testbed import Testbed, TestTls
from relais.connectors.tests.test_browser_bluesky import connected_with_bluesky
from relais.tests.live_server import CHROMIUM, CHROMIUM_FLAGS, free_port

pytestmark = [pytest.mark.bluesky, pytest.mark.timeout(600)]

PASSWORD = "pds-test-password-1"  # an account on a throwaway local server


class _QuietHandler(WSGIRequestHandler):
    def setup(self) -> None:
        # The TLS handshake happens here, in the connection's own thread: a client that
        # connects and says nothing cannot stall the server's accept loop.
        connection = self.request
        assert isinstance(connection, ssl.SSLSocket)
        connection.do_handshake()
        super().setup()

    def handle(self) -> None:
        # One request per connection: a kept-alive connection (the PDS keeps its own) would
        # keep its thread, and that thread's database connection, open after the test.
        self.close_connection = True
        self.handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HttpsRelais:
    """This process's Relais (Django's WSGI handler) over https, at the test name.

    ``requests`` lists the paths asked for, so a test can see what the PDS fetched.
    """

    def __init__(self, tls: TestTls) -> None:
        self.requests: list[str] = []
        django_app = WSGIHandler()

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            environ["wsgi.url_scheme"] = "https"  # what a TLS-terminating proxy would say
            self.requests.append(str(environ.get("PATH_INFO", "")))
            return django_app(environ, start_response)

        port = free_port()
        self.server = ThreadedWSGIServer(
            ("127.0.0.1", port), _QuietHandler, allow_reuse_address=False
        )
        self.server.socket = tls.server_context().wrap_socket(
            self.server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.server.set_app(app)
        self.url = f"https://{tls.hostname}:{port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def relais_tls(tmp_path_factory: pytest.TempPathFactory) -> TestTls:
    return bluesky_testbed.make_test_tls(Path(tmp_path_factory.mktemp("relais-tls")))


@pytest.fixture(scope="session")
def web_pds(relais_tls: TestTls) -> Iterator[Testbed]:
    """A PDS that trusts the test CA and resolves ``relais.internal`` to 127.0.0.1."""
    if missing := bluesky_testbed.node_tools_missing():
        pytest.skip(f"the Bluesky testbed needs Node and npm: {missing}")
    testbed = bluesky_testbed.start(tls=relais_tls)
    yield testbed
    testbed.stop()


def client_keys_setting(*keys: ECKey) -> str:
    return json.dumps([key.as_dict(private=True) for key in keys])


def new_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid})


@pytest.fixture
def https_relais(settings: Any, relais_tls: TestTls) -> Iterator[HttpsRelais]:
    """Relais over https at the test name, allowed to call the local PDS."""
    settings.ALLOWED_HOSTS = [relais_tls.hostname]
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    server = HttpsRelais(relais_tls)
    yield server
    server.stop()


def _new_account(pds: Testbed) -> tuple[str, Any]:
    handle = f"web{time.monotonic_ns() % 10**8}.test"
    pds.create_account(handle, PASSWORD)
    return handle, resolve_identity(handle, service=pds.pds, plc=pds.plc)


def test_the_pds_fetches_the_confidential_clients_metadata_and_keys_and_accepts_its_assertion(
    web_pds: Testbed, https_relais: HttpsRelais, settings: Any
) -> None:
    current, older = new_key("k-current"), new_key("k-older")
    settings.RELAIS = {
        **settings.RELAIS,
        "BLUESKY_CLIENT_KEYS": client_keys_setting(current, older),
    }
    _handle, identity = _new_account(web_pds)
    client = client_for(https_relais.url + "/")
    assert client.confidential
    assert client.client_id == f"{https_relais.url}/hooks/bluesky/client-metadata.json"

    authorize, pending = begin_oauth(identity, client)

    # The PDS read the document at the client_id, then the JWKS it names, over https.
    assert atproto_oauth.METADATA_PATH in https_relais.requests
    assert atproto_oauth.JWKS_PATH in https_relais.requests
    assert authorize.startswith(f"{identity.pds}/oauth/authorize?")
    assert "request_uri=urn" in authorize
    assert pending.client_id == client.client_id
    assert pending.client_kid == "k-current"  # the session will be bound to this key


def test_an_assertion_signed_by_a_key_relais_does_not_publish_is_refused(
    web_pds: Testbed, https_relais: HttpsRelais, settings: Any
) -> None:
    settings.RELAIS = {
        **settings.RELAIS,
        "BLUESKY_CLIENT_KEYS": client_keys_setting(new_key("k-published")),
    }
    _handle, identity = _new_account(web_pds)
    published = client_for(https_relais.url + "/")
    begin_oauth(identity, published)  # the PDS now knows the client and its keys

    # The same client_id, but the assertion is signed by a key that is not in the JWKS.
    impostor = client_for(https_relais.url + "/", keys=ClientKeys((new_key("k-published"),)))
    with pytest.raises(OAuthRefusedError, match="invalid_client"):
        begin_oauth(identity, impostor)


def test_without_keys_the_web_client_is_public_and_the_pds_accepts_it(
    web_pds: Testbed, https_relais: HttpsRelais
) -> None:
    _handle, identity = _new_account(web_pds)
    client = client_for(https_relais.url + "/")
    assert not client.confidential

    authorize, pending = begin_oauth(identity, client)

    assert atproto_oauth.METADATA_PATH in https_relais.requests
    assert atproto_oauth.JWKS_PATH not in https_relais.requests
    assert "request_uri=urn" in authorize
    assert pending.client_kid == ""


# ---------------------------------------------------------------------------------------------
# The whole sign-in in Chromium, Relais a confidential web client


@pytest.fixture
def https_page(
    https_relais: HttpsRelais, relais_tls: TestTls, client: Any, owner: Any, monkeypatch
):
    """Chromium signed in to the https Relais; it too resolves the test name to 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    client.force_login(owner)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    flags = [*CHROMIUM_FLAGS, f"--host-resolver-rules=MAP {relais_tls.hostname} 127.0.0.1"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        context = browser.new_context(
            base_url=https_relais.url, locale="en-US", ignore_https_errors=True
        )
        context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": cookie,
                    "url": https_relais.url,
                }
            ]
        )
        context.route("**/events/**", lambda route: route.abort())
        opened = context.new_page()
        opened.set_default_timeout(30_000)
        yield opened
        browser.close()


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
@pytest.mark.django_db(transaction=True)
def test_a_confidential_clients_session_is_bound_to_its_key_through_a_key_rotation(
    https_page: Any, web_pds: Testbed, workspace: Any, settings: Any
) -> None:
    from playwright.sync_api import expect

    first, second = new_key("k-first"), new_key("k-second")
    settings.RELAIS = {**settings.RELAIS, "BLUESKY_CLIENT_KEYS": client_keys_setting(first, second)}

    account = connected_with_bluesky(https_page, web_pds, workspace)

    credentials = decrypt_credentials(account.credentials)
    assert credentials["client_id"] == (
        f"{https_page.url.split('/w/')[0]}/hooks/bluesky/client-metadata.json"
    )
    assert credentials["client_kid"] == "k-first"
    session = bluesky_connector_for(account).service.query(
        "com.atproto.server.getSession", {}, token=credentials["access_token"]
    )
    assert session["did"] == credentials["did"]

    # The second key becomes the current one: the session keeps refreshing with its own key.
    settings.RELAIS = {**settings.RELAIS, "BLUESKY_CLIENT_KEYS": client_keys_setting(second, first)}
    do_store_credentials(account, {**credentials, "access_token": "no-longer-valid"})
    account.refresh_from_db()
    bluesky_connector_for(account).check_session()
    renewed = decrypt_credentials(ConnectedAccount.objects.get(pk=account.pk).credentials)
    assert renewed["refresh_token"] != credentials["refresh_token"]
    assert renewed["client_kid"] == "k-first"

    # The server itself holds the session to that key: another published key is refused (and
    # the server then deletes the session: Relais never signs a refresh with another key).
    signer = atproto_oauth.DpopSigner(renewed["dpop_key"])
    http = atproto_oauth.signed_http(signer, public_only=False)
    with pytest.raises(CredentialsExpiredError, match="different key"):
        atproto_oauth.refresh({**renewed, "client_kid": "k-second"}, http, signer)

    # The first key is retired: its sessions end, and the account asks to be connected again.
    settings.RELAIS = {**settings.RELAIS, "BLUESKY_CLIENT_KEYS": client_keys_setting(second)}
    account.refresh_from_db()
    do_store_credentials(
        account,
        {
            **decrypt_credentials(account.credentials),
            "access_token": "no-longer-valid",
        },
    )
    do_poll_bluesky_account(account.pk)
    account.refresh_from_db()
    assert account.status == AccountStatus.RECONNECT_NEEDED
    assert "client key k-first" in account.last_error
    https_page.reload()
    expect(https_page.locator("table.accounts tr", has_text=account.handle)).to_contain_text(
        "Reconnect needed"
    )


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
@pytest.mark.django_db(transaction=True)
def test_a_confidential_session_revoked_with_its_key_makes_the_account_reconnect(
    https_page: Any, web_pds: Testbed, workspace: Any, settings: Any
) -> None:
    key = new_key("k-only")
    settings.RELAIS = {**settings.RELAIS, "BLUESKY_CLIENT_KEYS": client_keys_setting(key)}
    account = connected_with_bluesky(https_page, web_pds, workspace)
    credentials = decrypt_credentials(account.credentials)
    assert credentials["client_kid"] == "k-only"

    # The revocation is authenticated like the other token calls: the server accepts it.
    signer = atproto_oauth.DpopSigner(credentials["dpop_key"])
    atproto_oauth.revoke(credentials, atproto_oauth.signed_http(signer, public_only=False), signer)

    do_poll_bluesky_account(account.pk)
    account.refresh_from_db()
    assert account.status == AccountStatus.RECONNECT_NEEDED
    assert "Bluesky ended the authorization" in account.last_error
