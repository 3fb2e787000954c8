"""atproto OAuth for Bluesky accounts: connect without an app password.

The flow the AT Protocol's OAuth profile asks of a client (atproto.com/specs/oauth):

1. The handle resolves to a DID, whose document names the account's PDS; the PDS's
   ``/.well-known/oauth-protected-resource`` names its authorization server, whose
   ``/.well-known/oauth-authorization-server`` gives the endpoints. The issuer is checked against
   the address it was found at.
2. A pushed authorization request (PAR) carries the client, the redirect address, the scope,
   ``state`` and a PKCE S256 challenge; the browser is then sent to the authorization endpoint
   with the ``request_uri`` it returned.
3. The browser comes back with ``code``, ``state`` and ``iss``; the code and the PKCE verifier
   buy DPoP-bound tokens whose ``sub`` must be the DID resolved in step 1.
4. Every call afterwards (token refresh, and each request to the PDS) carries a DPoP proof: a JWT
   signed with the session's own ES256 key over the method and address (and, towards the PDS,
   the access token's hash). Servers hand out nonces (``DPoP-Nonce``) that later proofs must
   carry; a request refused with ``use_dpop_nonce`` is sent again once with the fresh nonce.

Relais is a public client. Served over https its ``client_id`` is the address of its client
metadata document (``bluesky_client_metadata``); opened on a loopback address over http (a
self-hosted instance on one machine), it is the spec's loopback client, ``http://localhost?...``,
which authorization servers accept without fetching anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from relais.connectors.base import ConnectorError, CredentialsExpiredError
from relais.connectors.client import HttpClient
from relais.connectors.netguard import PublicOnlyTransport

SCOPE = "atproto transition:generic transition:chat.bsky"
CALLBACK_PATH = "/hooks/bluesky/oauth/"
METADATA_PATH = "/hooks/bluesky/client-metadata.json"
LOOPBACK_CLIENT = "http://localhost"
REFRESH_MARGIN = timedelta(seconds=60)  # refresh a little before the access token ends
NONCE_ERROR = "use_dpop_nonce"


class OAuthRefusedError(ConnectorError):
    """The authorization server or the PDS refused a step, with its reason."""


# ---------------------------------------------------------------------------------------------
# Client identity


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    redirect_uri: str
    scope: str = SCOPE

    def metadata(self) -> dict[str, Any]:
        """The client metadata document a web client serves at its ``client_id``."""
        origin = f"{urlsplit(self.client_id).scheme}://{urlsplit(self.client_id).netloc}"
        return {
            "client_id": self.client_id,
            "client_name": "Relais",
            "client_uri": origin,
            "application_type": "web",
            "redirect_uris": [self.redirect_uri],
            "scope": self.scope,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "dpop_bound_access_tokens": True,
        }


class ClientAddressError(ValueError):
    """Relais is reached at an address atproto OAuth cannot send a browser back to."""


def is_loopback(host: str) -> bool:
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def client_for(public_url: str) -> OAuthClient:
    """The OAuth client Relais is when reached at ``public_url`` (scheme and host).

    https: a web client whose metadata document Relais serves. http on a loopback address: the
    loopback client, which the spec allows only with a redirect to 127.0.0.1 or [::1].
    """
    parts = urlsplit(public_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.scheme == "https":
        return OAuthClient(origin + METADATA_PATH, origin + CALLBACK_PATH)
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        redirect_uri = origin + CALLBACK_PATH
        query = urlencode({"redirect_uri": redirect_uri, "scope": SCOPE})
        return OAuthClient(f"{LOOPBACK_CLIENT}?{query}", redirect_uri)
    raise ClientAddressError(public_url)


# ---------------------------------------------------------------------------------------------
# DPoP


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class DpopSigner:
    """Signs DPoP proofs with one session's key and remembers each server's latest nonce."""

    def __init__(self, private_jwk: dict[str, Any] | None = None) -> None:
        self.key = ECKey.import_key(private_jwk) if private_jwk else ECKey.generate_key("P-256")
        self.nonces: dict[str, str] = {}

    @property
    def private_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=True))

    def proof(self, method: str, url: str, *, access_token: str = "") -> str:
        parts = urlsplit(url)
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": f"{parts.scheme}://{parts.netloc}{parts.path}",  # no query, no fragment
            "iat": int(time.time()),
        }
        if nonce := self.nonces.get(_origin(url)):
            claims["nonce"] = nonce
        if access_token:
            claims["ath"] = _b64(hashlib.sha256(access_token.encode()).digest())
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.as_dict(private=False)}
        return jwt.encode(header, claims, self.key, algorithms=["ES256"])

    def transport(self, inner: httpx.BaseTransport) -> httpx.BaseTransport:
        return _NonceRecorder(inner, self.nonces)

    def send(
        self,
        http: HttpClient,
        method: str,
        url: str,
        *,
        access_token: str = "",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request with a proof; sent again once when the server wants a fresh nonce."""
        for attempt in (1, 2):
            proof_headers = {"DPoP": self.proof(method, url, access_token=access_token)}
            if access_token:
                proof_headers["Authorization"] = f"DPoP {access_token}"
            try:
                return http.request(
                    method, url, headers={**(headers or {}), **proof_headers}, **kwargs
                )
            except ConnectorError as exc:
                if attempt == 2 or oauth_error_code(exc) != NONCE_ERROR:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


