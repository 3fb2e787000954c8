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

Served over https, Relais' ``client_id`` is the address of its client metadata document
(``bluesky_client_metadata``). With client keys configured (``RELAIS_BLUESKY_CLIENT_KEYS``) it is
a confidential client: the document names a JWKS (``bluesky_client_jwks``, public keys only) and
every call to the token endpoints (PAR, code, refresh, revocation) carries a client assertion, a
short JWT signed with one of those keys (``private_key_jwt``); servers then keep its sessions
far longer (Bluesky's: two years, instead of a public client's two weeks). The server binds each
session to the key (``kid``) that started it, so the key's id is kept with the session and its
refreshes are signed with that same key. Without keys it is a public client. Opened on a
loopback address over http (a self-hosted instance on one machine), it is the spec's loopback
client, ``http://localhost?...``, which authorization servers accept without fetching anything,
and which the spec and the reference server only allow as a public client.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from relais.connectors.base import ConnectorError, CredentialsExpiredError
from relais.connectors.client import HttpClient
from relais.connectors.netguard import PublicOnlyTransport

SCOPE = "atproto transition:generic transition:chat.bsky"
CALLBACK_PATH = "/hooks/bluesky/oauth/"
METADATA_PATH = "/hooks/bluesky/client-metadata.json"
JWKS_PATH = "/hooks/bluesky/jwks.json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60  # seconds; the reference server refuses assertions older than a minute
LOOPBACK_CLIENT = "http://localhost"
REFRESH_MARGIN = timedelta(seconds=60)  # refresh a little before the access token ends
NONCE_ERROR = "use_dpop_nonce"


class OAuthRefusedError(ConnectorError):
    """The authorization server or the PDS refused a step, with its reason."""


# ---------------------------------------------------------------------------------------------
# Client keys (a confidential client's identity)


@dataclass(frozen=True)
class ClientKeys:
    """The deployment's client keys: the first signs new sessions, all are published.

    Keeping an older key listed keeps the sessions it started (their refreshes are signed with
    it); removing it ends them, as the server binds each session to its key.
    """

    keys: tuple[ECKey, ...] = field(default=(), repr=False)

    @property
    def current(self) -> ECKey | None:
        return self.keys[0] if self.keys else None

    def by_kid(self, kid: str) -> ECKey | None:
        return next((key for key in self.keys if key.kid == kid), None)

    def public_jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**key.as_dict(private=False), "alg": "ES256", "use": "sig"} for key in self.keys
            ]
        }

    def __bool__(self) -> bool:
        return bool(self.keys)


NO_KEYS = ClientKeys()


def parse_client_keys(value: str) -> ClientKeys:
    """Keys from ``RELAIS_BLUESKY_CLIENT_KEYS``: JSON (one private JWK, a list of them, or a
    JWKS ``{"keys": [...]}``), or the path of a file holding it. Each is an EC P-256 private
    key; one without a ``kid`` is named by its RFC 7638 thumbprint. Errors never quote a key.
    """
    text = value.strip()
    if not text:
        return NO_KEYS
    if not text.startswith(("{", "[")):
        try:
            text = Path(text).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"RELAIS_BLUESKY_CLIENT_KEYS: cannot read {text}: {exc.strerror}"
            ) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ImproperlyConfigured("RELAIS_BLUESKY_CLIENT_KEYS is not valid JSON") from None
    if isinstance(data, dict):
        data = data["keys"] if isinstance(data.get("keys"), list) else [data]
    if not isinstance(data, list) or not data:
        raise ImproperlyConfigured("RELAIS_BLUESKY_CLIENT_KEYS holds no key")
    keys: list[ECKey] = []
    for number, jwk in enumerate(data, start=1):
        keys.append(_client_key(jwk, number))
    kids = [key.kid for key in keys]
    if len(set(kids)) != len(kids):
        raise ImproperlyConfigured("RELAIS_BLUESKY_CLIENT_KEYS: two keys have the same kid")
    return ClientKeys(tuple(keys))


def _client_key(jwk: Any, number: int) -> ECKey:
    where = f"RELAIS_BLUESKY_CLIENT_KEYS, key {number}"
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ImproperlyConfigured(f"{where}: not an EC P-256 JWK (ES256 needs one)")
    if not jwk.get("d"):
        raise ImproperlyConfigured(f"{where}: the private part (d) is missing")
    try:
        key = ECKey.import_key(jwk)
    except (JoseError, ValueError, TypeError):
        raise ImproperlyConfigured(f"{where}: not a valid key") from None
    if not key.kid:
        key = ECKey.import_key({**jwk, "kid": key.thumbprint()})
    return key


@functools.lru_cache(maxsize=4)
def _parsed_keys(value: str) -> ClientKeys:
    return parse_client_keys(value)


