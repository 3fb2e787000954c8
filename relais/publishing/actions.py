"""Writes of the publishing module: drafts, approval, scheduling, idempotent publication.

A draft becomes one ``Target`` per connected account; each target walks draft -> pending
approval -> approved -> scheduled -> published / failed on its own. Publication claims a target
with a conditional UPDATE (a lease), so two workers never send the same target at once, and sends
the target's idempotency key, so a retry after a timeout or a killed worker gets the post the
network already accepted instead of a second one.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, membership_of, record_audit
from relais.accounts.models import User, Workspace
from relais.accounts.roles import Capability, Role
from relais.connectors.base import ConnectorError, OutboundPost
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.sandbox import SandboxConnector
from relais.connectors.registry import connector_for
from relais.core import clock
from relais.core.errors import PermissionDeniedError, ValidationFailedError
from relais.core.events import publish_event
from relais.publishing import audience
from relais.publishing.counting import URL, count_for
from relais.publishing.media import check_images_for_networks, outbound_media
from relais.publishing.models import (
    Claim,
    CodeMode,
    Draft,
    DraftComment,
    Forward,
    LinkClick,
    Offer,
    OfferCode,
    PublishingPolicy,
    QueueSlot,
    Recurrence,
    Target,
    TargetStatus,
    TrackedLink,
)

DEFAULT_APPROVER_ROLES = (Role.OWNER.value, Role.ADMIN.value, Role.MANAGER.value)
MAX_COMMENT_LENGTH = 5_000
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 5
RETRY_BACKOFF = timedelta(seconds=30)
MAX_STOCK = 100_000
RECURRENCE_STEP = {Recurrence.DAILY: timedelta(days=1), Recurrence.WEEKLY: timedelta(weeks=1)}
EDITABLE = (TargetStatus.DRAFT, TargetStatus.PENDING_APPROVAL, TargetStatus.APPROVED)


def _changed(workspace_id: int, draft_id: int) -> None:
    publish_event(workspace_id, "publishing.changed", {"draft": draft_id})


# Who approves -------------------------------------------------------------------------------


def policy_for(workspace_id: int) -> PublishingPolicy:
    """The workspace's policy, or the defaults when nobody changed them."""
    found = PublishingPolicy.objects.in_workspace(workspace_id).first()
    return found or PublishingPolicy(workspace_id=workspace_id)


def approver_roles(workspace_id: int) -> list[str]:
    return list(policy_for(workspace_id).approver_roles or DEFAULT_APPROVER_ROLES)


def check_approver(user: User, workspace_id: int) -> None:
    membership = membership_of(user, workspace_id)
    if membership is None or membership.role not in approver_roles(workspace_id):
        raise PermissionDeniedError(_("Your role may not approve posts in this workspace."))


def do_set_approver_roles(user: User, workspace: Workspace, roles: list[str]) -> PublishingPolicy:
    check_capability(user, workspace, Capability.MANAGE_MEMBERS)
    unknown = sorted(set(roles) - set(Role.values))
    if unknown:
        raise ValidationFailedError(_("Unknown role: %(role)s") % {"role": ", ".join(unknown)})
    if not roles:
        raise ValidationFailedError(_("At least one role must be able to approve posts."))
    with transaction.atomic():
        policy, _created = PublishingPolicy.objects.update_or_create(
            workspace=workspace, defaults={"approver_roles": sorted(set(roles))}
        )
        record_audit(workspace, user, "publishing.approvers_set", policy, roles=sorted(roles))
    return policy


# Composing ----------------------------------------------------------------------------------


def check_text_for_accounts(text: str, accounts: list[ConnectedAccount]) -> str:
    """Refuse empty text and text over any target network's limit, showing the count."""
    text = text.strip()
    if not text:
        raise ValidationFailedError(_("Write something before saving the post."))
    if not accounts:
        raise ValidationFailedError(_("Choose at least one account to publish to."))
    for account in accounts:
        count = count_for(account.network, text)
        if count.over:
            raise ValidationFailedError(
                _("%(length)d of %(limit)d characters on %(network)s (@%(handle)s): shorten it.")
                % {
                    "length": count.length,
                    "limit": count.limit,
                    "network": count.label,
                    "handle": account.handle,
                }
            )
    return text


def check_accounts(workspace_id: int, account_ids: list[int]) -> list[ConnectedAccount]:
    accounts = list(ConnectedAccount.objects.in_workspace(workspace_id).filter(pk__in=account_ids))
    if len(accounts) != len(set(account_ids)):
        raise ValidationFailedError(_("One of the chosen accounts is not in this workspace."))
    return accounts


