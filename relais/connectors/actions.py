"""Connecting accounts, keeping their credentials, and accepting what their networks deliver."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Count, Q
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, record_audit
from relais.accounts.models import User, Workspace
from relais.accounts.roles import Capability
from relais.connectors.base import (
    AccountContext,
    ConnectorError,
    CredentialsExpiredError,
    InboundItem,
)
from relais.connectors.credentials import (
    UnreadableCredentialsError,
    decrypt_credentials,
    encrypt_credentials,
)
from relais.connectors.models import AccountStatus, ConnectedAccount, Engagement
from relais.connectors.networks.bluesky import (
    DEFAULT_FIREHOSE,
    DEFAULT_PLC,
    DEFAULT_SERVICE,
    BlueskyConnector,
    BlueskyPage,
    EngagementEvent,
)
from relais.connectors.networks.mastodon import (
    AppRegistration,
    MastodonConnector,
    authorize_url,
    exchange_code,
    normalize_instance,
    register_app,
)
from relais.connectors.networks.rss import RssConnector
from relais.core import clock
from relais.core.errors import ValidationFailedError
from relais.core.events import publish_event
from relais.pipeline.actions import do_accept_items
from relais.pipeline.models import Post
from relais.publishing.inbound import do_withdraw_forwards

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
RECOUNT_DELAY_SECONDS = 3  # longer than a worker takes to store a batch when not backlogged
METRIC_NAMES = {"like": "likes", "repost": "reposts", "reply": "replies", "quote": "quotes"}


def check_bluesky_connection(
    handle: str, app_password: str, service: str, plc: str = DEFAULT_PLC
) -> tuple[str, str, str]:
    handle = handle.strip().lstrip("@").lower()
    app_password = app_password.strip()
    service = (service.strip() or DEFAULT_SERVICE).rstrip("/")
    if not handle or "." not in handle:
        raise ValidationFailedError(_("Enter the full handle, for example brand.bsky.social."))
    if not app_password:
        raise ValidationFailedError(_("Enter an app password created in Bluesky's settings."))
    if not service.startswith(("https://", "http://")):
        raise ValidationFailedError(_("The server address must start with https://."))
    if not plc.startswith(("https://", "http://")):
        raise ValidationFailedError(_("The DID directory address must start with https://."))
    return handle, app_password, service


def do_connect_bluesky_account(
    workspace: Workspace,
    handle: str,
    app_password: str,
    *,
    actor: User | None,
    service: str = DEFAULT_SERVICE,
    firehose: str = "",
    plc: str = DEFAULT_PLC,
) -> ConnectedAccount:
    """Log in once to prove the app password, then keep it (encrypted) with the session.

    Without ``firehose``, accounts on bsky.social follow the public relay and accounts on a
    self-hosted PDS follow that PDS's own stream. Reconnecting keeps the cursor, so nothing is
    missed or delivered twice.
    """
    if actor is not None:
        check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    handle, app_password, service = check_bluesky_connection(handle, app_password, service, plc)
    firehose = firehose or (DEFAULT_FIREHOSE if service == DEFAULT_SERVICE else service)
    settings = {"service": service, "firehose": firehose.rstrip("/"), "plc": plc.rstrip("/")}
    connector = BlueskyConnector(
        AccountContext(
            workspace_id=workspace.pk,
            handle=handle,
            settings=settings,
            credentials={"app_password": app_password},
        )
    )
    try:
        connector.create_session()
    except CredentialsExpiredError as exc:
        raise ValidationFailedError(
            _("Bluesky did not accept this handle and app password.")
        ) from exc
    except ConnectorError as exc:
        raise ValidationFailedError(
            _("Bluesky could not be reached: %(error)s") % {"error": exc}
        ) from exc
    with transaction.atomic():
        account, created = ConnectedAccount.objects.get_or_create(
            workspace=workspace,
            network=BlueskyConnector.key,
            handle=handle,
            defaults={
                "display_name": handle,
                "settings": settings,
                "cursor": _first_cursor(settings["firehose"]),
            },
        )
        account.settings = {**account.settings, **settings}
        account.credentials = encrypt_credentials(connector.credentials)
        account.status, account.last_error = AccountStatus.ACTIVE, ""
        account.status_changed_at = clock.now()
        account.save()
        record_audit(
            workspace,
            actor,
            "account.connected" if created else "account.reconnected",
            account,
            network=BlueskyConnector.key,
        )
    return account


def _first_cursor(firehose: str) -> dict[str, int] | None:
    """Where a new account starts reading.

    The public relay is busy: reading live pins the cursor within the first second. A
    self-hosted PDS may stay quiet for hours, so reading it live would miss what happens between
    two polls until its first event; its retained history (small) is read from the start instead.
    """
    return None if firehose == DEFAULT_FIREHOSE else {"seq": 0}


def do_store_credentials(account: ConnectedAccount, credentials: dict[str, Any]) -> None:
    """Keep credentials the network renewed (no audit entry: nobody changed anything)."""
    account.credentials = encrypt_credentials(credentials)
    ConnectedAccount.objects.filter(pk=account.pk).update(credentials=account.credentials)


def do_renew_credentials(
    account: ConnectedAccount, renew: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """Renew stored credentials with the row locked, so two processes never both refresh."""
    with transaction.atomic():
        row = ConnectedAccount.objects.select_for_update().only("credentials").get(pk=account.pk)
        current = decrypt_credentials(row.credentials)
        renewed = renew(current)
        if renewed != current:
            do_store_credentials(account, renewed)
    return renewed


def do_mark_reconnect_needed(account: ConnectedAccount, error: Exception) -> None:
    """Stop using an account whose credential expired or was revoked, and tell its admins."""
    with transaction.atomic():
        ConnectedAccount.objects.filter(pk=account.pk).update(
            status=AccountStatus.RECONNECT_NEEDED,
            status_changed_at=clock.now(),
            last_error=str(error)[:2000],
        )
        record_audit(
            account.workspace_id, None, "account.reconnect_needed", account, error=str(error)[:500]
        )
        publish_event(
            account.workspace_id,
            "accounts.changed",
            {"id": account.pk, "status": AccountStatus.RECONNECT_NEEDED.value},
        )
    account.status = AccountStatus.RECONNECT_NEEDED
    logger.warning("%r needs reconnecting: %s", account, error)


def do_accept_bluesky_page(account: ConnectedAccount, page: BlueskyPage) -> None:
    """Accept a firehose page and move the account's cursor in one transaction."""
    with transaction.atomic():
        if page.engagements:
            _record_engagements(account, page.engagements)
        items = _with_counts(account, page.items)
        do_accept_items(account.workspace_id, account.network, items)
        _recount_once_stored(account, page)
        if page.cursor:
            ConnectedAccount.objects.filter(pk=account.pk).update(cursor=page.cursor)
            account.cursor = page.cursor


