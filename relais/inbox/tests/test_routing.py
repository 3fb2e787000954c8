from datetime import timedelta

import pytest

from relais.accounts.actions import do_add_member, do_remove_member
from relais.accounts.models import AuditEntry
from relais.conftest import T0, make_item
from relais.connectors.base import PostKind
from relais.core import clock
from relais.inbox import actions
from relais.inbox.models import AgentState, Contact, Conversation
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


def ingest(workspace, *items):
    return do_ingest_items(workspace.pk, "sandbox", list(items))


def test_each_customer_gets_one_contact_across_their_conversations(workspace, brand_account):
    ingest(workspace, make_item("free:1", "@free panne"), make_item("free:2", "@free encore"))
    ingest(workspace, make_item("free:3", "@free toujours", handle="lea"))
    assert Conversation.objects.in_workspace(workspace.pk).count() == 3
    assert Contact.objects.get(authors__handle="camille").display_name == "Camille"
    assert Contact.objects.in_workspace(workspace.pk).count() == 2


def test_private_messages_from_one_person_form_one_conversation(workspace, brand_account):
    dm = PostKind.PRIVATE_MESSAGE
    ingest(workspace, make_item("free:1", "ma box ne marche plus", kind=dm, mentions=("free",)))
    ingest(workspace, make_item("free:2", "toujours", minutes=30, kind=dm, mentions=("free",)))
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    assert conversation.thread_key == "dm:id-camille"
    assert conversation.message_count == 2


def test_writing_after_resolution_reopens_with_a_new_resolution_deadline(
    workspace, brand_account, owner
):
    actions.do_set_sla_policy(owner, workspace, first_response_minutes=30, resolution_minutes=120)
    ingest(workspace, make_item("free:1", "@free panne"))
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    assert conversation.first_response_due == T0 + timedelta(minutes=30)
    actions.do_change_status(owner, conversation, "resolved")
    ingest(workspace, make_item("free:2", "@free revenu", minutes=600, in_reply_to="free:1"))
    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert conversation.resolved_at is None
    assert conversation.resolution_due == T0 + timedelta(minutes=600 + 120)


def test_the_brands_historical_reply_gives_the_first_response_time(workspace, brand_account):
    customer = make_item("free:1", "@free panne", followers=5000)
    ingest(workspace, customer)
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    assert conversation.waiting_since == T0
    assert conversation.priority_boost_minutes > 60  # 5,000 followers weigh
    brand = make_item(
        "free:2", "@camille on regarde", handle="free", minutes=22, in_reply_to="free:1"
    )
    ingest(workspace, brand)
    conversation.refresh_from_db()
    assert conversation.first_response_seconds == 22 * 60
    assert conversation.waiting_since is None
    assert conversation.urgent_since is None


def test_rules_give_new_conversations_to_present_agents_in_turn_within_capacity(
    workspace, brand_account, owner, agent, make_user
):
    other = make_user("sam")
    do_add_member(workspace, other, "agent", actor=owner)
    team = actions.do_create_team(owner, workspace, "Fibre")
    actions.do_set_team_members(owner, team, [agent, other])
    actions.do_create_rule(owner, workspace, "fibre", team=team, keyword="fibre")
    for user in (agent, other):
        actions.do_mark_seen(user, workspace.pk)
    actions.do_set_capacity(owner, workspace, other, 1)
    ingest(
        workspace,
        *[make_item(f"free:{n}", f"@free fibre coupée {n}", handle=f"c{n}") for n in range(4)],
        make_item("free:9", "@free facture", handle="c9"),
    )
    rows = Conversation.objects.in_workspace(workspace.pk).order_by("thread_key")
    assignees = [c.assignee_id for c in rows]
    assert assignees.count(other.pk) == 1  # capacity 1
    assert assignees.count(agent.pk) == 3
    assert rows.get(thread_key="free:9").assignee_id is None  # no rule matched
    assert {c.team_id for c in rows.exclude(thread_key="free:9")} == {team.pk}
    assert AuditEntry.objects.filter(action="conversation.auto_assigned").count() == 4


def test_absent_agents_and_agents_on_leave_get_nothing(workspace, brand_account, owner, agent):
    actions.do_create_rule(owner, workspace, "all", team=None)
    AgentState.objects.create(
        workspace=workspace, user=agent, last_seen_at=clock.now() - timedelta(hours=1)
    )
    ingest(workspace, make_item("free:1", "@free panne"))
    assert Conversation.objects.get().assignee is None
    actions.do_mark_seen(agent, workspace.pk)
    ingest(workspace, make_item("free:2", "@free panne", handle="lea"))
    assert Conversation.objects.get(thread_key="free:2").assignee == agent
    handed = actions.do_set_on_leave(owner, workspace, agent, on_leave=True)
    assert handed == 1
    assert Conversation.objects.get(thread_key="free:2").assignee is None


def test_a_member_who_leaves_the_workspace_hands_back_their_open_conversations(
    workspace, brand_account, owner, agent
):
    actions.do_create_rule(owner, workspace, "all", team=None)
    actions.do_mark_seen(agent, workspace.pk)
    ingest(workspace, make_item("free:1", "@free panne"), make_item("free:2", "@free", handle="l"))
    done = Conversation.objects.get(thread_key="free:2")
    actions.do_change_status(agent, done, "resolved")
    assert set(Conversation.objects.values_list("assignee_id", flat=True)) == {agent.pk}
    do_remove_member(workspace, agent, actor=owner)
    assert Conversation.objects.get(thread_key="free:1").assignee is None
    assert Conversation.objects.get(thread_key="free:2").assignee == agent  # history kept
    handed = AuditEntry.objects.get(action="conversation.assigned", data__reason="removed")
    assert handed.data["before"] == agent.pk
    assert AuditEntry.objects.filter(action="member.removed", target_id=str(agent.pk)).exists()


def test_a_member_who_may_no_longer_reply_hands_back_their_open_conversations(
    workspace, brand_account, owner, agent
):
    actions.do_create_rule(owner, workspace, "all", team=None)
    actions.do_mark_seen(agent, workspace.pk)
    ingest(workspace, make_item("free:1", "@free panne"))
    assert Conversation.objects.get().assignee == agent
    do_add_member(workspace, agent, "analyst", actor=owner)
    assert Conversation.objects.get().assignee is None