def check_draft(
    user: User | None, workspace_id: int, text: str, account_ids: list[int]
) -> tuple[str, list[ConnectedAccount]]:
    if user is not None:
        check_capability(user, workspace_id, Capability.REPLY)
    accounts = check_accounts(workspace_id, account_ids)
    return check_text_for_accounts(text, accounts), accounts


def _new_target(draft: Draft, account: ConnectedAccount, text: str) -> Target:
    return Target(
        workspace_id=draft.workspace_id,
        draft=draft,
        account=account,
        text=text,
        idempotency_key=uuid.uuid4().hex,
    )


def do_create_draft(
    user: User | None,
    workspace_id: int,
    text: str,
    account_ids: list[int],
    *,
    offer_id: int | None = None,
    link_base: str = "",
) -> Draft:
    """A draft with one target per account; with ``link_base``, its links become tracked."""
    text, accounts = check_draft(user, workspace_id, text, account_ids)
    with transaction.atomic():
        draft = Draft.objects.create(
            workspace_id=workspace_id,
            text=text,
            created_by=user,
            offer_id=offer_id,
            link_base=link_base.rstrip("/"),
        )
        targets = Target.objects.bulk_create(
            [_new_target(draft, account, text) for account in accounts]
        )
        _track_links(draft, targets)
        record_audit(workspace_id, user, "publishing.draft_created", draft, targets=account_ids)
        _changed(workspace_id, draft.pk)
    return draft


def do_update_draft(user: User, draft: Draft, text: str, account_ids: list[int]) -> Draft:
    """Autosave and edits: changing the text sends every unpublished target back to draft."""
    text, accounts = check_draft(user, draft.workspace_id, text, account_ids)
    with transaction.atomic():
        targets = {t.account_id: t for t in draft.targets.select_for_update()}
        locked = [t for t in targets.values() if t.status not in EDITABLE]
        if locked:
            raise ValidationFailedError(
                _("A scheduled or published post cannot be edited; unschedule it first.")
            )
        Draft.objects.filter(pk=draft.pk).update(text=text, updated_at=clock.now())
        chosen = {account.pk for account in accounts}
        draft.targets.exclude(account_id__in=chosen).delete()
        draft.targets.filter(account_id__in=chosen).update(
            status=TargetStatus.DRAFT, approved_by=None
        )
        draft.targets.filter(account_id__in=chosen, adapted=False).update(text=text)
        Target.objects.bulk_create(
            [_new_target(draft, a, text) for a in accounts if a.pk not in targets]
        )
        draft.text = text
        _track_links(draft, list(draft.targets.filter(adapted=False).select_related("account")))
        record_audit(draft.workspace_id, user, "publishing.draft_edited", draft)
        _changed(draft.workspace_id, draft.pk)
    draft.text = text
    return draft


def do_adapt_target(user: User, target: Target, text: str) -> Target:
    """Rewrite the post for one account (its network's limit); it needs approval again."""
    check_capability(user, target.workspace_id, Capability.REPLY)
    if target.status not in EDITABLE:
        raise ValidationFailedError(
            _("A scheduled or published post cannot be edited; unschedule it first.")
        )
    text = check_text_for_accounts(text, [target.account])
    with transaction.atomic():
        Target.objects.filter(pk=target.pk).update(
            text=text, adapted=True, status=TargetStatus.DRAFT, approved_by=None
        )
        record_audit(target.workspace_id, user, "publishing.target_adapted", target)
        _changed(target.workspace_id, target.draft_id)
    target.text, target.adapted, target.status = text, True, TargetStatus.DRAFT
    return target


def _track_links(draft: Draft, targets: list[Target]) -> None:
    """Give each target its own short link per web address, tagged with its network (UTM).

    Editing the text again reuses the target's link for an address it already had.
    """
    if not draft.link_base:
        return
    prefix = f"{draft.link_base}/l/"
    for target in targets:
        network = target.account.network

        def shorten(match: re.Match[str], target: Target = target, network: str = network) -> str:
            address = match.group(0)
            if address.startswith(prefix):
                return address
            link = TrackedLink.objects.filter(target=target, destination=address).first()
            if link is None:
                try:
                    link = do_create_link(
                        None,
                        draft.workspace_id,
                        address,
                        utm_source=network,
                        utm_campaign=f"post-{draft.pk}",
                        target=target,
                    )
                except ValidationFailedError:
                    return address  # not a web address we can redirect to: left as written
            return prefix + link.code

        target.text = check_text_for_accounts(URL.sub(shorten, draft.text), [target.account])
        Target.objects.filter(pk=target.pk).update(text=target.text)


