from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from relais.accounts.actions import do_add_member
from relais.accounts.models import AuditEntry
from relais.connectors.base import TransientNetworkError
from relais.connectors.networks.sandbox import SandboxConnector
from relais.core import clock
from relais.core.errors import PermissionDeniedError, ValidationFailedError
from relais.publishing import actions
from relais.publishing.models import Target, TargetStatus, TrackedLink
from relais.publishing.tasks import publish_due
from relais.sandbox.models import SandboxOutbound

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(workspace, owner, make_user):
    user = make_user("morgan")
    do_add_member(workspace, user, "manager", actor=owner)
    return user


def approved_draft(agent, manager, brand_account, text="Stock sale today"):
    draft = actions.do_create_draft(agent, brand_account.workspace_id, text, [brand_account.pk])
    actions.do_submit_for_approval(agent, draft)
    actions.do_approve(manager, draft)
    return draft


def publish_now(draft):
    Target.objects.filter(draft=draft).update(scheduled_at=clock.now() - timedelta(seconds=1))
    return [actions.do_publish_target(t.pk) for t in draft.targets.all()]


def test_over_limit_text_is_refused_with_the_count(agent, workspace, brand_account):
    with pytest.raises(ValidationFailedError, match="281 of 280"):
        actions.do_create_draft(agent, workspace.pk, "a" * 281, [brand_account.pk])


def test_the_workflow_goes_draft_pending_approved_scheduled_published(
    agent, manager, workspace, brand_account
):
    draft = actions.do_create_draft(agent, workspace.pk, "New laptops", [brand_account.pk])
    target = draft.targets.get()
    assert target.status == TargetStatus.DRAFT
    actions.do_submit_for_approval(agent, draft)
    with pytest.raises(PermissionDeniedError):
        actions.do_approve(agent, draft)
    actions.do_approve(manager, draft)
    actions.do_schedule(agent, draft, clock.now() + timedelta(hours=1))
    target.refresh_from_db()
    assert target.status == TargetStatus.SCHEDULED
    assert actions.do_publish_target(target.pk) is None  # not due yet
    [published] = publish_now(draft)
    assert published.status == TargetStatus.PUBLISHED
    assert SandboxOutbound.objects.get().remote_id == published.remote_id
    steps = AuditEntry.objects.filter(action__startswith="publishing.").values_list(
        "action", flat=True
    )
    assert list(steps.order_by("pk")) == [
        "publishing.draft_created",
        "publishing.submitted",
        "publishing.approved",
        "publishing.scheduled",
        "publishing.published",
        "publishing.audience_simulated",
    ]


def test_who_approves_is_a_workspace_setting(owner, agent, manager, workspace, brand_account):
    actions.do_set_approver_roles(owner, workspace, ["owner", "agent"])
    draft = actions.do_create_draft(agent, workspace.pk, "Hello", [brand_account.pk])
    actions.do_submit_for_approval(agent, draft)
    with pytest.raises(PermissionDeniedError):
        actions.do_approve(manager, draft)
    actions.do_approve(agent, draft)
    assert draft.targets.get().status == TargetStatus.APPROVED
    with pytest.raises(PermissionDeniedError):
        actions.do_set_approver_roles(agent, workspace, ["agent"])


def test_requesting_changes_sends_it_back_with_a_comment(agent, manager, workspace, brand_account):
    draft = actions.do_create_draft(agent, workspace.pk, "Hello", [brand_account.pk])
    actions.do_submit_for_approval(agent, draft)
    actions.do_request_changes(manager, draft, "Add the price")
    assert draft.targets.get().status == TargetStatus.DRAFT
    assert draft.comments.get().text == "Add the price"


def test_editing_an_approved_post_needs_a_new_approval(agent, manager, workspace, brand_account):
    draft = approved_draft(agent, manager, brand_account)
    actions.do_update_draft(agent, draft, "Edited", [brand_account.pk])
    target = draft.targets.get()
    assert (target.text, target.status) == ("Edited", TargetStatus.DRAFT)


def test_a_schedule_in_the_past_is_refused(agent, manager, workspace, brand_account):
    draft = approved_draft(agent, manager, brand_account)
    with pytest.raises(ValidationFailedError, match="past"):
        actions.do_schedule(agent, draft, clock.now() - timedelta(minutes=1))


def test_a_schedule_is_read_in_the_workspace_time_zone(agent, manager, workspace, brand_account):
    workspace.time_zone = "Europe/Paris"
    workspace.save()
    draft = approved_draft(agent, manager, brand_account)
    local = datetime(2100, 7, 1, 9, 0)  # summer time: 07:00 UTC
    actions.do_schedule(agent, draft, local)
    assert draft.targets.get().scheduled_at == datetime(2100, 7, 1, 7, 0, tzinfo=ZoneInfo("UTC"))


