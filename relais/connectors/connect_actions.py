"""Connecting X accounts (OAuth 2.0 with the workspace's own developer keys), Facebook Pages and
their linked Instagram accounts (a Page access token, or Facebook Login with the workspace's own
Meta app)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, record_audit
from relais.accounts.models import User, Workspace
from relais.accounts.roles import Capability
from relais.connectors import atproto_oauth
from relais.connectors.actions import (
    _first_cursor,
    check_approved,
    check_pending_connection,
)
from relais.connectors.base import AccountContext, ConnectorError, CredentialsExpiredError
from relais.connectors.budget import WorkspaceBudget
from relais.connectors.credentials import (
    encrypt_credentials,
)
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.bluesky import (
    DEFAULT_FIREHOSE,
    DEFAULT_PLC,
    DEFAULT_SERVICE,
    BlueskyConnector,
    begin_oauth,
    finish_oauth,
    resolve_identity,
)
from relais.connectors.networks.facebook import (
    FacebookPageConnector,
    InstagramConnector,
    PendingLogin,
    graph_address,
)
from relais.connectors.networks.facebook import app_id as facebook_app_id
from relais.connectors.networks.facebook import app_secret as facebook_app_secret
from relais.connectors.networks.facebook import finish_login as finish_facebook_login
from relais.connectors.networks.facebook import start_login as start_facebook_login
from relais.connectors.networks.x import (
    PendingAuthorization,
    XConnector,
    api_base,
    exchange_code,
    start_authorization,
)
from relais.core import clock
from relais.core.errors import ValidationFailedError


def _keep_account(
    workspace: Workspace,
    network: str,
    handle: str,
    *,
    display_name: str,
    settings: dict[str, Any],
    credentials: dict[str, Any],
    actor: User | None,
) -> ConnectedAccount:
    """Store a connected account (or reconnect it, keeping its cursor), audited."""
    with transaction.atomic():
        account, created = ConnectedAccount.objects.get_or_create(
            workspace=workspace,
            network=network,
            handle=handle[:255],
            defaults={"display_name": display_name[:255]},
        )
        account.settings = {**account.settings, **settings}
        account.credentials = encrypt_credentials(credentials)
        account.status, account.last_error = AccountStatus.ACTIVE, ""
        account.status_changed_at = clock.now()
        account.save()
        action = "account.connected" if created else "account.reconnected"
        record_audit(workspace, actor, action, account, network=network)
    return account


def check_x_keys(client_id: str, api_address: str) -> tuple[str, str]:
    client_id = client_id.strip()
    if not client_id:
        raise ValidationFailedError(
            _("Enter the OAuth 2.0 client ID of your X app (X developer console, Keys and tokens).")
        )
    address = api_address.strip().rstrip("/") or api_base()
    if not address.startswith(("https://", "http://")):
        raise ValidationFailedError(_("The API address must start with https://."))
    return client_id, address


def do_start_x_connection(
    workspace: Workspace,
    client_id: str,
    client_secret: str,
    *,
    actor: User,
    redirect_uri: str,
    api_address: str = "",
    authorize_address: str = "",
) -> tuple[str, str]:
    """Return where to send the admin's browser to approve access on X, and the pending
    authorization to keep (encrypted) until X sends the browser back."""
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    client_id, address = check_x_keys(client_id, api_address)
    authorize_address = authorize_address.strip()
    if authorize_address and not authorize_address.startswith(("https://", "http://")):
        raise ValidationFailedError(_("The authorization address must start with https://."))
    authorize, pending = start_authorization(
        client_id,
        client_secret,
        redirect_uri=redirect_uri,
        api_base=address,
        authorize_url=authorize_address,
    )
    return authorize, encrypt_credentials({**asdict(pending), "workspace": workspace.pk})


def do_finish_x_connection(
    workspace: Workspace, pending_token: str, *, code: str, state: str, actor: User
) -> ConnectedAccount:
    """Trade X's code for tokens, learn which user they act for, keep the account."""
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    pending = check_pending_connection(workspace, pending_token, state=state)
    check_approved(code, "X")
    authorization = PendingAuthorization(
        **{f.name: pending[f.name] for f in fields(PendingAuthorization)}
    )
    settings = {"api_base": authorization.api_base}
    try:
        credentials = exchange_code(authorization, code)
        connector = XConnector(
            AccountContext(
                workspace_id=workspace.pk, handle="", settings=settings, credentials=credentials
            ),
            meter=WorkspaceBudget(workspace.pk, XConnector.key),
        )
        me = connector.me()
    except CredentialsExpiredError as exc:
        raise ValidationFailedError(
            _("X refused the authorization: connect the account again.")
        ) from exc
    except ConnectorError as exc:
        raise ValidationFailedError(
            _("X could not be reached: %(error)s") % {"error": exc}
        ) from exc
    credentials = {**connector.credentials, "user_id": str(me["id"])}
    handle = str(me.get("username") or me["id"]).lower()
    return _keep_account(
        workspace,
        XConnector.key,
        handle,
        display_name=str(me.get("name") or handle),
        settings=settings,
        credentials=credentials,
        actor=actor,
    )


