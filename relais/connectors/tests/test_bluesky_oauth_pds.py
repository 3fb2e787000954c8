"""atproto OAuth's protocol pieces against the real reference PDS (``pytest -m bluesky``).

The whole sign-in, driven in Chromium through the PDS's own pages, is test_browser_bluesky.py.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import httpx
import pytest

from relais.connectors import atproto_oauth
from relais.connectors.atproto_oauth import DpopSigner, OAuthRefusedError, client_for
from relais.connectors.base import ConnectorError
from relais.connectors.client import HttpClient
from relais.connectors.networks.bluesky import begin_oauth, resolve_identity
from relais.connectors.tests.bluesky_testbed import Testbed

pytestmark = [pytest.mark.bluesky, pytest.mark.timeout(600)]

PASSWORD = "pds-test-password-1"  # an account on a throwaway local server


@dataclass
class Exchange:
    url: str
    proof: dict
    status: int
    error: str
    nonce: str


class RecordingTransport(httpx.HTTPTransport):
    """The real transport, noting each request's DPoP proof and the server's answer."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[Exchange] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        proof = request.headers.get("DPoP", "")
        claims = json.loads(base64.urlsafe_b64decode(proof.split(".")[1] + "==")) if proof else {}
        try:
            error = str(response.json().get("error", ""))
        except ValueError:
            error = ""
        self.exchanges.append(
            Exchange(
                str(request.url),
                claims,
                response.status_code,
                error,
                response.headers.get("DPoP-Nonce", ""),
            )
        )
        return response


@pytest.fixture
def allow_local_servers(settings) -> None:
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}


def test_the_pushed_request_is_sent_again_with_the_nonce_the_server_asks_for(
    pds: Testbed, allow_local_servers: None
) -> None:
    handle = f"oauth{time.monotonic_ns() % 10**8}.test"
    account = pds.create_account(handle, PASSWORD)
    identity = resolve_identity(handle, service=pds.pds, plc=pds.plc)
    assert identity.did == account["did"]

    recording = RecordingTransport()
    signer = DpopSigner()
    http = HttpClient(transport=signer.transport(recording))
    server = atproto_oauth.discover(identity.pds, http)
    authorize, pending = atproto_oauth.start(
        client_for("http://127.0.0.1:8000/"),
        server,
        did=identity.did,
        handle=handle,
        pds=identity.pds,
        http=http,
        signer=signer,
    )

    pushed = [e for e in recording.exchanges if e.url == server.par_endpoint]
    assert [(e.status, e.error) for e in pushed] == [(400, "use_dpop_nonce"), (201, "")]
    assert "nonce" not in pushed[0].proof
    assert pushed[1].proof["nonce"] == pushed[0].nonce
    assert pushed[1].proof["htu"] == server.par_endpoint
    assert authorize.startswith(server.authorization_endpoint + "?")
    assert "request_uri=urn" in authorize
    assert pending.issuer == server.issuer
    assert pending.did == identity.did


def test_the_authorization_server_is_found_from_the_accounts_pds(
    pds: Testbed, allow_local_servers: None
) -> None:
    handle = f"oauth{time.monotonic_ns() % 10**8}.test"
    pds.create_account(handle, PASSWORD)

    identity = resolve_identity(handle, service=pds.pds, plc=pds.plc)
    authorize, pending = begin_oauth(identity, client_for("http://127.0.0.1:8000/"))

    # The PDS is its own authorization server; its DID document names it by its public name.
    assert pending.issuer == identity.pds
    assert pending.token_endpoint == f"{identity.pds}/oauth/token"
    assert pending.pds == identity.pds
    assert authorize.startswith(f"{identity.pds}/oauth/authorize?")


def test_a_code_is_only_traded_with_the_server_that_issued_it(
    pds: Testbed, allow_local_servers: None
) -> None:
    handle = f"oauth{time.monotonic_ns() % 10**8}.test"
    pds.create_account(handle, PASSWORD)
    identity = resolve_identity(handle, service=pds.pds, plc=pds.plc)
    _authorize, pending = begin_oauth(identity, client_for("http://127.0.0.1:8000/"))
    signer = DpopSigner(pending.dpop_key)
    http = atproto_oauth.signed_http(signer, public_only=True)

    with pytest.raises(OAuthRefusedError, match="not http://localhost"):
        atproto_oauth.exchange_code(pending, "cod-1", "https://elsewhere.example", http, signer)
    with pytest.raises(OAuthRefusedError, match="invalid_grant"):
        atproto_oauth.exchange_code(pending, "cod-forged", pending.issuer, http, signer)


def test_a_handle_nobody_holds_is_refused(pds: Testbed, allow_local_servers: None) -> None:
    with pytest.raises(ConnectorError, match=r"no Bluesky account is called nobody\.test"):
        resolve_identity("nobody.test", service=pds.pds, plc=pds.plc)


def test_the_servers_are_private_addresses_unless_allowed(pds: Testbed) -> None:
    """Handles resolve through addresses an admin typed: private ones are refused by default."""
    with pytest.raises(ConnectorError, match="private address"):
        resolve_identity("anyone.test", service=pds.pds, plc=pds.plc)
