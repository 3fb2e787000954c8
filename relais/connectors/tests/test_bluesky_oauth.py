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
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from joserfc import jwt
from joserfc.jwk import ECKey

from relais.connectors import atproto_oauth
from relais.connectors.atproto_oauth import ClientKeys, DpopSigner, client_for
from relais.connectors.base import CredentialsExpiredError
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


# ---------------------------------------------------------------------------------------------
# A confidential client: the deployment's client keys


def _key(kid: str = "") -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid} if kid else None)


def _keys_setting(*keys: ECKey) -> str:
    return json.dumps([key.as_dict(private=True) for key in keys])


def test_with_client_keys_the_web_client_is_confidential_and_publishes_only_public_keys(
    client, settings
) -> None:
    current, older = _key("k2"), _key("k1")
    settings.ALLOWED_HOSTS = ["relais.example.org"]
    settings.RELAIS = {**settings.RELAIS, "BLUESKY_CLIENT_KEYS": _keys_setting(current, older)}

    metadata = client.get(
        "/hooks/bluesky/client-metadata.json", secure=True, HTTP_HOST="relais.example.org"
    ).json()
    jwks = client.get("/hooks/bluesky/jwks.json", secure=True, HTTP_HOST="relais.example.org")

    assert metadata["token_endpoint_auth_method"] == "private_key_jwt"
    assert metadata["token_endpoint_auth_signing_alg"] == "ES256"
    assert metadata["jwks_uri"] == "https://relais.example.org/hooks/bluesky/jwks.json"
    assert "jwks" not in metadata  # the reference server refuses jwks beside jwks_uri
    assert jwks.status_code == 200
    published = jwks.json()["keys"]
    assert [key["kid"] for key in published] == ["k2", "k1"]
    assert all(key["alg"] == "ES256" and key["use"] == "sig" for key in published)
    assert all("d" not in key for key in published)
    private_parts = {current.as_dict(private=True)["d"], older.as_dict(private=True)["d"]}
    assert not any(part in jwks.content.decode() for part in private_parts)


def test_without_client_keys_there_is_no_jwks_and_the_web_client_is_public(
    client, settings
) -> None:
    settings.RELAIS = {**settings.RELAIS, "BLUESKY_CLIENT_KEYS": ""}

    assert client.get("/hooks/bluesky/jwks.json").status_code == 404
    metadata = client_for("https://relais.example.org/").metadata()
    assert metadata["token_endpoint_auth_method"] == "none"
    assert "jwks_uri" not in metadata
    assert "token_endpoint_auth_signing_alg" not in metadata


def test_the_loopback_client_stays_public_even_with_client_keys(settings) -> None:
    """The spec, and the reference server, allow a loopback client only as a public client."""
    settings.RELAIS = {**settings.RELAIS, "BLUESKY_CLIENT_KEYS": _keys_setting(_key("k1"))}

    loopback = client_for("http://127.0.0.1:8000/")

    assert not loopback.confidential
    assert loopback.jwks_uri == ""


def test_client_keys_are_read_from_json_a_jwks_or_a_file(tmp_path) -> None:
    first, second = _key("k2"), _key()
    one = first.as_dict(private=True)
    jwks = {"keys": [one, second.as_dict(private=True)]}
    path = tmp_path / "bluesky-client-keys.json"
    path.write_text(json.dumps(jwks))

    assert [k.kid for k in atproto_oauth.parse_client_keys(json.dumps(one)).keys] == ["k2"]
    from_file = atproto_oauth.parse_client_keys(str(path))
    from_jwks = atproto_oauth.parse_client_keys(json.dumps(jwks))
    assert [k.kid for k in from_file.keys] == [k.kid for k in from_jwks.keys]
    assert from_file.keys[1].kid == second.thumbprint()  # no kid: named by its thumbprint
    assert from_file.current is not None
    assert from_file.current.kid == "k2"
    assert from_file.by_kid(second.thumbprint()) is not None
    assert not atproto_oauth.parse_client_keys("  ")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "holds no key"),
        ("/nonexistent/relais-keys.json", "cannot read"),
        (json.dumps({"kty": "EC", "crv": "P-384", "x": "a", "y": "b", "d": "c"}), "P-256"),
        (json.dumps(_key("k1").as_dict(private=False)), "private part"),
        (json.dumps([_key("same").as_dict(private=True)] * 2), "same kid"),
    ],
)
def test_wrong_client_keys_are_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=reason):
        atproto_oauth.parse_client_keys(value)


def test_a_client_key_is_never_shown_in_errors_or_representations() -> None:
    private = _key("k1").as_dict(private=True)
    secret = str(private["d"])
    broken = json.dumps([private, {**private, "kid": "k2", "x": "bm90LWEtcG9pbnQ"}])

    with pytest.raises(ImproperlyConfigured, match="key 2: not a valid key") as refused:
        atproto_oauth.parse_client_keys(broken)

    assert secret not in str(refused.value)
    keys = atproto_oauth.parse_client_keys(json.dumps(private))
    assert secret not in repr(keys)
    assert secret not in repr(client_for("https://relais.example.org/", keys=keys))


def test_a_client_assertion_is_a_short_jwt_for_the_issuer_signed_by_the_current_key() -> None:
    key = _key("k1")
    client_id = "https://relais.example.org/hooks/bluesky/client-metadata.json"

    fields = atproto_oauth.client_assertion(key, client_id, "https://bsky.social")
    again = atproto_oauth.client_assertion(key, client_id, "https://bsky.social")

    assert fields["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    public = ECKey.import_key(key.as_dict(private=False))
    decoded = jwt.decode(fields["client_assertion"], public, algorithms=["ES256"])
    assert decoded.header["kid"] == "k1"
    assert decoded.header["alg"] == "ES256"
    claims = decoded.claims
    assert claims["iss"] == claims["sub"] == client_id
    assert claims["aud"] == "https://bsky.social"
    assert 0 < claims["exp"] - claims["iat"] <= 60
    again_claims = jwt.decode(again["client_assertion"], public, algorithms=["ES256"]).claims
    assert again_claims["jti"] != claims["jti"]  # servers refuse a reused assertion


def test_a_session_whose_client_key_was_removed_must_be_connected_again() -> None:
    """The server binds a session to the key that started it: without it, no refresh."""
    credentials = {
        "auth": "oauth",
        "did": "did:plc:brand",
        "client_id": "https://relais.example.org/hooks/bluesky/client-metadata.json",
        "client_kid": "k-retired",
        "issuer": "https://bsky.social",
        "token_endpoint": "https://bsky.social/oauth/token",
        "refresh_token": "ref-1",
    }
    signer = DpopSigner()
    http = atproto_oauth.signed_http(signer, public_only=True)
    keys = ClientKeys((_key("k-new"),))

    with pytest.raises(CredentialsExpiredError, match=r"client key k-retired .* no longer"):
        atproto_oauth.refresh(credentials, http, signer, keys=keys)


def test_new_client_key_prints_a_key_the_setting_accepts(capsys) -> None:
    assert atproto_oauth.main(["new-client-key"]) == 0
    printed = capsys.readouterr().out

    keys = atproto_oauth.parse_client_keys(printed)
    assert keys.current is not None
    assert str(keys.current.kid).startswith("relais-")
    assert atproto_oauth.main([]) == 2