class _NonceRecorder(httpx.BaseTransport):
    """Keeps the ``DPoP-Nonce`` of every answer, per server, for the next proofs."""

    def __init__(self, inner: httpx.BaseTransport, nonces: dict[str, str]) -> None:
        self.inner = inner
        self.nonces = nonces

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if nonce := response.headers.get("DPoP-Nonce"):
            self.nonces[_origin(str(request.url))] = nonce
        return response

    def close(self) -> None:
        self.inner.close()


def oauth_error_code(error: ConnectorError) -> str:
    """The OAuth ``error`` of an answer (``invalid_grant``, ``use_dpop_nonce``...), or ""."""
    try:
        body = json.loads(error.body) if error.body else {}
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def signed_http(signer: DpopSigner, *, public_only: bool, base_url: str = "") -> HttpClient:
    """An HttpClient whose answers feed ``signer``'s nonces (public addresses only if asked)."""
    inner = PublicOnlyTransport() if public_only else httpx.HTTPTransport()
    return HttpClient(base_url=base_url, transport=signer.transport(inner))


# ---------------------------------------------------------------------------------------------
# Discovery


@dataclass(frozen=True)
class AuthorizationServer:
    issuer: str
    par_endpoint: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str = ""


def discover(pds: str, http: HttpClient) -> AuthorizationServer:
    """The authorization server of a PDS, from the two documents the spec names."""
    resource = _json(http, f"{pds.rstrip('/')}/.well-known/oauth-protected-resource")
    servers = resource.get("authorization_servers") or []
    if not servers:
        raise OAuthRefusedError(f"{pds} names no authorization server")
    issuer = str(servers[0]).rstrip("/")
    meta = _json(http, f"{issuer}/.well-known/oauth-authorization-server")
    if str(meta.get("issuer", "")).rstrip("/") != issuer:
        raise OAuthRefusedError(f"{issuer} describes another issuer ({meta.get('issuer')})")
    try:
        return AuthorizationServer(
            issuer=issuer,
            par_endpoint=str(meta["pushed_authorization_request_endpoint"]),
            authorization_endpoint=str(meta["authorization_endpoint"]),
            token_endpoint=str(meta["token_endpoint"]),
            revocation_endpoint=str(meta.get("revocation_endpoint") or ""),
        )
    except KeyError as exc:
        raise OAuthRefusedError(f"{issuer} does not say its {exc.args[0]}") from exc


def _json(http: HttpClient, url: str) -> dict[str, Any]:
    try:
        data = http.request("GET", url).json()
    except ValueError as exc:
        raise OAuthRefusedError(f"{url} is not JSON") from exc
    if not isinstance(data, dict):
        raise OAuthRefusedError(f"{url} is not a JSON object")
    return data


# ---------------------------------------------------------------------------------------------
# The authorization


@dataclass(frozen=True)
class PendingAuthorization:
    """What is kept (encrypted, in the admin's session) until the browser comes back."""

    client_id: str
    redirect_uri: str
    state: str
    verifier: str
    dpop_key: dict[str, Any]
    issuer: str
    token_endpoint: str
    revocation_endpoint: str
    did: str
    handle: str
    pds: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def start(
    client: OAuthClient,
    server: AuthorizationServer,
    *,
    did: str,
    handle: str,
    pds: str,
    http: HttpClient,
    signer: DpopSigner,
) -> tuple[str, PendingAuthorization]:
    """Push the authorization request; where to send the browser, and what to keep."""
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(24)
    form = {
        "client_id": client.client_id,
        "response_type": "code",
        "redirect_uri": client.redirect_uri,
        "scope": client.scope,
        "state": state,
        "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
        "login_hint": handle,
    }
    answer = _token_call(http, signer, server.par_endpoint, form, "the authorization request")
    request_uri = str(answer.get("request_uri") or "")
    if not request_uri:
        raise OAuthRefusedError(f"{server.issuer} gave no request_uri")
    query = urlencode({"client_id": client.client_id, "request_uri": request_uri})
    pending = PendingAuthorization(
        client_id=client.client_id,
        redirect_uri=client.redirect_uri,
        state=state,
        verifier=verifier,
        dpop_key=signer.private_jwk,
        issuer=server.issuer,
        token_endpoint=server.token_endpoint,
        revocation_endpoint=server.revocation_endpoint,
        did=did,
        handle=handle,
        pds=pds,
    )
    return f"{server.authorization_endpoint}?{query}", pending


