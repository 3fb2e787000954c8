import uuid

import pytest
from django.urls import reverse

from relais.conftest import make_item
from relais.inbox.models import Conversation
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import Post

pytestmark = pytest.mark.django_db

HOSTILE = (
    '@free <script>alert("x")</script> <img src=x onerror=alert(1)> '
    '<a href="javascript:alert(2)">clic</a> javascript:alert(3) \u202egnp.exe ' + "🔥" * 2000
)


@pytest.fixture
def conversation(workspace, brand_account):
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free plus de réseau à Lyon")])
    return Conversation.objects.in_workspace(workspace.pk).get()


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def test_login_page_and_login_redirects_to_the_workspace(client, agent, workspace):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "alex", "password": "pw-for-tests-123"})
    assert response.status_code == 302
    assert client.get("/", follow=True).redirect_chain[-1][0] == f"/w/{workspace.slug}/"


def test_pages_render_for_a_member(agent_client, workspace, conversation):
    for name in ("home", "counters", "stream", "stream_rows", "inbox", "inbox_rows"):
        response = agent_client.get(reverse(name, args=[workspace.slug]))
        assert response.status_code == 200, name
    response = agent_client.get(reverse("conversation", args=[workspace.slug, conversation.pk]))
    assert "plus de réseau à Lyon" in response.content.decode()


def test_an_agent_replies_from_the_conversation_page(agent_client, workspace, conversation):
    url = reverse("reply", args=[workspace.slug, conversation.pk])
    key = uuid.uuid4().hex
    for _ in range(2):  # a double submit sends once
        response = agent_client.post(url, {"text": "@camille Nous regardons.", "reply_key": key})
        assert response.status_code == 302
    page = agent_client.get(response.url).content.decode()
    assert "Nous regardons." in page
    assert Post.objects.in_workspace(workspace.pk).filter(direction="outbound").count() == 1


def test_a_reply_over_the_networks_limit_is_refused_with_the_count(
    agent_client, workspace, conversation
):
    url = reverse("reply", args=[workspace.slug, conversation.pk])
    response = agent_client.post(url, {"text": "x" * 300, "reply_key": "k"})
    assert response.status_code == 400
    assert "300 characters long" in response.content.decode()
    assert "x" * 300 in response.content.decode()  # the draft is kept


def test_status_assignment_and_notes_are_recorded(agent_client, workspace, conversation, agent):
    from relais.accounts.models import AuditEntry

    agent_client.post(
        reverse("change_status", args=[workspace.slug, conversation.pk]), {"status": "pending"}
    )
    agent_client.post(
        reverse("assign", args=[workspace.slug, conversation.pk]), {"assignee": agent.pk}
    )
    agent_client.post(
        reverse("add_note", args=[workspace.slug, conversation.pk]), {"text": "client VIP"}
    )
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee) == ("pending", agent)
    actions = set(AuditEntry.objects.in_workspace(workspace.pk).values_list("action", flat=True))
    assert {"conversation.status_changed", "conversation.assigned", "conversation.noted"} <= actions


def test_hostile_post_text_is_shown_as_text(agent_client, workspace, brand_account):
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:66", HOSTILE)])
    conversation = Conversation.objects.in_workspace(workspace.pk).get()
    for url in (
        reverse("stream", args=[workspace.slug]),
        reverse("inbox", args=[workspace.slug]),
        reverse("conversation", args=[workspace.slug, conversation.pk]),
    ):
        page = agent_client.get(url).content.decode()
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert 'href="javascript:' not in page
        assert "&lt;script&gt;" in page


def test_links_in_posts_carry_no_trust(agent_client, workspace, brand_account):
    do_ingest_items(
        workspace.pk, "sandbox", [make_item("free:7", "@free voir https://example.org/a?b=1&c=2")]
    )
    page = agent_client.get(reverse("stream", args=[workspace.slug])).content.decode()
    assert 'href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener noreferrer ugc"' in page


def test_the_interface_switches_to_french(agent_client, workspace):
    response = agent_client.post(
        reverse("set_language"), {"language": "fr", "next": f"/w/{workspace.slug}/inbox/"}
    )
    page = agent_client.get(response.url).content.decode()
    assert "Boîte de réception" in page
    assert "Non résolues" in page