def do_add_comment(user: User, draft: Draft, text: str) -> DraftComment:
    check_capability(user, draft.workspace_id, Capability.VIEW)
    text = text.strip()
    if not text:
        raise ValidationFailedError(_("A comment cannot be empty."))
    if len(text) > MAX_COMMENT_LENGTH:
        raise ValidationFailedError(
            _("A comment is limited to %(limit)d characters.") % {"limit": MAX_COMMENT_LENGTH}
        )
    with transaction.atomic():
        comment = DraftComment.objects.create(
            workspace_id=draft.workspace_id, draft=draft, author=user, text=text
        )
        record_audit(draft.workspace_id, user, "publishing.commented", draft)
        _changed(draft.workspace_id, draft.pk)
    return comment


# Approval -----------------------------------------------------------------------------------


def _move(
    user: User | None,
    draft: Draft,
    before: tuple[str, ...],
    after: str,
    action: str,
    **fields: object,
) -> int:
    """Move the draft's targets that are in ``before`` to ``after``; refuse if none are."""
    with transaction.atomic():
        moved = draft.targets.filter(status__in=before).update(status=after, **fields)
        if not moved:
            raise ValidationFailedError(_("No target of this post is in a state for that."))
        record_audit(draft.workspace_id, user, action, draft, targets=moved)
        _changed(draft.workspace_id, draft.pk)
    return moved


def do_submit_for_approval(user: User, draft: Draft) -> int:
    check_capability(user, draft.workspace_id, Capability.REPLY)
    check_images_for_networks(draft)
    return _move(
        user,
        draft,
        (TargetStatus.DRAFT,),
        TargetStatus.PENDING_APPROVAL,
        "publishing.submitted",
    )


def do_approve(user: User, draft: Draft) -> int:
    check_approver(user, draft.workspace_id)
    return _move(
        user,
        draft,
        (TargetStatus.PENDING_APPROVAL,),
        TargetStatus.APPROVED,
        "publishing.approved",
        approved_by=user,
    )


def do_request_changes(user: User, draft: Draft, reason: str) -> int:
    """Send a pending post back to its author, with the reason as a comment."""
    check_approver(user, draft.workspace_id)
    with transaction.atomic():
        moved = _move(
            user,
            draft,
            (TargetStatus.PENDING_APPROVAL, TargetStatus.APPROVED),
            TargetStatus.DRAFT,
            "publishing.changes_requested",
            approved_by=None,
        )
        if reason.strip():
            do_add_comment(user, draft, reason)
    return moved


# Scheduling ---------------------------------------------------------------------------------


def local_to_utc(workspace: Workspace, local: datetime) -> datetime:
    """A wall-clock time typed in the workspace's time zone, as an aware datetime."""
    if local.tzinfo is not None:
        return local
    return local.replace(tzinfo=ZoneInfo(workspace.time_zone))


def check_schedule(when: datetime) -> datetime:
    if when <= clock.now():
        raise ValidationFailedError(_("This time is in the past: choose a time to come."))
    return when


def do_schedule(
    user: User, draft: Draft, when: datetime, *, recurrence: str = Recurrence.NONE
) -> int:
    check_capability(user, draft.workspace_id, Capability.REPLY)
    when = check_schedule(local_to_utc(draft.workspace, when))
    if recurrence not in Recurrence.values:
        raise ValidationFailedError(_("Unknown repetition."))
    return _move(
        user,
        draft,
        (TargetStatus.APPROVED,),
        TargetStatus.SCHEDULED,
        "publishing.scheduled",
        scheduled_at=when,
        recurrence=recurrence,
        last_error="",
    )


def do_unschedule(user: User, draft: Draft) -> int:
    check_capability(user, draft.workspace_id, Capability.REPLY)
    return _move(
        user,
        draft,
        (TargetStatus.SCHEDULED,),
        TargetStatus.APPROVED,
        "publishing.unscheduled",
        scheduled_at=None,
    )


def do_move_to_day(user: User, target: Target, day: date, hour: int | None = None) -> datetime:
    """Calendar drag and drop: another day (month view) or day and hour (week view), keeping
    the post's minutes; times are the workspace's wall clock."""
    check_capability(user, target.workspace_id, Capability.REPLY)
    if target.scheduled_at is None:
        raise ValidationFailedError(_("Only a scheduled post can be moved."))
    zone = ZoneInfo(target.draft.workspace.time_zone)
    local = target.scheduled_at.astimezone(zone)
    if hour is not None and not 0 <= hour <= 23:
        raise ValidationFailedError(_("Choose an hour between 0 and 23."))
    at = local.time() if hour is None else local.time().replace(hour=hour)
    return do_reschedule_target(user, target, datetime.combine(day, at))