def take_lease(account_id: int, *, seconds: float = LEASE_SECONDS) -> bool:
    """Become the account's only stream reader for a while; False when another one is."""
    now = clock.now()
    return bool(
        ConnectedAccount.objects.filter(pk=account_id, status=AccountStatus.ACTIVE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + timedelta(seconds=seconds))
    )


def renew_lease(account_id: int, *, seconds: float = LEASE_SECONDS) -> bool:
    """Keep reading; False when the account stopped being active meanwhile (stop reading)."""
    return bool(
        ConnectedAccount.objects.filter(pk=account_id, status=AccountStatus.ACTIVE).update(
            lease_until=clock.now() + timedelta(seconds=seconds)
        )
    )


def release_lease(account_id: int) -> None:
    ConnectedAccount.objects.filter(pk=account_id).update(lease_until=None)


@dataclass(frozen=True)
class PollReport:
    accepted: int
    has_more: bool
    busy: bool = False  # another reader held the account: nothing was read


def do_poll_bluesky_account(account_id: int, *, limit: int = 5000, idle: float = 0.5) -> PollReport:
    """Read the firehose from the stored cursor until it is quiet or ``limit`` events were read.

    Does nothing while the long-running consumer (or another poll) holds the account.
    ``has_more`` tells the caller to poll again at once: a busy relay is never quiet.
    """
    if not take_lease(account_id):
        return PollReport(0, has_more=False)
    try:
        account = ConnectedAccount.objects.get(pk=account_id)
        connector = bluesky_connector_for(account)
        try:
            connector.check_session()
            page = connector.fetch(account.cursor, limit=limit, idle=idle)
        except CredentialsExpiredError as exc:
            do_mark_reconnect_needed(account, exc)
            return PollReport(0, has_more=False)
        do_accept_bluesky_page(account, page)
        return PollReport(len(page.items), has_more=page.has_more)
    finally:
        release_lease(account_id)


