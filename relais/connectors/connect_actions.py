"""Connecting X accounts (OAuth 2.0 with the workspace's own developer keys), Facebook Pages and
their linked Instagram accounts (a Page access token)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, record_audit
from relais.accounts.models import User, Workspace
from relais.accounts.roles import Capability
from relais.connectors.actions import check_approved, check_pending_connection
from relais.connectors.base import AccountContext, ConnectorError, CredentialsExpiredError
from relais.connectors.budget import WorkspaceBudget
from relais.connectors.credentials import (
    encrypt_credentials,
)
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.facebook import FacebookPageConnector, InstagramConnector
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
) -> tuple[str, str]:
    """Return where to send the admin's browser to approve access on X, and the pending
    authorization to keep (encrypted) until X sends the browser back."""
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    client_id, address = check_x_keys(client_id, api_address)
    authorize, pending = start_authorization(
        client_id, client_secret, redirect_uri=redirect_uri, api_base=address
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
    settings: dict[str, str] = {}
    if graph_base.strip():
        if not graph_base.strip().startswith(("https://", "http://")):
            raise ValidationFailedError(_("The Graph API address must start with https://."))
        settings["graph_base"] = graph_base.strip().rstrip("/")
    if graph_version.strip():
        version = graph_version.strip().lower()
        if not version.startswith("v") or not version[1:].replace(".", "", 1).isdigit():
            raise ValidationFailedError(_("A Graph API version looks like v24.0."))
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
) -> list[ConnectedAccount]:
    """Ask Graph which Page the token speaks for; keep the Page, and its linked Instagram
    professional account when there is one and the admin wants it."""
    if actor is not None:
        check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    settings = check_facebook_token(token, graph_base, graph_version)
    credentials = {"page_access_token": token.strip()}
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