def do_reschedule_target(user: User, target: Target, when: datetime) -> datetime:
    """Move one scheduled post to another time (typed in the workspace's time zone)."""
    check_capability(user, target.workspace_id, Capability.REPLY)
    if target.status != TargetStatus.SCHEDULED or target.scheduled_at is None:
        raise ValidationFailedError(_("Only a scheduled post can be moved."))
    zone = ZoneInfo(target.draft.workspace.time_zone)
    when = check_schedule(when if when.tzinfo else when.replace(tzinfo=zone))
    with transaction.atomic():
        moved = Target.objects.filter(pk=target.pk, status=TargetStatus.SCHEDULED).update(
            scheduled_at=when
        )
        if not moved:
            raise ValidationFailedError(_("Only a scheduled post can be moved."))
        record_audit(target.workspace_id, user, "publishing.moved", target, to=when.isoformat())
        _changed(target.workspace_id, target.draft_id)
    return when


def next_free_slot(workspace: Workspace, after: datetime) -> datetime | None:
    """The first queue slot after ``after`` that no scheduled target already takes."""
    slots = list(QueueSlot.objects.in_workspace(workspace.pk))
    if not slots:
        return None
    zone = ZoneInfo(workspace.time_zone)
    taken = set(
        Target.objects.in_workspace(workspace.pk)
        .filter(status=TargetStatus.SCHEDULED, scheduled_at__gt=after)
        .values_list("scheduled_at", flat=True)
    )
    start = after.astimezone(zone).date()
    for offset in range(7 * 52):
        day = start + timedelta(days=offset)
        for slot in (s for s in slots if s.weekday == day.weekday()):
            when = datetime.combine(day, slot.time, tzinfo=zone)
            if when > after and when not in taken:
                return when
    return None


def do_add_to_queue(user: User, draft: Draft) -> datetime:
    when = next_free_slot(draft.workspace, clock.now())
    if when is None:
        raise ValidationFailedError(_("This workspace has no free queue slot: add time slots."))
    do_schedule(user, draft, when)
    return when


def check_slot(weekday: int, at: time) -> tuple[int, time]:
    if not 0 <= weekday <= 6:
        raise ValidationFailedError(_("Choose a day of the week."))
    return weekday, at.replace(second=0, microsecond=0)


def do_add_queue_slot(user: User, workspace: Workspace, weekday: int, at: time) -> QueueSlot:
    check_capability(user, workspace, Capability.REPLY)
    weekday, at = check_slot(weekday, at)
    with transaction.atomic():
        slot, _created = QueueSlot.objects.get_or_create(
            workspace=workspace, weekday=weekday, time=at
        )
        record_audit(workspace, user, "publishing.slot_added", slot, weekday=weekday)
    return slot


def do_remove_queue_slot(user: User, slot: QueueSlot) -> None:
    check_capability(user, slot.workspace_id, Capability.REPLY)
    with transaction.atomic():
        record_audit(slot.workspace_id, user, "publishing.slot_removed", slot)
        slot.delete()


# Publishing ---------------------------------------------------------------------------------