def bluesky_connector_for(account: ConnectedAccount) -> BlueskyConnector:
    from relais.connectors.registry import connector_for

    connector = connector_for(account)
    assert isinstance(connector, BlueskyConnector)
    return connector


def _record_engagements(account: ConnectedAccount, events: Sequence[EngagementEvent]) -> None:
    """Store likes/reposts/replies/quotes (or drop undone ones), then recount their subjects."""
    workspace_id, network = account.workspace_id, account.network
    undone = [e.remote_id for e in events if e.undone]
    stored = Engagement.objects.in_workspace(workspace_id).filter(network=network)
    subjects = set(stored.filter(remote_id__in=undone).values_list("subject_remote_id", flat=True))
    stored.filter(remote_id__in=undone).delete()
    # A deleted repost or quote of a published target is a withdrawn forward too.
    do_withdraw_forwards(workspace_id, network, undone)
    new = [e for e in events if not e.undone]
    Engagement.objects.bulk_create(
        [
            Engagement(
                workspace_id=workspace_id,
                account=account,
                network=network,
                remote_id=e.remote_id,
                subject_remote_id=e.subject_remote_id,
                actor_remote_id=e.actor_remote_id,
                kind=e.kind,
                created_at=e.created_at or clock.now(),
            )
            for e in new
        ],
        ignore_conflicts=True,
    )
    subjects |= {e.subject_remote_id for e in new}
    _refresh_post_metrics(workspace_id, network, subjects)


def _with_counts(account: ConnectedAccount, items: list[InboundItem]) -> list[InboundItem]:
    """The brand's own posts carry their counts, so storing one again never resets them."""
    own = {item.remote_id for item in items if item.author.handle == account.handle}
    if not own:
        return items
    counts = engagement_counts(account.workspace_id, account.network, own)
    zero = dict.fromkeys(METRIC_NAMES.values(), 0)
    return [
        replace(item, metrics={**zero, **counts[item.remote_id]}) if item.remote_id in own else item
        for item in items
    ]


def _recount_once_stored(account: ConnectedAccount, page: BlueskyPage) -> None:
    """Count again after the workers stored the page's posts.

    A brand post and its first reposts can arrive in pages whose batches are stored later, in
    any order; recounting from the stored engagements a moment later makes the totals right
    whatever the order was (recounting is idempotent).
    """
    subjects = {e.subject_remote_id for e in page.engagements if e.subject_remote_id}
    subjects |= {i.remote_id for i in page.items if i.author.handle == account.handle}
    if not subjects:
        return
    from relais.connectors.tasks import recount_engagements

    args = (account.workspace_id, account.network, sorted(subjects))
    transaction.on_commit(
        lambda: recount_engagements.apply_async(args, countdown=RECOUNT_DELAY_SECONDS)
    )


def do_recount_engagements(workspace_id: int, network: str, subjects: list[str]) -> None:
    with transaction.atomic():
        _refresh_post_metrics(workspace_id, network, set(subjects))