def check_facebook_token(token: str, graph_base: str, graph_version: str) -> dict[str, str]:
    if not token.strip():
        raise ValidationFailedError(
            _("Paste a Page access token (Meta Business Suite or the Graph API Explorer).")
        )
    return check_graph_settings(graph_base, graph_version)


def check_graph_settings(graph_base: str, graph_version: str) -> dict[str, str]:
    """The Graph address and version an admin typed (none: the deployment's)."""
    settings: dict[str, str] = {}
    if graph_base.strip():
        if not graph_base.strip().startswith(("https://", "http://")):
            raise ValidationFailedError(_("The Graph API address must start with https://."))
        settings["graph_base"] = graph_base.strip().rstrip("/")
    if graph_version.strip():
        version = graph_version.strip().lower()
        if not version.startswith("v") or not version[1:].replace(".", "", 1).isdigit():
            raise ValidationFailedError(_("A Graph API version looks like v26.0."))
        settings["graph_version"] = version
    return settings


def do_connect_facebook_page(
    workspace: Workspace,
    token: str,
    *,
    actor: User | None,
    graph_base: str = "",
    graph_version: str = "",
    with_instagram: bool = True,
    app_secret: str = "",
) -> list[ConnectedAccount]:
    """Ask Graph which Page the token speaks for; keep the Page, and its linked Instagram
    professional account when there is one and the admin wants it. ``app_secret``: the
    workspace's own Meta app (Facebook Login), whose secret proves the calls."""
    if actor is not None:
        check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    settings = check_facebook_token(token, graph_base, graph_version)
    credentials = {"page_access_token": token.strip()}
    if app_secret:
        credentials["app_secret"] = app_secret
    context = AccountContext(
        workspace_id=workspace.pk, handle="", settings=settings, credentials=credentials
    )
    try:
        page = FacebookPageConnector(context).page()
    except CredentialsExpiredError as exc:
        raise ValidationFailedError(
            _("Meta did not accept this token: it expired or was revoked.")
        ) from exc
    except ConnectorError as exc:
        # A user token has no ``category``: Graph refuses the field (#100).
        raise ValidationFailedError(
            _("This is not a Page access token, or Meta could not be reached: %(error)s")
            % {"error": exc}
        ) from exc
    if not page.get("id") or not page.get("category"):
        raise ValidationFailedError(_("This token does not speak for a Page."))
    page_settings = {**settings, "page_id": str(page["id"]), "name": str(page.get("name") or "")}
    accounts = [
        _keep_account(
            workspace,
            FacebookPageConnector.key,
            str(page["id"]),
            display_name=str(page.get("name") or page["id"]),
            settings=page_settings,
            credentials=credentials,
            actor=actor,
        )
    ]
    instagram = page.get("instagram_business_account") or {}
    if with_instagram and instagram.get("id"):
        username = str(instagram.get("username") or instagram["id"]).lower()
        accounts.append(
            _keep_account(
                workspace,
                InstagramConnector.key,
                username,
                display_name=username,
                settings={
                    **settings,
                    "page_id": str(page["id"]),
                    "ig_user_id": str(instagram["id"]),
                },
                credentials=credentials,
                actor=actor,
            )
        )
    return accounts


def check_facebook_app(app: str, secret: str) -> tuple[str, str]:
    """The Meta app to log in with: the form's, else the deployment's."""
    app = app.strip() or facebook_app_id()
    secret = secret.strip() or facebook_app_secret()
    if not app or not secret:
        raise ValidationFailedError(
            _("Enter the app ID and app secret of your Meta app (App settings, Basic).")
        )
    return app, secret


def do_start_facebook_login(
    workspace: Workspace,
    app: str,
    secret: str,
    *,
    actor: User,
    redirect_uri: str,
    graph_base: str = "",
    graph_version: str = "",
    dialog_base: str = "",
    with_instagram: bool = True,
) -> tuple[str, str]:
    """Where to send the admin's browser (Meta's login dialog), and the pending login to keep
    (encrypted) until Meta sends the browser back."""
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    app, secret = check_facebook_app(app, secret)
    settings = check_graph_settings(graph_base, graph_version)
    if dialog_base.strip() and not dialog_base.strip().startswith(("https://", "http://")):
        raise ValidationFailedError(_("The Facebook Login address must start with https://."))
    authorize, pending = start_facebook_login(
        app,
        secret,
        redirect_uri=redirect_uri,
        graph=graph_address(settings),
        dialog=dialog_base.strip(),
    )
    kept = {**asdict(pending), "settings": settings, "with_instagram": with_instagram}
    return authorize, encrypt_credentials({**kept, "workspace": workspace.pk})


