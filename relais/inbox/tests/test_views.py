import pytest
from django.urls import reverse

from relais.accounts.actions import do_add_member
from relais.accounts.models import AuditEntry
from relais.conftest import make_item
from relais.core import clock
from relais.inbox import actions, webhooks
from relais.inbox.models import (
    AssignmentRule,
    Contact,
    Conversation,
    SlaPolicy,
    Team,
    WebhookEndpoint,
)
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversations(workspace, brand_account):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            make_item("free:1", "@free panne fibre", followers=10),
            make_item("free:2", "@free panne facture", handle="lea", followers=50_000),
        ],
    )
    return list(Conversation.objects.in_workspace(workspace.pk).order_by("thread_key"))


def test_the_inbox_ranks_by_priority_and_walks_next_and_previous(
    client, agent, workspace, conversations
):
    client.force_login(agent)
    page = client.get(reverse("inbox", args=[workspace.slug])).content.decode()
    lea, camille = page.index("Lea"), page.index("Camille")
    assert lea < camille  # the same complaint from 50,000 followers comes first
    first = client.get(reverse("conversation", args=[workspace.slug, conversations[1].pk]))
    expected = f'/conversations/{conversations[0].pk}/" id="next-conversation"'
    assert expected in first.content.decode()


def test_taking_a_conversation_already_taken_shows_who_was_faster(
    client, agent, owner, workspace, conversations
):
    actions.do_assign(owner, conversations[0], owner)
    client.force_login(agent)
    url = reverse("assign", args=[workspace.slug, conversations[0].pk])
    response = client.post(url, {"assignee": agent.pk, "expected": ""}, follow=True)
    assert "took this conversation meanwhile" in response.content.decode()
    conversations[0].refresh_from_db()
    assert conversations[0].assignee == owner


def test_contact_pages_show_history_and_merge(client, agent, workspace, conversations):
    client.force_login(agent)
    camille = Contact.objects.get(authors__handle="camille")
    lea = Contact.objects.get(authors__handle="lea")
    listing = client.get(reverse("contacts", args=[workspace.slug]) + "?q=cam").content.decode()
    via = conversations[0].pk  # Camille's conversation leads to her contact page
    assert reverse("contact", args=[workspace.slug, via]) in listing
    page = client.get(reverse("contact", args=[workspace.slug, via])).content.decode()
    assert "panne fibre" in page
    client.post(
        reverse("contact_update", args=[workspace.slug, via]),
        {
            "display_name": "Camille D.",
            "tags": "vip",
            "attribute_key": ["plan"],
            "attribute_value": ["Pop"],
        },
    )
    client.post(reverse("contact_merge", args=[workspace.slug, via]), {"other": lea.pk})
    camille.refresh_from_db()
    assert (camille.display_name, camille.tags, camille.attributes) == (
        "Camille D.",
        ["vip"],
        {"plan": "Pop"},
    )
    page = client.get(reverse("contact", args=[workspace.slug, via])).content.decode()
    assert "panne facture" in page  # Lea's conversation is now in the history


def test_managers_set_teams_rules_agents_and_service_levels(
    client, owner, agent, workspace, brand_account
):
    client.force_login(owner)
    slug = workspace.slug
    assert client.get(reverse("care_settings", args=[slug])).status_code == 200
    client.post(reverse("team_create", args=[slug]), {"name": "Fibre"})
    team = Team.objects.get(workspace=workspace)
    client.post(reverse("team_members", args=[slug]), {"team": team.pk, "members": [agent.pk]})
    client.post(
        reverse("rule_create", args=[slug]),
        {"name": "fibre", "keyword": "fibre", "team": team.pk, "auto_assign": "on"},
    )
    client.post(reverse("agent_update", args=[slug]), {"agent": agent.pk, "capacity": "3"})
    client.post(
        reverse("sla_set", args=[slug]),
        {
            "first_response_minutes": "30",
            "resolution_minutes": "480",
            "time_zone": "Europe/Paris",
            "business_start": "09:00",
            "business_end": "18:00",
            "business_days": ["0", "1", "2", "3", "4"],
        },
    )
    assert list(team.members.all()) == [agent]
    assert AssignmentRule.objects.get(workspace=workspace).team == team
    assert SlaPolicy.objects.get(workspace=workspace).time_zone == "Europe/Paris"
    page = client.get(reverse("care_settings", args=[slug])).content.decode()
    assert "Europe/Paris" in page
    assert AuditEntry.objects.filter(action="sla_policy.set").exists()


def test_agents_cannot_open_the_settings(client, agent, workspace):
    client.force_login(agent)
    assert client.get(reverse("care_settings", args=[workspace.slug])).status_code == 404
    response = client.post(reverse("team_create", args=[workspace.slug]), {"name": "x"})
    assert response.status_code == 404