def engagement_counts(workspace_id: int, network: str, subjects: set[str]) -> dict[str, dict]:
    counts: dict[str, dict[str, int]] = {subject: {} for subject in subjects}
    rows = (
        Engagement.objects.in_workspace(workspace_id)
        .filter(network=network, subject_remote_id__in=subjects)
        .values("subject_remote_id", "kind")
        .annotate(count=Count("id"))
    )
    for row in rows:
        counts[row["subject_remote_id"]][METRIC_NAMES[row["kind"]]] = row["count"]
    return counts


def _refresh_post_metrics(workspace_id: int, network: str, subjects: set[str]) -> None:
    if not subjects:
        return
    counts = engagement_counts(workspace_id, network, subjects)
    posts = Post.objects.in_workspace(workspace_id).filter(network=network, remote_id__in=subjects)
    for post in posts.only("pk", "remote_id", "metrics"):
        metrics = {**post.metrics, **dict.fromkeys(METRIC_NAMES.values(), 0)}
        metrics.update(counts.get(post.remote_id, {}))
        Post.objects.filter(pk=post.pk).update(metrics=metrics)


# Networks read by a periodic fetch from the stored cursor (Bluesky has its own stream reader).
POLLED_NETWORKS = ("mastodon", "rss", "x", "facebook", "instagram")
POLL_BACKOFF_SECONDS = 300.0


def do_poll_account(account_id: int) -> PollReport:
    """Fetch an account's items since its cursor; accept them and the new cursor together.

    The cursor moves only with the accepted items, so a failure loses nothing. An expired
    credential marks the account; a rate limit or an outage keeps the account's lease for the
    wait the network asked for (or a backoff), so polls skip it meanwhile and the error shows.
    """
    if not take_lease(account_id):
        return PollReport(0, has_more=False, busy=True)
    account = ConnectedAccount.objects.get(pk=account_id)
    from relais.connectors.registry import connector_for

    try:
        page = connector_for(account).fetch(account.cursor)
    except CredentialsExpiredError as exc:
        release_lease(account_id)
        do_mark_reconnect_needed(account, exc)
        return PollReport(0, has_more=False)
    except ConnectorError as exc:
        wait = getattr(exc, "retry_after", None) or POLL_BACKOFF_SECONDS
        ConnectedAccount.objects.filter(pk=account_id).update(
            lease_until=clock.now() + timedelta(seconds=wait), last_error=str(exc)[:2000]
        )
        logger.warning("%r not polled, next try in %.0f s: %s", account, wait, exc)
        return PollReport(0, has_more=False)
    with transaction.atomic():
        do_accept_items(account.workspace_id, account.network, page.items)
        ConnectedAccount.objects.filter(pk=account_id).update(
            cursor=page.cursor, last_error=getattr(page, "error", ""), lease_until=None
        )
    return PollReport(len(page.items), has_more=page.has_more)


def check_feed_address(address: str) -> str:
    url = address.strip()
    validator = URLValidator(schemes=["http", "https"])
    try:
        validator(url)
    except DjangoValidationError as exc:
        raise ValidationFailedError(_("Enter the full address of a feed (https://…).")) from exc
    return url


def do_connect_feed(workspace: Workspace, address: str, *, actor: User | None) -> ConnectedAccount:
    """Follow an RSS or Atom feed: read it once to prove it is one, keep what it holds."""
    if actor is not None:
        check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    url = check_feed_address(address)
    connector = RssConnector(
        AccountContext(workspace_id=workspace.pk, handle=url[:255], settings={"url": url})
    )
    try:
        page = connector.fetch(None)
    except ConnectorError as exc:
        raise ValidationFailedError(
            _("The feed could not be read: %(error)s") % {"error": exc}
        ) from exc
    if page.error:
        raise ValidationFailedError(
            _("This address does not serve a feed: %(error)s") % {"error": page.error}
        )
    with transaction.atomic():
        account, created = ConnectedAccount.objects.get_or_create(
            workspace=workspace,
            network=RssConnector.key,
            handle=url[:255],
            defaults={"display_name": url[:255], "settings": {"url": url}},
        )
        if created:
            do_accept_items(workspace.pk, RssConnector.key, page.items)
            account.cursor = page.cursor
            account.save(update_fields=["cursor"])
            record_audit(workspace, actor, "account.connected", account, network=RssConnector.key)
    return account