def configured_client_keys() -> ClientKeys:
    """The deployment's keys (setting ``RELAIS["BLUESKY_CLIENT_KEYS"]``), parsed once."""
    return _parsed_keys(str(settings.RELAIS.get("BLUESKY_CLIENT_KEYS") or ""))


def new_client_key() -> dict[str, Any]:
    """A fresh private JWK for ``RELAIS_BLUESKY_CLIENT_KEYS``, named by the day it was made."""
    kid = f"relais-{datetime.now(UTC):%Y-%m-%d}-{secrets.token_hex(3)}"
    key = ECKey.generate_key("P-256", parameters={"kid": kid})
    return dict(key.as_dict(private=True))


def client_assertion(key: ECKey, client_id: str, issuer: str) -> dict[str, str]:
    """The form fields that authenticate Relais to ``issuer`` (RFC 7523, ``private_key_jwt``)."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": issuer,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    }
    header = {"typ": "JWT", "alg": "ES256", "kid": key.kid}
    return {
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt.encode(header, claims, key, algorithms=["ES256"]),
    }


# ---------------------------------------------------------------------------------------------
# Client identity


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    redirect_uri: str
    scope: str = SCOPE
    jwks_uri: str = ""  # set: a confidential client, whose keys are published there
    keys: ClientKeys = field(default=NO_KEYS, repr=False, compare=False)

    @property
    def confidential(self) -> bool:
        return bool(self.jwks_uri and self.keys)

    def metadata(self) -> dict[str, Any]:
        """The client metadata document a web client serves at its ``client_id``."""
        origin = f"{urlsplit(self.client_id).scheme}://{urlsplit(self.client_id).netloc}"
        metadata = {
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
        if self.confidential:
            metadata |= {
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": "ES256",
                "jwks_uri": self.jwks_uri,
            }
        return metadata


class ClientAddressError(ValueError):
    """Relais is reached at an address atproto OAuth cannot send a browser back to."""


def is_loopback(host: str) -> bool:
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def client_for(public_url: str, *, keys: ClientKeys | None = None) -> OAuthClient:
    """The OAuth client Relais is when reached at ``public_url`` (scheme and host).

    https: a web client whose metadata document Relais serves, confidential when it has client
    keys (``keys``, by default the configured ones). http on a loopback address: the loopback
    client, which the spec allows only with a redirect to 127.0.0.1 or [::1], and only public.
    """
    parts = urlsplit(public_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.scheme == "https":
        keys = configured_client_keys() if keys is None else keys
        jwks_uri = origin + JWKS_PATH if keys else ""
        return OAuthClient(
            origin + METADATA_PATH, origin + CALLBACK_PATH, jwks_uri=jwks_uri, keys=keys
        )
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
        form: Callable[[], dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request with a proof; sent again once when the server wants a fresh nonce.

        ``form`` builds the form body for each attempt (a client assertion is used only once).
        """
        for attempt in (1, 2):
            proof_headers = {"DPoP": self.proof(method, url, access_token=access_token)}
            if access_token:
                proof_headers["Authorization"] = f"DPoP {access_token}"
            if form is not None:
                kwargs["data"] = form()
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
    client_kid: str = ""  # a confidential client: the key the session is bound to

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
    key = client.keys.current if client.confidential else None
    auth = _client_auth(key, client.client_id, server.issuer)
    answer = _token_call(
        http, signer, server.par_endpoint, form, "the authorization request", auth=auth
    )
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
        client_kid=key.kid if key is not None and key.kid else "",
    )
    return f"{server.authorization_endpoint}?{query}", pending


def exchange_code(
    pending: PendingAuthorization,
    code: str,
    issuer: str,
    http: HttpClient,
    signer: DpopSigner,
    *,
    keys: ClientKeys | None = None,
) -> dict[str, Any]:
    """The tokens for the code the browser brought back, as the account's credentials.

    A confidential client signs the exchange with the key that pushed the request (``keys``:
    by default the configured ones).
    """
    if issuer.rstrip("/") != pending.issuer:
        raise OAuthRefusedError(f"the answer came from {issuer!r}, not {pending.issuer}")
    key = _session_key(pending.client_kid, keys)
    if pending.client_kid and key is None:
        raise OAuthRefusedError(f"the client key {pending.client_kid} is no longer configured")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": pending.redirect_uri,
        "client_id": pending.client_id,
        "code_verifier": pending.verifier,
    }
    auth = _client_auth(key, pending.client_id, pending.issuer)
    tokens = _token_call(http, signer, pending.token_endpoint, form, "the code", auth=auth)
    if tokens.get("sub") != pending.did:
        raise OAuthRefusedError(f"the tokens are for {tokens.get('sub')!r}, not {pending.did}")
    credentials = {
        "auth": "oauth",
        "did": pending.did,
        "client_id": pending.client_id,
        "issuer": pending.issuer,
        "token_endpoint": pending.token_endpoint,
        "revocation_endpoint": pending.revocation_endpoint,
        "dpop_key": signer.private_jwk,
        **_token_fields(tokens),
    }
    if pending.client_kid:
        credentials["client_kid"] = pending.client_kid
    return credentials


