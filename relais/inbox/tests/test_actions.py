from datetime import UTC, datetime, time

import pytest

from relais.accounts.models import AuditEntry
from relais.conftest import make_item
from relais.core.errors import PermissionDeniedError, ValidationFailedError
from relais.inbox import actions, queries
from relais.inbox.models import Contact, Conversation, SlaPolicy
from relais.inbox.sla import add_business_minutes
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(workspace, brand_account):
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free plus de réseau")])
    return Conversation.objects.in_workspace(workspace.pk).get()


def test_a_status_change_someone_else_made_first_is_not_overwritten(conversation, agent, owner):
    assert actions.do_change_status(owner, conversation, "pending", expected="new")
    stale = Conversation.objects.get(pk=conversation.pk)
    stale.status = "new"  # what the agent's page still shows
    with pytest.raises(ValidationFailedError, match="meanwhile"):
        actions.do_change_status(agent, stale, "resolved", expected="new")
    assert not actions.do_change_status(agent, stale, "pending")  # already so: nothing recorded
    assert AuditEntry.objects.filter(action="conversation.status_changed").count() == 1


def test_resolving_records_who_and_when(conversation, agent):
    actions.do_change_status(agent, conversation, "resolved")
    conversation.refresh_from_db()
    assert conversation.resolved_by == agent
    assert conversation.resolution_seconds is not None


def test_taking_a_conversation_someone_took_first_is_refused(conversation, agent, owner):
    assert actions.do_assign(owner, conversation, owner, expected_assignee_id=None)
    with pytest.raises(ValidationFailedError, match="took this conversation"):
        actions.do_assign(agent, conversation, agent, expected_assignee_id=None)
    with pytest.raises(PermissionDeniedError):
        actions.do_assign(agent, conversation, owner)  # only managers give to others
    conversation.refresh_from_db()
    assert conversation.assignee == owner


def test_tags_are_cleaned_and_filterable(conversation, agent, workspace):
    actions.do_set_tags(agent, conversation, "Fibre, urgent , fibre,  ")
    assert conversation.tags == ["fibre", "urgent"]
    listed = queries.conversations(workspace.pk, status="all", tag="urgent")
    assert list(listed) == [conversation]
    assert not queries.conversations(workspace.pk, status="all", tag="urg").exists()


def test_notes_record_the_colleagues_they_mention(conversation, agent, owner, workspace):
    note = actions.do_add_note(agent, conversation, f"@{owner.username} peux-tu voir ? @nobody")
    assert list(note.mentions.all()) == [owner]
    mentioning = queries.conversations(workspace.pk, status="all", user=owner, mentions=True)
    assert list(mentioning) == [conversation]


def test_merging_contacts_moves_identities_notes_tags_and_attributes(
    workspace, brand_account, agent
):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [make_item("free:1", "@free a"), make_item("free:2", "@free b", handle="camille_m")],
    )
    keep = Contact.objects.get(authors__handle="camille")
    merged = Contact.objects.get(authors__handle="camille_m")
    actions.do_update_contact(agent, keep, attributes={"plan": "Freebox Pop"}, tags="vip")
    actions.do_update_contact(
        agent, merged, attributes={"plan": "old", "city": "Lyon"}, tags="fibre"
    )
    actions.do_add_contact_note(agent, merged, "rappeler lundi")
    actions.do_merge_contacts(agent, keep, merged)
    keep.refresh_from_db()
    assert keep.attributes == {"plan": "Freebox Pop", "city": "Lyon"}
    assert keep.tags == ["vip", "fibre"]
    assert len(queries.identities(keep)) == 2
    assert queries.contact_conversations(keep).count() == 2
    assert [n.text for n in queries.contact_notes(keep)] == ["rappeler lundi"]
    assert not Contact.objects.filter(pk=merged.pk).exists()
    assert AuditEntry.objects.filter(action="contact.merged").count() == 1


def test_contacts_sharing_a_name_are_suggested_for_merging(workspace, brand_account):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [make_item("free:1", "@free a"), make_item("free:2", "@free b", handle="CAMILLE")],
    )
    groups = queries.merge_suggestions(workspace.pk)
    assert [sorted(c.display_name for c in group) for group in groups] == [["Camille", "Camille"]]
    contact = Contact.objects.get(authors__handle="camille")
    assert len(queries.merge_suggestions(workspace.pk, contact)[0]) == 2


def test_deadlines_count_business_hours_in_the_workspace_time_zone(workspace):
    policy = SlaPolicy(
        workspace=workspace,
        time_zone="Europe/Paris",
        business_start=time(9, 0),
        business_end=time(18, 0),
        business_days=[0, 1, 2, 3, 4],
    )
    friday_evening = datetime(2024, 8, 23, 15, 30, tzinfo=UTC)  # 17:30 in Paris
    due = add_business_minutes(policy, friday_evening, 60)
    assert due == datetime(2024, 8, 26, 7, 30, tzinfo=UTC)  # Monday 9:30 in Paris
    round_the_clock = SlaPolicy(workspace=workspace)
    assert add_business_minutes(round_the_clock, friday_evening, 60) == datetime(
        2024, 8, 23, 16, 30, tzinfo=UTC
    )


def test_a_policy_needs_a_known_time_zone_and_both_hours(owner, workspace):
    with pytest.raises(ValidationFailedError):
        actions.do_set_sla_policy(
            owner, workspace, first_response_minutes=5, resolution_minutes=60, time_zone="Mars/Base"
        )
    with pytest.raises(ValidationFailedError):
        actions.do_set_sla_policy(
            owner,
            workspace,
            first_response_minutes=5,
            resolution_minutes=60,
            business_start=time(9, 0),
        )


def test_breached_conversations_are_listed(conversation, owner, workspace):
    Conversation.objects.filter(pk=conversation.pk).update(
        first_response_due=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert list(queries.conversations(workspace.pk, breached=True)) == [conversation]
    assert queries.breached_count(workspace.pk) == 1
    actions.do_change_status(owner, conversation, "resolved")
    assert queries.breached_count(workspace.pk) == 0
