"""atproto OAuth without a server: who Relais is as a client, its DPoP proofs, its addresses.

The protocol against the real PDS is in test_bluesky_oauth_pds.py and test_browser_bluesky.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from joserfc import jwt
from joserfc.jwk import ECKey

from relais.connectors import atproto_oauth
from relais.connectors.atproto_oauth import DpopSigner, client_for
from relais.connectors.models import ConnectedAccount
from relais.connectors.views import PENDING_BLUESKY, PENDING_BLUESKY_WORKSPACE


def test_served_over_https_relais_is_a_web_client_whose_id_is_its_metadata_address(
    client, settings
) -> None:
    settings.ALLOWED_HOSTS = ["relais.example.org"]

    response = client.get(
        "/hooks/bluesky/client-metadata.json", secure=True, HTTP_HOST="relais.example.org"
    )

    assert response.status_code == 200
    metadata = response.json()
    assert metadata["client_id"] == "https://relais.example.org/hooks/bluesky/client-metadata.json"
    assert metadata["redirect_uris"] == ["https://relais.example.org/hooks/bluesky/oauth/"]
    assert metadata["scope"].split() == ["atproto", "transition:generic", "transition:chat.bsky"]
    assert metadata["dpop_bound_access_tokens"] is True
    assert metadata["token_endpoint_auth_method"] == "none"
    assert metadata["application_type"] == "web"
    assert set(metadata["grant_types"]) == {"authorization_code", "refresh_token"}
    assert metadata == client_for("https://relais.example.org/").metadata()


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "http://[::1]:8000"])
def test_on_a_loopback_address_relais_is_the_specs_loopback_client(origin: str, client) -> None:
    oauth_client = client_for(origin + "/")

    parts = urlsplit(oauth_client.client_id)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://localhost"
    query = parse_qs(parts.query)
    assert query["redirect_uri"] == [origin + "/hooks/bluesky/oauth/"]
    assert query["scope"] == [atproto_oauth.SCOPE]
    assert oauth_client.redirect_uri == origin + "/hooks/bluesky/oauth/"
    # Nothing to publish: the loopback client_id carries everything.
    assert client.get("/hooks/bluesky/client-metadata.json").status_code == 404


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:8000",  # the spec wants the redirect on an IP literal, not a name
        "http://relais.intranet.example",  # http elsewhere than loopback
    ],
)
def test_addresses_a_browser_cannot_be_sent_back_to_are_refused(origin: str) -> None:
    with pytest.raises(atproto_oauth.ClientAddressError):
        client_for(origin)


@pytest.mark.django_db
def test_signing_in_from_a_plain_http_address_explains_what_to_do(client, owner, workspace):
    client.force_login(owner)

    response = client.post(
        reverse("connect_bluesky_oauth", args=[workspace.slug]), {"handle": "brand.bsky.social"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "needs Relais to be served over https" in page
    assert 'value="brand.bsky.social"' in page
    assert PENDING_BLUESKY not in client.session
    assert not ConnectedAccount.objects.filter(network="bluesky").exists()


@pytest.mark.django_db
def test_an_incomplete_handle_is_refused_before_anything_is_called(client, owner, workspace):
    client.force_login(owner)

    response = client.post(
        reverse("connect_bluesky_oauth", args=[workspace.slug]), {"handle": "brand"}
    )

    assert response.status_code == 400
    assert "Enter the full handle" in response.content.decode()


@pytest.mark.django_db
def test_the_return_address_sends_the_browser_on_to_the_workspace_that_started(
    client, owner, workspace
) -> None:
    client.force_login(owner)
    session = client.session
    session[PENDING_BLUESKY_WORKSPACE] = workspace.slug
    session.save()

    response = client.get(
        "/hooks/bluesky/oauth/", {"code": "c1", "state": "s1", "iss": "https://x"}
    )

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == reverse("bluesky_oauth_done", args=[workspace.slug])
    assert parse_qs(target.query) == {"code": ["c1"], "state": ["s1"], "iss": ["https://x"]}


@pytest.mark.django_db
def test_a_return_without_a_started_connection_connects_nothing(client, owner, workspace):
    client.force_login(owner)

    response = client.get(
        reverse("bluesky_oauth_done", args=[workspace.slug]),
        {"code": "c1", "state": "forged", "iss": "https://x"},
        follow=True,
    )

    assert "This connection expired or was started elsewhere" in response.content.decode()
    assert not ConnectedAccount.objects.filter(network="bluesky").exists()


def _claims_and_header(proof: str) -> tuple[dict, dict]:
    header = json.loads(base64.urlsafe_b64decode(proof.split(".", maxsplit=1)[0] + "=="))
    decoded = jwt.decode(proof, ECKey.import_key(header["jwk"]), algorithms=["ES256"])
    return dict(decoded.claims), header


def test_a_dpop_proof_is_signed_by_the_session_key_over_method_address_and_token() -> None:
    signer = DpopSigner()
    signer.nonces["https://pds.example"] = "nonce-1"

    proof = signer.proof(
        "POST", "https://pds.example/xrpc/com.atproto.repo.createRecord?x=1", access_token="tok"
    )
    claims, header = _claims_and_header(proof)

    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    assert "d" not in header["jwk"]  # the public key only
    assert claims["htm"] == "POST"
    assert claims["htu"] == "https://pds.example/xrpc/com.atproto.repo.createRecord"
    assert claims["nonce"] == "nonce-1"
    expected_ath = base64.urlsafe_b64encode(hashlib.sha256(b"tok").digest()).rstrip(b"=")
    assert claims["ath"] == expected_ath.decode()
    again, _header = _claims_and_header(signer.proof("POST", "https://pds.example/x"))
    assert again["jti"] != claims["jti"]
    assert "ath" not in again
    # The key survives being stored: a restored signer signs with the same public key.
    restored = DpopSigner(signer.private_jwk)
    _claims, restored_header = _claims_and_header(restored.proof("GET", "https://a.example/"))
    assert restored_header["jwk"] == header["jwk"]


def test_tokens_are_refreshed_a_little_before_they_end() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = (now + timedelta(minutes=30)).isoformat()
    almost = (now + timedelta(seconds=30)).isoformat()

    assert not atproto_oauth.expires_soon({"expires_at": later}, now=now)
    assert atproto_oauth.expires_soon({"expires_at": almost}, now=now)
    assert not atproto_oauth.expires_soon({}, now=now)  # the server did not say: wait for a 401


def test_the_addresses_the_client_announces_are_the_ones_relais_serves() -> None:
    assert reverse("bluesky_oauth_return") == atproto_oauth.CALLBACK_PATH
    assert reverse("bluesky_client_metadata") == atproto_oauth.METADATA_PATH