def refresh(
    credentials: dict[str, Any],
    http: HttpClient,
    signer: DpopSigner,
    *,
    keys: ClientKeys | None = None,
) -> dict[str, Any]:
    """New tokens for the stored refresh token (which the server rotates: keep the new one).

    A refused refresh (expired, revoked, already used) is a ``CredentialsExpiredError``: the
    account must be connected again. A confidential session is refreshed with the key it is
    bound to; a public session of a web client that has keys now is refreshed with the current
    key (the server then binds it to that key: its kid is kept).
    """
    auth, kid = _stored_session_auth(credentials, keys)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": str(credentials.get("refresh_token", "")),
        "client_id": str(credentials.get("client_id", "")),
    }
    try:
        tokens = _token_call(
            http, signer, str(credentials["token_endpoint"]), form, "refresh", auth=auth
        )
    except OAuthRefusedError as exc:
        raise CredentialsExpiredError(f"Bluesky ended the authorization ({exc})") from exc
    if tokens.get("sub") != credentials.get("did"):
        raise CredentialsExpiredError("Bluesky refreshed the tokens of another account")
    renewed = {**credentials, **_token_fields(tokens)}
    if kid:
        renewed["client_kid"] = kid
    return renewed


def revoke(
    credentials: dict[str, Any],
    http: HttpClient,
    signer: DpopSigner,
    *,
    keys: ClientKeys | None = None,
) -> None:
    """Tell the server to end the session (its refresh token, hence its access tokens)."""
    endpoint = str(credentials.get("revocation_endpoint") or "")
    if endpoint:
        auth, _kid = _stored_session_auth(credentials, keys)
        form = {
            "token": str(credentials.get("refresh_token", "")),
            "client_id": str(credentials.get("client_id", "")),
        }
        _token_call(http, signer, endpoint, form, "revocation", auth=auth)


def _session_key(kid: str, keys: ClientKeys | None) -> ECKey | None:
    if not kid:
        return None
    return (configured_client_keys() if keys is None else keys).by_kid(kid)


def _refresh_key(credentials: dict[str, Any], keys: ClientKeys | None) -> tuple[ECKey | None, str]:
    """The client key a session's token calls are signed with, and its kid ("" if public)."""
    kid = str(credentials.get("client_kid") or "")
    if not kid and not str(credentials.get("client_id", "")).startswith("https://"):
        return None, ""  # the loopback client: always public
    keys = configured_client_keys() if keys is None else keys
    if kid:
        key = keys.by_kid(kid)
        if key is None:
            raise CredentialsExpiredError(
                f"the client key {kid} this Bluesky session is bound to is no longer "
                "configured (RELAIS_BLUESKY_CLIENT_KEYS): connect again"
            )
        return key, kid
    if keys.current is not None:
        return keys.current, str(keys.current.kid)
    return None, ""


def _stored_session_auth(
    credentials: dict[str, Any], keys: ClientKeys | None
) -> tuple[Callable[[], dict[str, str]] | None, str]:
    """How a stored session's token calls authenticate Relais, and the key id they use."""
    key, kid = _refresh_key(credentials, keys)
    client_id, issuer = str(credentials.get("client_id", "")), str(credentials.get("issuer", ""))
    return _client_auth(key, client_id, issuer), kid


def _client_auth(
    key: ECKey | None, client_id: str, issuer: str
) -> Callable[[], dict[str, str]] | None:
    """A fresh client assertion for each attempt (servers refuse a reused ``jti``)."""
    if key is None:
        return None
    return lambda: client_assertion(key, client_id, issuer)


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
    http: HttpClient,
    signer: DpopSigner,
    url: str,
    form: dict[str, str],
    what: str,
    *,
    auth: Callable[[], dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A form POST to the authorization server, with a DPoP proof (and a confidential client's
    assertion); its refusal explained."""
    try:
        response = signer.send(http, "POST", url, form=lambda: {**form, **(auth() if auth else {})})
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


def main(argv: list[str]) -> int:
    """``python -m relais.connectors.atproto_oauth new-client-key``: print a new private JWK."""
    if argv != ["new-client-key"]:
        print("usage: python -m relais.connectors.atproto_oauth new-client-key", file=sys.stderr)
        return 2
    print(json.dumps(new_client_key()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