def due_target_ids(now: datetime, limit: int = 200) -> list[int]:
    """Scheduled targets whose time has come and that nobody holds a live lease on."""
    return list(
        Target.objects.filter(status=TargetStatus.SCHEDULED, scheduled_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("scheduled_at")
        .values_list("pk", flat=True)[:limit]
    )


def claim_target(target_id: int, now: datetime) -> bool:
    """Take the target for one publication attempt; the conditional UPDATE lets one worker win."""
    claimed = (
        Target.objects.filter(pk=target_id, status=TargetStatus.SCHEDULED, scheduled_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + LEASE, attempts=F("attempts") + 1)
    )
    return claimed == 1


def do_publish_target(target_id: int) -> Target | None:
    """Publish a due target once. Returns None when another worker holds it or it is not due."""
    now = clock.now()
    if not claim_target(target_id, now):
        return None
    target = Target.objects.select_related("account", "draft").get(pk=target_id)
    if target.account.status != AccountStatus.ACTIVE:
        return _record_failure(target, _("The account needs to be reconnected."), retry=False)
    connector = connector_for(target.account)
    try:
        sent = connector.publish(
            OutboundPost(text=target.text, media=outbound_media(target)),
            idempotency_key=target.idempotency_key,
        )
    except ConnectorError as error:
        retry = error.retryable and target.attempts < MAX_ATTEMPTS
        return _record_failure(target, str(error) or type(error).__name__, retry=retry)
    published = _record_published(target, sent.remote_id, sent.created_at)
    if target.account.network == SandboxConnector.key:
        do_simulate_audience(target.pk)  # the sandbox's simulated followers start forwarding
    return published


def _record_published(target: Target, remote_id: str, published_at: datetime) -> Target:
    with transaction.atomic():
        record_audit(target.workspace_id, None, "publishing.published", target, remote_id=remote_id)
        Target.objects.filter(pk=target.pk).update(
            status=TargetStatus.PUBLISHED,
            remote_id=remote_id,
            published_at=published_at,
            lease_until=None,
            last_error="",
        )
        if step := RECURRENCE_STEP.get(Recurrence(target.recurrence)):
            _schedule_next_occurrence(target, step)
        _changed(target.workspace_id, target.draft_id)
    target.status, target.remote_id, target.published_at = (
        TargetStatus.PUBLISHED,
        remote_id,
        published_at,
    )
    return target


def _schedule_next_occurrence(target: Target, step: timedelta) -> None:
    """A recurring post: the next occurrence is a new target with its own idempotency key."""
    assert target.scheduled_at is not None
    following = target.scheduled_at + step
    while following <= clock.now():
        following += step
    Target.objects.create(
        workspace_id=target.workspace_id,
        draft_id=target.draft_id,
        account_id=target.account_id,
        text=target.text,
        status=TargetStatus.SCHEDULED,
        scheduled_at=following,
        recurrence=target.recurrence,
        idempotency_key=uuid.uuid4().hex,
        approved_by_id=target.approved_by_id,
    )


def _record_failure(target: Target, reason: str, *, retry: bool) -> Target:
    """A transient failure is retried later with the same key; anything else fails the target."""
    with transaction.atomic():
        if retry:
            Target.objects.filter(pk=target.pk).update(
                lease_until=None,
                scheduled_at=clock.now() + RETRY_BACKOFF * target.attempts,
                last_error=reason,
            )
            record_audit(
                target.workspace_id, None, "publishing.retry_planned", target, error=reason
            )
        else:
            Target.objects.filter(pk=target.pk).update(
                status=TargetStatus.FAILED, lease_until=None, last_error=reason
            )
            target.status = TargetStatus.FAILED
            record_audit(target.workspace_id, None, "publishing.failed", target, error=reason)
        _changed(target.workspace_id, target.draft_id)
    target.last_error = reason
    return target


def do_retry_target(user: User, target: Target) -> None:
    """Try a failed target again at the next publish run, with the same key: a post the network
    took is not resent."""
    check_capability(user, target.workspace_id, Capability.REPLY)
    with transaction.atomic():
        moved = Target.objects.filter(pk=target.pk, status=TargetStatus.FAILED).update(
            status=TargetStatus.SCHEDULED, scheduled_at=clock.now(), attempts=0
        )
        if not moved:
            raise ValidationFailedError(_("Only a failed post can be retried."))
        record_audit(target.workspace_id, user, "publishing.retried", target)
        _changed(target.workspace_id, target.draft_id)


# Tracked links ------------------------------------------------------------------------------


def check_destination(destination: str) -> str:
    destination = destination.strip()
    validator = URLValidator(schemes=["http", "https"])
    try:
        validator(destination)
    except DjangoValidationError as error:
        raise ValidationFailedError(_("Enter a full web address (https://...).")) from error
    return destination


def new_link_code() -> str:
    return secrets.token_urlsafe(6)


def do_create_link(
    user: User | None,
    workspace_id: int,
    destination: str,
    *,
    utm_source: str = "",
    utm_medium: str = "social",
    utm_campaign: str = "",
    target: Target | None = None,
    offer: Offer | None = None,
    code: str = "",
) -> TrackedLink:
    """A short link to ``destination``; an offer's link leads to its landing page on this site."""
    if user is not None:
        check_capability(user, workspace_id, Capability.REPLY)
    if offer is None:
        destination = check_destination(destination)
    with transaction.atomic():
        link = TrackedLink.objects.create(
            workspace_id=workspace_id,
            code=code or new_link_code(),
            destination=destination,
            utm_source=utm_source[:64],
            utm_medium=utm_medium[:64],
            utm_campaign=utm_campaign[:64],
            target=target,
            offer=offer,
        )
        record_audit(workspace_id, user, "publishing.link_created", link, code=link.code)
    return link


# Promotions ---------------------------------------------------------------------------------


def check_offer(
    *,
    product: str,
    price: Decimal,
    stock: int,
    starts_at: datetime,
    ends_at: datetime,
    code_mode: str,
    shared_code: str,
) -> None:
    if not product.strip():
        raise ValidationFailedError(_("Name the product on offer."))
    if price < 0:
        raise ValidationFailedError(_("A price cannot be negative."))
    if not 1 <= stock <= MAX_STOCK:
        raise ValidationFailedError(
            _("Stock must be between 1 and %(limit)d units.") % {"limit": MAX_STOCK}
        )
    if ends_at <= starts_at:
        raise ValidationFailedError(_("The offer must end after it starts."))
    if ends_at <= clock.now():
        raise ValidationFailedError(_("This time is in the past: choose a time to come."))
    if code_mode not in CodeMode.values:
        raise ValidationFailedError(_("Choose how codes are given."))
    if code_mode == CodeMode.SHARED and not shared_code.strip():
        raise ValidationFailedError(_("Enter the code customers will use."))


def check_reply_keywords(keywords: str) -> str:
    """Comma-separated words or phrases; each at least 2 characters, at most 10 of them."""
    words = [" ".join(word.split()) for word in keywords.split(",")]
    words = [word for word in words if word]
    if any(len(word) < 2 for word in words) or len(words) > 10:
        raise ValidationFailedError(
            _("Claim keywords: up to 10 words or phrases of 2 characters or more, comma separated.")
        )
    joined = ", ".join(words)
    if len(joined) > 200:
        raise ValidationFailedError(_("Claim keywords are limited to 200 characters."))
    return joined


def do_create_offer(
    user: User,
    workspace: Workspace,
    *,
    product: str,
    price: Decimal,
    stock: int,
    starts_at: datetime,
    ends_at: datetime,
    code_mode: str = CodeMode.SHARED,
    shared_code: str = "",
    currency: str = "EUR",
    reply_keywords: str = "",
) -> Offer:
    check_capability(user, workspace, Capability.REPLY)
    starts_at, ends_at = local_to_utc(workspace, starts_at), local_to_utc(workspace, ends_at)
    check_offer(
        product=product,
        price=price,
        stock=stock,
        starts_at=starts_at,
        ends_at=ends_at,
        code_mode=code_mode,
        shared_code=shared_code,
    )
    with transaction.atomic():
        offer = Offer.objects.create(
            workspace=workspace,
            product=product.strip(),
            price=price,
            currency=currency.upper()[:3],
            stock=stock,
            stock_left=stock,
            starts_at=starts_at,
            ends_at=ends_at,
            code_mode=code_mode,
            shared_code=shared_code.strip() if code_mode == CodeMode.SHARED else "",
            reply_keywords=check_reply_keywords(reply_keywords),
            created_by=user,
        )
        if code_mode == CodeMode.UNIQUE:
            OfferCode.objects.bulk_create(
                OfferCode(workspace=workspace, offer=offer, code=_unique_code())
                for _unit in range(stock)
            )
        record_audit(workspace, user, "publishing.offer_created", offer, stock=stock)
    return offer


def _unique_code() -> str:
    return secrets.token_hex(4).upper()


def offer_text(offer: Offer, link_url: str) -> str:
    text = _("%(product)s at %(price)s %(currency)s, %(stock)d available: %(url)s") % {
        "product": offer.product,
        "price": offer.price,
        "currency": offer.currency,
        "stock": offer.stock_left,
        "url": link_url,
    }
    if offer.reply_keywords:
        keyword = offer.reply_keywords.split(",")[0].strip()
        text += " " + _("Or reply %(keyword)s to claim one.") % {"keyword": keyword}
    return text


def do_create_offer_draft(user: User, offer: Offer, account_ids: list[int], base_url: str) -> Draft:
    """A draft announcing the offer on each account, each with its own tracked link."""
    check_capability(user, offer.workspace_id, Capability.REPLY)
    accounts = check_accounts(offer.workspace_id, account_ids)
    if not accounts:
        raise ValidationFailedError(_("Choose at least one account to publish to."))
    base_url = base_url.rstrip("/")
    with transaction.atomic():
        draft = Draft.objects.create(
            workspace_id=offer.workspace_id,
            text=offer_text(offer, f"{base_url}/l/…"),
            created_by=user,
            offer=offer,
        )
        for account in accounts:
            target = _new_target(draft, account, "")
            target.save()
            code = new_link_code()
            do_create_link(
                user,
                offer.workspace_id,
                f"{base_url}/l/{code}/offer/",
                code=code,
                utm_source=account.network,
                utm_campaign=f"offer-{offer.pk}",
                target=target,
                offer=offer,
            )
            target.text = check_text_for_accounts(
                offer_text(offer, f"{base_url}/l/{code}"), [account]
            )
            target.save(update_fields=["text"])
        record_audit(offer.workspace_id, user, "publishing.draft_created", draft, offer=offer.pk)
        _changed(offer.workspace_id, draft.pk)
    return draft


def do_claim(
    offer_id: int,
    *,
    link: TrackedLink | None = None,
    forwarder: str = "",
    claimant: str = "",
    simulated: bool = False,
    network: str = "",
) -> Claim:
    """Take one unit: the stock is decremented by a conditional UPDATE, so it never goes below 0.

    A person (``claimant``, a keyed hash) who claims again gets the claim they already have.
    """
    if claimant and (already := Claim.objects.filter(offer_id=offer_id, claimant=claimant).first()):
        return already
    try:
        return _take_unit(
            offer_id,
            link=link,
            forwarder=forwarder,
            claimant=claimant,
            simulated=simulated,
            network=network,
        )
    except IntegrityError:
        # The same person's double submit won the race: the unit taken here was rolled back.
        return Claim.objects.get(offer_id=offer_id, claimant=claimant)


def _take_unit(
    offer_id: int,
    *,
    link: TrackedLink | None,
    forwarder: str,
    claimant: str,
    simulated: bool,
    network: str,
) -> Claim:
    now = clock.now()
    with transaction.atomic():
        taken = Offer.objects.filter(
            pk=offer_id, stock_left__gt=0, starts_at__lte=now, ends_at__gt=now
        ).update(stock_left=F("stock_left") - 1)
        offer = Offer.objects.get(pk=offer_id)
        if not taken:
            raise ValidationFailedError(_refusal(offer, now))
        code = offer.shared_code
        if offer.code_mode == CodeMode.UNIQUE:
            unit = (
                OfferCode.objects.select_for_update(skip_locked=True)
                .filter(offer_id=offer_id, claimed=False)
                .order_by("pk")
                .first()
            )
            assert unit is not None, "an offer has as many unique codes as units"
            OfferCode.objects.filter(pk=unit.pk).update(claimed=True)
            code = unit.code
        claim = Claim.objects.create(
            workspace_id=offer.workspace_id,
            offer=offer,
            link=link,
            code=code,
            network=network or (link.utm_source if link else ""),
            forwarder=forwarder[:255],
            amount=offer.price,
            simulated=simulated,
            claimant=claimant,
            created_at=now,
        )
        record_audit(offer.workspace_id, None, "publishing.claimed", offer, claim=claim.pk)
        publish_event(offer.workspace_id, "publishing.claimed", {"offer": offer_id})
        if offer.stock_left == 0 and _mark_sold_out(offer_id, now):
            transaction.on_commit(lambda: do_post_sold_out(offer_id))
    return claim


def _refusal(offer: Offer, now: datetime) -> str:
    if offer.stock_left == 0:
        return _("Sold out: every unit of %(product)s has been claimed.") % {
            "product": offer.product
        }
    if now < offer.starts_at:
        return _("This offer has not started yet.")
    return _("This offer has ended.")


def _mark_sold_out(offer_id: int, now: datetime) -> bool:
    return Offer.objects.filter(pk=offer_id, sold_out_at__isnull=True).update(sold_out_at=now) == 1


def do_post_sold_out(offer_id: int) -> Draft | None:
    """Tell every account that announced the offer that it is sold out, at the next publish run.

    The announcement was approved, and a sold-out notice only withdraws it, so it skips approval.
    """
    offer = Offer.objects.get(pk=offer_id)
    account_ids = sorted(
        set(
            Target.objects.filter(draft__offer=offer, status=TargetStatus.PUBLISHED).values_list(
                "account_id", flat=True
            )
        )
    )
    if not account_ids or Draft.objects.filter(offer=offer, text=sold_out_text(offer)).exists():
        return None
    text = sold_out_text(offer)
    with transaction.atomic():
        draft = Draft.objects.create(workspace_id=offer.workspace_id, text=text, offer=offer)
        targets = [
            _new_target(draft, account, text)
            for account in check_accounts(offer.workspace_id, account_ids)
        ]
        for target in targets:
            target.status, target.scheduled_at = TargetStatus.SCHEDULED, clock.now()
        Target.objects.bulk_create(targets)
        record_audit(offer.workspace_id, None, "publishing.sold_out_posted", draft, offer=offer.pk)
        _changed(offer.workspace_id, draft.pk)
    return draft


def sold_out_text(offer: Offer) -> str:
    return _("Sold out: all %(stock)d units of %(product)s found a home. Thank you!") % {
        "stock": offer.stock,
        "product": offer.product,
    }


# The simulated sandbox audience ------------------------------------------------------------


def do_set_simulation(
    user: User, workspace: Workspace, *, click_rate: float, claim_rate: float, speed: float
) -> PublishingPolicy:
    check_capability(user, workspace, Capability.MANAGE_ACCOUNTS)
    if not (0 <= click_rate <= 1 and 0 <= claim_rate <= 1):
        raise ValidationFailedError(_("Rates are shares between 0 and 1."))
    if not 1 <= speed <= 100_000:
        raise ValidationFailedError(_("The speed must be between 1 and 100,000."))
    with transaction.atomic():
        policy, _created = PublishingPolicy.objects.update_or_create(
            workspace=workspace,
            defaults={
                "simulated_click_rate": click_rate,
                "simulated_claim_rate": claim_rate,
                "simulated_speed": speed,
            },
        )
        record_audit(
            workspace,
            user,
            "publishing.simulation_set",
            policy,
            click_rate=click_rate,
            claim_rate=claim_rate,
            speed=speed,
        )
    return policy


def do_simulate_audience(target_id: int) -> int:
    """Plan the simulated forwards of a published sandbox post (once); they settle over time."""
    target = Target.objects.select_related("account").get(pk=target_id)
    if target.status != TargetStatus.PUBLISHED or target.account.network != SandboxConnector.key:
        return 0
    if Forward.objects.filter(target=target).exists():
        return 0
    assert target.published_at is not None
    speed = policy_for(target.workspace_id).simulated_speed
    graph, calib = audience.audience_graph(), audience.calibration()
    rng = np.random.default_rng(target.pk)
    cascade = audience.simulate_cascade(graph, calib, audience.draw_size(rng, calib), rng)
    saved: dict[int, Forward] = {}
    with transaction.atomic():
        for depth in sorted({step.depth for step in cascade}):
            level = [
                Forward(
                    workspace_id=target.workspace_id,
                    target=target,
                    parent=saved.get(step.parent) if step.parent is not None else None,
                    network=target.account.network,
                    forwarder_id=str(step.node),
                    handle=audience.handle_of(step.node),
                    followers=len(graph.followers_of(step.node)),
                    depth=depth,
                    forwarded_at=target.published_at + step.after / speed,
                    simulated=True,
                    settled=False,
                )
                for step in cascade
                if step.depth == depth
            ]
            for forward in Forward.objects.bulk_create(level):
                saved[int(forward.forwarder_id)] = forward
        record_audit(
            target.workspace_id, None, "publishing.audience_simulated", target, forwards=len(saved)
        )
    return len(saved)


def do_settle_forwards(now: datetime, limit: int = 2000) -> int:
    """Simulated forwards whose time has come: draw the clicks and claims they bring."""
    due: dict[int, list[int]] = {}
    for forward_id, target_id in (
        Forward.objects.filter(simulated=True, settled=False, forwarded_at__lte=now)
        .order_by("forwarded_at", "pk")
        .values_list("pk", "target_id")[:limit]
    ):
        due.setdefault(target_id, []).append(forward_id)
    settled = 0
    for target_id, forward_ids in due.items():
        # Each forward is settled by whoever flips its flag first, so workers never double up.
        mine = [
            pk
            for pk in forward_ids
            if Forward.objects.filter(pk=pk, settled=False).update(settled=True) == 1
        ]
        _settle_target(target_id, mine, now)
        settled += len(mine)
    return settled


def _settle_target(target_id: int, forward_ids: list[int], now: datetime) -> None:
    """Walk the target's newly settled forwards in time order; each reaches only new people."""
    graph = audience.audience_graph()
    before = Forward.objects.filter(target_id=target_id, settled=True).exclude(pk__in=forward_ids)
    reached = np.zeros(graph.size, dtype=np.bool_)
    earlier = np.asarray(list(before.values_list("forwarder_id", flat=True)), dtype=np.int64)
    reached[graph.followers_of_all(earlier)] = True
    link = TrackedLink.objects.filter(target_id=target_id, offer__isnull=False).first()
    forwards = list(Forward.objects.filter(pk__in=forward_ids).order_by("forwarded_at", "pk"))
    for forward in forwards:
        followers = graph.followers_of(int(forward.forwarder_id))
        newly = followers[~reached[followers]]
        reached[followers] = True
        if link is not None and newly.size:
            _simulate_visits(forward, link, newly, now)
    if forwards:
        publish_event(forwards[0].workspace_id, "publishing.forwarded", {"target": target_id})


def _simulate_visits(forward: Forward, link: TrackedLink, newly: np.ndarray, now: datetime) -> None:
    """Of the people this forward newly reached: who clicks, and how many of them claim."""
    assert link.offer_id is not None
    policy = policy_for(forward.workspace_id)
    rng = np.random.default_rng(forward.pk)
    clickers = newly[rng.random(newly.size) < policy.simulated_click_rate]
    LinkClick.objects.bulk_create(
        [
            LinkClick(
                workspace_id=forward.workspace_id,
                link=link,
                day=now.date(),
                visitor=f"simulated-{node}",
                forwarder=forward.handle,
                simulated=True,
            )
            for node in clickers
        ],
        ignore_conflicts=True,
    )
    for _claim in range(int(rng.binomial(clickers.size, policy.simulated_claim_rate))):
        try:
            do_claim(link.offer_id, link=link, forwarder=forward.handle, simulated=True)
        except ValidationFailedError:
            break  # sold out or over: the rest of this audience finds nothing left