def exchange_code(
    pending: PendingAuthorization, code: str, issuer: str, http: HttpClient, signer: DpopSigner
) -> dict[str, Any]:
    """The tokens for the code the browser brought back, as the account's credentials."""
    if issuer.rstrip("/") != pending.issuer:
        raise OAuthRefusedError(f"the answer came from {issuer!r}, not {pending.issuer}")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": pending.redirect_uri,
        "client_id": pending.client_id,
        "code_verifier": pending.verifier,
    }
    tokens = _token_call(http, signer, pending.token_endpoint, form, "the code")
    if tokens.get("sub") != pending.did:
        raise OAuthRefusedError(f"the tokens are for {tokens.get('sub')!r}, not {pending.did}")
    return {
        "auth": "oauth",
        "did": pending.did,
        "client_id": pending.client_id,
        "issuer": pending.issuer,
        "token_endpoint": pending.token_endpoint,
        "revocation_endpoint": pending.revocation_endpoint,
        "dpop_key": signer.private_jwk,
        **_token_fields(tokens),
    }


def refresh(credentials: dict[str, Any], http: HttpClient, signer: DpopSigner) -> dict[str, Any]:
    """New tokens for the stored refresh token (which the server rotates: keep the new one).

    A refused refresh (expired, revoked, already used) is a ``CredentialsExpiredError``: the
    account must be connected again.
    """
    form = {
        "grant_type": "refresh_token",
        "refresh_token": str(credentials.get("refresh_token", "")),
        "client_id": str(credentials.get("client_id", "")),
    }
    try:
        tokens = _token_call(http, signer, str(credentials["token_endpoint"]), form, "refresh")
    except OAuthRefusedError as exc:
        raise CredentialsExpiredError(f"Bluesky ended the authorization ({exc})") from exc
    if tokens.get("sub") != credentials.get("did"):
        raise CredentialsExpiredError("Bluesky refreshed the tokens of another account")
    return {**credentials, **_token_fields(tokens)}


def revoke(credentials: dict[str, Any], http: HttpClient, signer: DpopSigner) -> None:
    """Tell the server to end the session (its refresh token, hence its access tokens)."""
    endpoint = str(credentials.get("revocation_endpoint") or "")
    if endpoint:
        form = {
            "token": str(credentials.get("refresh_token", "")),
            "client_id": str(credentials.get("client_id", "")),
        }
        _token_call(http, signer, endpoint, form, "revocation")


def expires_soon(credentials: dict[str, Any], *, now: datetime | None = None) -> bool:
    expires_at = str(credentials.get("expires_at") or "")
    if not expires_at:
        return False
    moment = datetime.fromisoformat(expires_at)
    return moment - REFRESH_MARGIN <= (now or datetime.now(UTC))


def _token_fields(tokens: dict[str, Any]) -> dict[str, Any]:
    if str(tokens.get("token_type", "")).lower() != "dpop" or not tokens.get("access_token"):
        raise OAuthRefusedError("the server did not issue DPoP-bound tokens")
    expires_in = tokens.get("expires_in")
    expires_at = (
        (datetime.now(UTC) + timedelta(seconds=float(expires_in))).isoformat()
        if isinstance(expires_in, int | float)
        else ""
    )
    return {
        "access_token": str(tokens["access_token"]),
        "refresh_token": str(tokens.get("refresh_token") or ""),
        "expires_at": expires_at,
        "scope": str(tokens.get("scope") or ""),
    }


def _token_call(
    http: HttpClient, signer: DpopSigner, url: str, form: dict[str, str], what: str
) -> dict[str, Any]:
    """A form POST to the authorization server, with a DPoP proof; its refusal explained."""
    try:
        response = signer.send(http, "POST", url, data=form)
    except ConnectorError as exc:
        if exc.retryable:
            raise
        reason = _refusal(exc)
        raise OAuthRefusedError(f"the server refused {what}: {reason}") from exc
    try:
        data = response.json() if response.content else {}
    except ValueError as exc:
        raise OAuthRefusedError(f"the answer to {what} is not JSON") from exc
    return dict(data) if isinstance(data, dict) else {}


def _refusal(error: ConnectorError) -> str:
    try:
        body = json.loads(error.body) if error.body else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    parts: Iterable[Any] = (body.get("error"), body.get("error_description"))
    return ": ".join(str(part) for part in parts if part) or str(error.status_code or error)