def do_start_mastodon_connection(
    workspace: Workspace, address: str, *, actor: User, redirect_uri: str
) -> tuple[str, str]:
    """Register Relais on the admin's server; return where to send the admin's browser and the
    pending connection to keep (encrypted) until the server sends the browser back."""
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    try:
        instance = normalize_instance(address)
    except ValueError as exc:
        raise ValidationFailedError(
            _("Enter the address of a Mastodon server (mastodon.social, say).")
        ) from exc
    try:
        app = register_app(instance, client_name="Relais", redirect_uri=redirect_uri)
    except ConnectorError as exc:
        raise ValidationFailedError(
            _("%(server)s did not register Relais: %(error)s") % {"server": instance, "error": exc}
        ) from exc
    state = secrets.token_urlsafe(24)
    pending = {**asdict(app), "state": state, "workspace": workspace.pk}
    return authorize_url(app, state=state), encrypt_credentials(pending)


def check_pending_connection(
    workspace: Workspace, pending_token: str, *, state: str
) -> dict[str, Any]:
    """The connection this browser started (kept encrypted in its session) for this workspace."""
    try:
        pending = decrypt_credentials(pending_token)
    except UnreadableCredentialsError:
        pending = {}  # kept under another secret key: start again
    if not state or pending.get("state") != state or pending.get("workspace") != workspace.pk:
        raise ValidationFailedError(
            _("This connection expired or was started elsewhere: connect the account again.")
        )
    return pending


def check_approved(code: str, server: str) -> None:
    """No code: the admin pressed Deny, or the network sent back an error instead."""
    if not code:
        raise ValidationFailedError(
            _("Access was not approved on %(server)s: nothing was connected.") % {"server": server}
        )


def do_finish_mastodon_connection(
    workspace: Workspace, pending_token: str, *, code: str, state: str, actor: User
) -> ConnectedAccount:
    """Trade the code the server sent back for a token and keep the account it acts for."""
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    pending = check_pending_connection(workspace, pending_token, state=state)
    app = AppRegistration(**{f.name: pending[f.name] for f in fields(AppRegistration)})
    check_approved(code, app.instance)
    try:
        credentials = exchange_code(app, code)
        context = AccountContext(workspace_id=workspace.pk, handle="", credentials=credentials)
        me = MastodonConnector(context).verify_credentials()
    except CredentialsExpiredError as exc:
        raise ValidationFailedError(
            _("The server refused the authorization: connect the account again.")
        ) from exc
    except ConnectorError as exc:
        raise ValidationFailedError(
            _("%(server)s could not be reached: %(error)s") % {"server": app.instance, "error": exc}
        ) from exc
    domain = urlsplit(app.instance).hostname or ""
    handle = f"{str(me.get('acct', '')).lower()}@{domain}"
    with transaction.atomic():
        account, created = ConnectedAccount.objects.get_or_create(
            workspace=workspace,
            network=MastodonConnector.key,
            handle=handle[:255],
            defaults={"display_name": str(me.get("display_name") or handle)[:255]},
        )
        account.settings = {**account.settings, "instance": app.instance, "domain": domain}
        account.credentials = encrypt_credentials(credentials)
        account.status, account.last_error = AccountStatus.ACTIVE, ""
        account.status_changed_at = clock.now()
        account.save()
        action = "account.connected" if created else "account.reconnected"
        record_audit(workspace, actor, action, account, network=MastodonConnector.key)
    return account