def test_the_queue_fills_the_next_free_slots(agent, manager, workspace, brand_account):
    tomorrow = (clock.now() + timedelta(days=1)).astimezone(ZoneInfo(workspace.time_zone))
    actions.do_add_queue_slot(agent, workspace, tomorrow.weekday(), time(9, 0))
    actions.do_add_queue_slot(agent, workspace, tomorrow.weekday(), time(17, 30))
    first = actions.do_add_to_queue(agent, approved_draft(agent, manager, brand_account))
    second = actions.do_add_to_queue(agent, approved_draft(agent, manager, brand_account))
    assert (first.hour, second.hour, second.minute) == (9, 17, 30)
    assert first.date() == second.date() == tomorrow.date()


def test_a_recurring_post_schedules_its_next_occurrence(agent, manager, workspace, brand_account):
    draft = approved_draft(agent, manager, brand_account)
    actions.do_schedule(agent, draft, clock.now() + timedelta(hours=1), recurrence="daily")
    publish_now(draft)
    following = draft.targets.get(status=TargetStatus.SCHEDULED)
    assert following.scheduled_at > clock.now()
    assert following.idempotency_key != draft.targets.get(status="published").idempotency_key


def test_a_timeout_after_the_network_accepted_is_retried_without_a_second_post(
    agent, manager, brand_account, monkeypatch
):
    draft = approved_draft(agent, manager, brand_account)
    actions.do_schedule(agent, draft, clock.now() + timedelta(hours=1))
    real_publish = SandboxConnector.publish

    def accepted_then_timed_out(self, post, *, idempotency_key):
        real_publish(self, post, idempotency_key=idempotency_key)
        raise TransientNetworkError("read timed out")

    monkeypatch.setattr(SandboxConnector, "publish", accepted_then_timed_out)
    [target] = publish_now(draft)
    assert (target.status, target.last_error) == (TargetStatus.SCHEDULED, "read timed out")
    monkeypatch.setattr(SandboxConnector, "publish", real_publish)
    [target] = publish_now(draft)
    assert target.status == TargetStatus.PUBLISHED
    assert SandboxOutbound.objects.count() == 1


def test_a_refusal_fails_the_target_with_the_reason_and_it_can_be_retried(
    agent, manager, brand_account, monkeypatch
):
    draft = approved_draft(agent, manager, brand_account)
    actions.do_schedule(agent, draft, clock.now() + timedelta(hours=1))
    real_publish = SandboxConnector.publish

    def unreachable(self, post, *, idempotency_key):
        raise TransientNetworkError("network unreachable")

    monkeypatch.setattr(SandboxConnector, "publish", unreachable)
    Target.objects.update(attempts=actions.MAX_ATTEMPTS - 1)
    [target] = publish_now(draft)
    assert (target.status, target.last_error) == (TargetStatus.FAILED, "network unreachable")
    monkeypatch.setattr(SandboxConnector, "publish", real_publish)
    actions.do_retry_target(agent, target)
    assert publish_due() == 1
    target.refresh_from_db()
    assert target.status == TargetStatus.PUBLISHED


def test_a_claimed_target_is_not_claimed_twice(agent, manager, workspace, brand_account):
    draft = approved_draft(agent, manager, brand_account)
    actions.do_schedule(agent, draft, clock.now() + timedelta(hours=1))
    target = draft.targets.get()
    now = clock.now() + timedelta(hours=2)
    assert actions.claim_target(target.pk, now) is True
    assert actions.claim_target(target.pk, now) is False
    assert actions.claim_target(target.pk, now + actions.LEASE + timedelta(seconds=1)) is True


def test_links_become_tracked_short_links_per_account(agent, workspace, brand_account):
    text = "New stock: https://shop.example/laptops?ref=feed"
    draft = actions.do_create_draft(
        agent, workspace.pk, text, [brand_account.pk], link_base="https://relais.test/"
    )
    target = draft.targets.get()
    link = TrackedLink.objects.get(target=target)
    assert target.text == f"New stock: https://relais.test/l/{link.code}"
    assert (link.destination, link.utm_source) == (
        "https://shop.example/laptops?ref=feed",
        "sandbox",
    )
    actions.do_update_draft(agent, draft, "Still in stock: " + text[11:], [brand_account.pk])
    target.refresh_from_db()
    assert target.text == f"Still in stock: https://relais.test/l/{link.code}"
    assert TrackedLink.objects.count() == 1


def test_a_target_adapted_for_its_account_keeps_its_text_and_needs_approval_again(
    agent, manager, brand_account
):
    draft = approved_draft(agent, manager, brand_account)
    target = draft.targets.get()
    with pytest.raises(ValidationFailedError, match="281 of 280"):
        actions.do_adapt_target(agent, target, "c" * 281)
    actions.do_adapt_target(agent, target, "Shorter for this network")
    actions.do_update_draft(agent, draft, "Main text changed", [brand_account.pk])
    target.refresh_from_db()
    assert (target.text, target.status) == ("Shorter for this network", TargetStatus.DRAFT)
