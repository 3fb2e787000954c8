import pytest
from django.urls import reverse

from relais.accounts.models import AuditEntry
from relais.conftest import make_item
from relais.connectors.base import CredentialsExpiredError, RateLimitedError
from relais.connectors.models import AccountStatus
from relais.connectors.networks.sandbox import SandboxConnector
from relais.core.errors import RelaisError
from relais.inbox import actions, queries
from relais.inbox.models import Conversation, Draft, OutgoingReply, ReplyState
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import Post

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(workspace, brand_account):
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free plus de réseau")])
    return Conversation.objects.in_workspace(workspace.pk).get()


@pytest.fixture
def network_down(monkeypatch):
    def refuse(self, post, *, idempotency_key):
        raise RateLimitedError("rate limited, try again in 60 s", retry_after=60)

    monkeypatch.setattr(SandboxConnector, "reply", refuse)
    return monkeypatch


def test_a_refused_reply_stays_failed_with_the_reason_and_a_retry_sends_it(
    client, agent, workspace, conversation, network_down
):
    client.force_login(agent)
    url = reverse("reply", args=[workspace.slug, conversation.pk])
    page = client.post(url, {"text": "Nous regardons.", "reply_key": "k1"}, follow=True)
    html = page.content.decode()
    assert "rate limited, try again in 60 s" in html
    assert "Nous regardons." in html  # nothing typed is lost
    reply = OutgoingReply.objects.get()
    assert (reply.state, reply.attempts) == (ReplyState.FAILED, 1)
    network_down.undo()
    retry = reverse("retry_reply", args=[workspace.slug, conversation.pk])
    client.post(retry, {"reply": reply.pk})
    reply.refresh_from_db()
    assert reply.state == ReplyState.SENT
    assert Post.objects.get(direction="outbound").text == "Nous regardons."
    actions_done = list(AuditEntry.objects.values_list("action", flat=True).order_by("pk"))
    assert "conversation.reply_failed" in actions_done
    assert actions_done[-1] == "conversation.replied"


def test_do_send_reply_raises_but_keeps_the_reply(agent, conversation, network_down):
    with pytest.raises(RelaisError, match="rate limited"):
        actions.do_send_reply(agent, conversation, "Bonjour", idempotency_key="k")
    assert [r.text for r in queries.unsent_replies(conversation)] == ["Bonjour"]


def test_a_failed_reply_goes_back_to_the_draft(agent, conversation, network_down):
    reply = actions.do_submit_reply(agent, conversation, "Bonjour", idempotency_key="k")
    actions.do_withdraw_reply(agent, reply)
    assert queries.draft(conversation, agent) == "Bonjour"
    assert not OutgoingReply.objects.exists()


def test_with_approval_on_an_agents_reply_waits_for_a_manager(
    agent, owner, workspace, conversation
):
    actions.do_set_approval_required(owner, workspace, True)
    reply = actions.do_submit_reply(agent, conversation, "Bonjour", idempotency_key="k")
    assert reply.state == ReplyState.AWAITING_APPROVAL
    assert not Post.objects.filter(direction="outbound").exists()
    actions.do_approve_reply(owner, reply)
    reply.refresh_from_db()
    assert (reply.state, reply.approved_by) == (ReplyState.SENT, owner)
    assert Post.objects.get(direction="outbound").sent_by == agent
    owners_own = actions.do_submit_reply(owner, conversation, "Merci", idempotency_key="k2")
    assert owners_own.state == ReplyState.SENT  # managers are not held


def test_the_draft_is_kept_server_side_until_the_reply_is_sent(
    client, agent, workspace, conversation
):
    client.force_login(agent)
    draft_url = reverse("save_draft", args=[workspace.slug, conversation.pk])
    assert client.post(draft_url, {"text": "Bonjour, nous"}).status_code == 204
    page = client.get(reverse("conversation", args=[workspace.slug, conversation.pk]))
    assert "Bonjour, nous</textarea>" in page.content.decode()
    client.post(
        reverse("reply", args=[workspace.slug, conversation.pk]),
        {"text": "Bonjour, nous regardons", "reply_key": "k"},
    )
    assert not Draft.objects.exists()
    client.post(draft_url, {"text": "Bonjour, nous regardons"})  # a save racing the submit
    assert not Draft.objects.exists()


def test_a_colleague_viewing_then_typing_is_shown(client, agent, owner, workspace, conversation):
    actions.do_mark_viewing(owner, conversation)
    client.force_login(agent)
    url = reverse("presence", args=[workspace.slug, conversation.pk])
    assert "is viewing this conversation" in client.post(url).content.decode()
    actions.do_save_draft(owner, conversation, "Je m'en")
    assert "is typing a reply" in client.post(url).content.decode()
    actions.do_leave_conversation(owner, conversation)
    assert "this conversation" not in client.post(url).content.decode()


def test_canned_replies_are_filled_with_the_conversations_variables(
    client, agent, owner, workspace, conversation
):
    actions.do_create_canned_reply(
        owner, workspace, "Hello", "Bonjour {customer_name}, ici {agent_name} ({ticket})."
    )
    client.force_login(agent)
    page = client.get(reverse("conversation", args=[workspace.slug, conversation.pk]))
    assert f"Bonjour Camille, ici Alex (#{conversation.pk})." in page.content.decode()


def test_a_revoked_credential_fails_the_reply_and_flags_the_account_at_once(
    agent, conversation, monkeypatch
):
    def revoked(self, post, *, idempotency_key):
        raise CredentialsExpiredError("token revoked")

    monkeypatch.setattr(SandboxConnector, "reply", revoked)

    with pytest.raises(RelaisError, match="must reconnect"):
        actions.do_send_reply(agent, conversation, "Bonjour", idempotency_key="k")

    conversation.account.refresh_from_db()
    assert conversation.account.status == AccountStatus.RECONNECT_NEEDED
    assert OutgoingReply.objects.get().state == ReplyState.FAILED
