"""Two agents acting on one conversation at the same moment end in one consistent state.

Run on PostgreSQL (DATABASE_URL=postgres://...), where the row lock is real; SQLite serializes
writers anyway, and the test then checks the same outcome.
"""

import threading

import pytest
from django.db import connection, connections

from relais.accounts.actions import do_add_member
from relais.accounts.models import AuditEntry
from relais.conftest import make_item
from relais.core.errors import RelaisError
from relais.inbox import actions
from relais.inbox.models import Conversation
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db(transaction=True)


def race(*calls):
    """Run the calls in threads released together; return what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            outcomes[index] = call()
        except RelaisError as error:
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


@pytest.fixture
def conversation(workspace, brand_account):
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free panne")])
    return Conversation.objects.in_workspace(workspace.pk).get()


@pytest.mark.skipif(connection.vendor == "sqlite", reason="threads share SQLite's test file")
def test_two_agents_taking_one_conversation_at_once_one_wins(
    conversation, workspace, owner, agent, make_user
):
    other = make_user("sam")
    do_add_member(workspace, other, "agent", actor=owner)
    outcomes = race(
        *[
            lambda user=user: actions.do_assign(
                user, Conversation.objects.get(pk=conversation.pk), user, expected_assignee_id=None
            )
            for user in (agent, other)
        ]
    )
    winners = [o for o in outcomes if o is True]
    losers = [o for o in outcomes if isinstance(o, RelaisError)]
    assert (len(winners), len(losers)) == (1, 1), outcomes
    conversation.refresh_from_db()
    assert conversation.assignee in {agent, other}
    assert "took this conversation" in str(losers[0])
    assert AuditEntry.objects.filter(action="conversation.assigned").count() == 1


@pytest.mark.skipif(connection.vendor == "sqlite", reason="threads share SQLite's test file")
def test_two_agents_resolving_at_once_leave_one_resolution(conversation, owner, agent):
    outcomes = race(
        *[
            lambda user=user: actions.do_change_status(
                user, Conversation.objects.get(pk=conversation.pk), "resolved", expected="new"
            )
            for user in (agent, owner)
        ]
    )
    assert sorted(o is True for o in outcomes) == [False, True], outcomes
    assert AuditEntry.objects.filter(action="conversation.status_changed").count() == 1
    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    assert conversation.resolved_by in {agent, owner}