def test_a_contact_of_another_workspace_cannot_be_merged_in(
    client, agent, workspace, make_workspace, conversations
):
    from relais.sandbox.actions import do_connect_sandbox_account

    other = make_workspace("Other")
    do_connect_sandbox_account(other, "free", "Freebox", [], actor=None)
    do_ingest_items(other.pk, "sandbox", [make_item("free:1", "@Freebox secret")])
    foreign = Contact.objects.get(workspace=other)
    client.force_login(agent)
    url = reverse("contact_merge", args=[workspace.slug, conversations[0].pk])
    assert client.post(url, {"other": foreign.pk}).status_code == 404
    assert Contact.objects.filter(pk=foreign.pk).exists()


def test_admins_register_a_webhook_see_its_secret_once_and_its_failures(
    client, owner, workspace, settings
):
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    client.force_login(owner)
    slug = workspace.slug
    created = client.post(
        reverse("webhook_create", args=[slug]),
        {"url": "http://127.0.0.1:9/crm", "events": ["contact.created", "conversation.assigned"]},
    )
    endpoint = WebhookEndpoint.objects.get(workspace=workspace)
    secret = webhooks.endpoint_secret(endpoint)
    assert created.status_code == 200
    assert secret in created.content.decode()
    assert endpoint.events == ["conversation.assigned", "contact.created"]
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=2, last_error="HTTP 500 from 127.0.0.1", next_attempt_at=clock.now()
    )
    page = client.get(reverse("care_settings", args=[slug])).content.decode()
    assert secret not in page
    assert "HTTP 500 from 127.0.0.1" in page
    assert "Failing" in page
    client.post(reverse("webhook_retry", args=[slug]), {"webhook": endpoint.pk})
    endpoint.refresh_from_db()
    assert endpoint.next_attempt_at is None
    client.post(reverse("webhook_update", args=[slug]), {"webhook": endpoint.pk, "events": []})
    assert "at least one" in client.get(reverse("care_settings", args=[slug])).content.decode()
    client.post(reverse("webhook_delete", args=[slug]), {"webhook": endpoint.pk})
    assert not WebhookEndpoint.objects.exists()


def test_a_private_webhook_address_is_refused_with_a_message(client, owner, workspace):
    client.force_login(owner)
    response = client.post(
        reverse("webhook_create", args=[workspace.slug]),
        {"url": "http://10.0.0.5/crm", "events": ["contact.created"]},
        follow=True,
    )
    assert "private address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_managers_see_the_settings_but_not_the_webhooks(client, owner, workspace, make_user):
    manager = make_user("morgan")
    do_add_member(workspace, manager, "manager", actor=owner)
    client.force_login(manager)
    page = client.get(reverse("care_settings", args=[workspace.slug])).content.decode()
    assert "CRM webhooks" not in page
    response = client.post(
        reverse("webhook_create", args=[workspace.slug]),
        {"url": "https://crm.example/hook", "events": ["contact.created"]},
    )
    assert response.status_code == 404


def test_the_list_pages_without_counting_and_caps_its_badges(
    client, agent, workspace, brand_account, monkeypatch
):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [make_item(f"free:{n}", f"@free panne {n}", handle=f"c{n}") for n in range(5)],
    )
    monkeypatch.setattr("relais.inbox.views.INBOX_PAGE_SIZE", 2)
    monkeypatch.setattr("relais.inbox.queries.COUNT_CAP", 3)
    client.force_login(agent)
    url = reverse("inbox", args=[workspace.slug])
    first = client.get(url).content.decode()
    assert '<span class="count">3+</span>' in first  # 5 new conversations, counted up to 3
    assert "Page 1" in first
    assert "page=2" in first
    last = client.get(url + "?page=3").content.decode()
    assert last.count("data-conversation=") == 1
    assert "page=2" in last  # back to the previous page
    assert "page=4" not in last


def test_a_paused_webhook_shows_what_waits_and_the_admin_may_discard_it(
    client, owner, workspace, brand_account, settings
):
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    endpoint, _secret = actions.do_create_webhook_endpoint(
        owner, workspace, "http://127.0.0.1:9/crm", ["conversation.created"]
    )
    actions.do_update_webhook_endpoint(owner, endpoint, active=False)
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free panne")])
    client.force_login(owner)
    settings_url = reverse("care_settings", args=[workspace.slug])
    page = client.get(settings_url).content.decode()
    assert "1 event waiting" in page
    assert "Discard the waiting events" in page
    client.post(reverse("webhook_discard", args=[workspace.slug]), {"webhook": endpoint.pk})
    page = client.get(settings_url).content.decode()
    assert "0 events waiting" in page
    assert "Discard the waiting events" not in page