def do_finish_facebook_login(
    workspace: Workspace, pending_token: str, *, code: str, state: str, actor: User
) -> ConnectedAccount:
    """Trade Meta's code for the Pages the admin granted; keep each Page (and its Instagram
    account) with its own Page token, as a pasted token would be kept."""
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    kept = check_pending_connection(workspace, pending_token, state=state)
    check_approved(code, "Facebook")
    pending = PendingLogin(**{f.name: kept[f.name] for f in fields(PendingLogin)})
    try:
        pages = finish_facebook_login(pending, code)
    except ConnectorError as exc:
        raise ValidationFailedError(
            _("Meta refused the login: %(error)s") % {"error": exc}
        ) from exc
    if not pages:
        raise ValidationFailedError(_("No Page was granted to Relais in Meta's dialog."))
    connected = [
        account
        for page in pages
        for account in do_connect_facebook_page(
            workspace,
            str(page["access_token"]),
            actor=actor,
            graph_base=kept["settings"].get("graph_base", ""),
            graph_version=kept["settings"].get("graph_version", ""),
            with_instagram=kept["with_instagram"],
            app_secret=pending.app_secret,
        )
    ]
    return connected[0]


def check_bluesky_sign_in(handle: str, service: str, plc: str) -> tuple[str, str, str]:
    """The handle, and the server and DID directory that resolve it (bsky.social by default)."""
    handle = handle.strip().lstrip("@").lower()
    service = (service.strip() or DEFAULT_SERVICE).rstrip("/")
    plc = (plc.strip() or DEFAULT_PLC).rstrip("/")
    if not handle or "." not in handle:
        raise ValidationFailedError(_("Enter the full handle, for example brand.bsky.social."))
    if not service.startswith(("https://", "http://")):
        raise ValidationFailedError(_("The server address must start with https://."))
    if not plc.startswith(("https://", "http://")):
        raise ValidationFailedError(_("The DID directory address must start with https://."))
    return handle, service, plc


def do_start_bluesky_oauth(
    workspace: Workspace,
    handle: str,
    *,
    actor: User,
    public_url: str,
    service: str = DEFAULT_SERVICE,
    plc: str = DEFAULT_PLC,
) -> tuple[str, str]:
    """Find the account's PDS and push an atproto OAuth request; return where to send the
    admin's browser and the pending authorization to keep (encrypted) until it comes back.

    ``public_url`` is the address Relais is reached at: https makes Relais a web client with a
    published metadata document, http on a loopback address the spec's loopback client.
    """
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    handle, service, plc = check_bluesky_sign_in(handle, service, plc)
    try:
        client = atproto_oauth.client_for(public_url)
    except atproto_oauth.ClientAddressError as exc:
        raise ValidationFailedError(
            _(
                "Signing in with Bluesky needs Relais to be served over https, or opened at "
                "http://127.0.0.1 on its own machine. Use an app password instead."
            )
        ) from exc
    try:
        identity = resolve_identity(handle, service=service, plc=plc)
        authorize, pending = begin_oauth(identity, client)
    except ConnectorError as exc:
        raise ValidationFailedError(
            _("Bluesky sign-in could not start: %(error)s") % {"error": exc}
        ) from exc
    kept = {**pending.as_dict(), "service": service, "plc": plc, "workspace": workspace.pk}
    return authorize, encrypt_credentials(kept)


def do_finish_bluesky_oauth(
    workspace: Workspace, pending_token: str, *, code: str, state: str, issuer: str, actor: User
) -> ConnectedAccount:
    """Trade the code for DPoP-bound tokens and keep the account, read like any other."""
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    kept = check_pending_connection(workspace, pending_token, state=state)
    check_approved(code, "Bluesky")
    pending = atproto_oauth.PendingAuthorization(
        **{
            f.name: kept[f.name]
            for f in fields(atproto_oauth.PendingAuthorization)
            if f.name in kept
        }
    )
    try:
        credentials = finish_oauth(pending, code=code, issuer=issuer)
    except ConnectorError as exc:
        raise ValidationFailedError(
            _("Bluesky refused the sign-in: %(error)s") % {"error": exc}
        ) from exc
    # Accounts hosted by Bluesky follow the public relay; a self-hosted PDS its own stream.
    firehose = DEFAULT_FIREHOSE if kept["service"] == DEFAULT_SERVICE else pending.pds
    settings = {"service": pending.pds, "firehose": firehose, "plc": kept["plc"]}
    account = _keep_account(
        workspace,
        BlueskyConnector.key,
        pending.handle,
        display_name=pending.handle,
        settings=settings,
        credentials=credentials,
        actor=actor,
    )
    if account.cursor is None and (cursor := _first_cursor(firehose)) is not None:
        ConnectedAccount.objects.filter(pk=account.pk).update(cursor=cursor)
        account.cursor = cursor
    return account
