"""The inbox list: the tag rows its filter reads, the rows it writes in Python, the badges."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from relais.conftest import make_item
from relais.core import clock
from relais.inbox import actions, queries
from relais.inbox.models import AgentState, Conversation, ConversationTag
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import Author
from relais.sandbox.actions import do_connect_sandbox_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(workspace, brand_account) -> Conversation:
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free panne fibre")])
    return Conversation.objects.in_workspace(workspace.pk).get()


def tag_rows(conversation: Conversation) -> list[str]:
    return sorted(
        ConversationTag.objects.in_workspace(conversation.workspace_id)
        .filter(conversation=conversation)
        .values_list("tag", flat=True)
    )


def tagged(workspace, tag: str) -> list[Conversation]:
    return list(queries.conversations(workspace.pk, status="all", tag=tag))


def test_the_tag_rows_follow_every_change_of_the_tags(conversation, agent, workspace):
    actions.do_set_tags(agent, conversation, "Fibre, urgent")
    assert tag_rows(conversation) == ["fibre", "urgent"]
    assert tagged(workspace, "FIBRE") == [conversation]
    actions.do_set_tags(agent, conversation, "urgent, rappel")
    conversation.refresh_from_db()
    assert tag_rows(conversation) == sorted(conversation.tags) == ["rappel", "urgent"]
    assert tagged(workspace, "fibre") == []
    assert tagged(workspace, "rappel") == [conversation]
    actions.do_set_tags(agent, conversation, "")
    assert tag_rows(conversation) == []
    assert tagged(workspace, "urgent") == []


def test_the_tag_filter_stays_in_its_workspace(conversation, agent, workspace, make_workspace):
    actions.do_set_tags(agent, conversation, "fibre")
    other = make_workspace("Other")
    other_owner = other.memberships.get().user
    do_connect_sandbox_account(other, "free", "Freebox", ["free"], actor=other_owner)
    do_ingest_items(other.pk, "sandbox", [make_item("free:1", "@free panne fibre")])
    theirs = Conversation.objects.in_workspace(other.pk).get()
    actions.do_set_tags(other_owner, theirs, "fibre")
    assert tagged(workspace, "fibre") == [conversation]
    assert tagged(other, "fibre") == [theirs]


def test_a_row_shows_its_conversation_with_every_value_escaped(
    client, owner, workspace, brand_account
):
    actions.do_set_sla_policy(owner, workspace, first_response_minutes=60, resolution_minutes=600)
    do_ingest_items(
        workspace.pk, "sandbox", [make_item("free:1", "@free <script>alert(1)</script> panne")]
    )
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    Author.objects.filter(pk=conversation.customer_id).update(name='Zoé <b>"Z"</b>')
    team = actions.do_create_team(owner, workspace, "Care & <Co>")
    actions.do_set_team(owner, conversation, team)
    actions.do_assign(owner, conversation, owner)
    actions.do_set_tags(owner, conversation, "fibre")
    client.force_login(owner)
    page = client.get(reverse("inbox", args=[workspace.slug]) + "?tag=fibre").content.decode()
    row = page[page.index(f'data-conversation="{conversation.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "<script>" not in row
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row
    assert "Zoé &lt;b&gt;&quot;Z&quot;&lt;/b&gt;" in row
    assigned = owner.get_full_name() or owner.username
    assert f'<td>{assigned} <span class="team">Care &amp; &lt;Co&gt;</span></td>' in row
    assert '<span class="tag">fibre</span>' in row
    conversation_url = reverse("conversation", args=[workspace.slug, conversation.pk])
    assert f'<a href="{conversation_url}">' in row
    assert '<span class="badge new">New</span>' in row
    assert 'class="sla sla-breached"' in row  # the deadline passed long ago (the items' date)
    assert "First response late by" in row


def test_the_badges_count_each_status_and_the_breaches_in_one_query(
    workspace, brand_account, django_assert_num_queries
):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [make_item(f"free:{n}", f"@free panne {n}", handle=f"c{n}") for n in range(3)],
    )
    with django_assert_num_queries(1):
        counts = queries.capped_counts(workspace.pk)
    assert counts == {"new": 3, "open": 0, "pending": 0, "resolved": 0, "breached": 0}


@pytest.mark.django_db(transaction=True)
def test_the_migration_copies_the_tags_already_set_and_reverses(workspace, brand_account):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [make_item("free:1", "@free a"), make_item("free:2", "@free b", handle="lea")],
    )
    first, second = Conversation.objects.in_workspace(workspace.pk).order_by("pk")
    before = [("inbox", "0004_crm_webhooks_sla_breaches_list_indexes")]
    after = [("inbox", "0005_conversation_tags")]
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps.get_model("inbox", "Conversation")
        old.objects.filter(pk=first.pk).update(tags=["fibre", "urgent"])
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        assert tag_rows(first) == ["fibre", "urgent"]
        assert tag_rows(second) == []
        assert tagged(workspace, "urgent") == [first]
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        assert "inbox_conversationtag" not in connection.introspection.table_names()
        assert old.objects.get(pk=first.pk).tags == ["fibre", "urgent"]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_opening_the_inbox_counts_the_agent_present(client, agent, workspace):
    client.force_login(agent)
    client.get(reverse("inbox", args=[workspace.slug]))
    state = AgentState.objects.in_workspace(workspace.pk).get(user=agent)
    assert state.last_seen_at is not None
    assert state.last_seen_at <= clock.now()
    AgentState.objects.filter(pk=state.pk).update(last_seen_at=None)
    client.get(reverse("inbox", args=[workspace.slug]))  # within SEEN_EVERY: no new heartbeat
    assert AgentState.objects.get(pk=state.pk).last_seen_at is None
