from datetime import timedelta

import pytest
from django.urls import reverse

from relais.conftest import T0, make_item
from relais.core import clock
from relais.listening.actions import do_create_query
from relais.listening.models import ListeningQuery
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def listening(workspace, owner):
    do_create_query(owner, workspace, name="Free", text="free OR freebox", tag="brand")
    do_create_query(owner, workspace, name="Orange", text="orange", tag="competitor")
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            make_item("1", "Les retards de la freebox, encore", handle="camille", followers=900),
            make_item("2", "orange marche bien", handle="dominique", followers=20, minutes=1),
            make_item("3", "free a des pannes", handle="eve", minutes=2),
        ],
    )
    return workspace


def test_the_mention_stream_filters_and_searches(client, owner, listening):
    client.force_login(owner)
    url = reverse("listening", args=[listening.slug])
    page = client.get(url).content.decode()
    assert "Les retards de la freebox" in page
    assert "orange marche bien" in page
    page = client.get(url, {"author": "@dominique"}).content.decode()
    assert "orange marche bien" in page
    assert "freebox" not in page
    # Stemmed: "retard" finds "retards".
    page = client.get(url, {"q": "retard"}).content.decode()
    assert "Les retards de la freebox" in page
    assert "pannes" not in page
    query = ListeningQuery.objects.get(name="Orange")
    page = client.get(reverse("listening_rows", args=[listening.slug]), {"query": query.pk})
    assert "orange marche bien" in page.content.decode()
    assert "freebox" not in page.content.decode()


def test_a_query_with_a_mistake_is_shown_back_with_its_position(client, owner, workspace):
    client.force_login(owner)
    response = client.post(
        reverse("listening_queries", args=[workspace.slug]),
        {"name": "Broken", "text": "free AND (panne", "tag": "brand"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "<mark>(</mark>panne" in page
    assert "character 10" in page
    assert not ListeningQuery.objects.exists()


def test_queries_are_created_edited_and_archived_from_the_page(client, owner, workspace):
    client.force_login(owner)
    url = reverse("listening_queries", args=[workspace.slug])
    response = client.post(url, {"name": "Brand", "text": "acme", "tag": "brand"})
    assert response.status_code == 302
    query = ListeningQuery.objects.get()
    edit = reverse("listening_query_edit", args=[workspace.slug])
    assert "acme" in client.get(edit, {"query": query.pk}).content.decode()
    client.post(
        edit,
        {
            "query": query.pk,
            "name": "Brand",
            "text": "acme OR #acme",
            "tag": "brand",
            "active": "on",
        },
    )
    query.refresh_from_db()
    assert query.text == "acme OR #acme"
    client.post(reverse("listening_query_archive", args=[workspace.slug]), {"query": query.pk})
    query.refresh_from_db()
    assert query.active is False


def test_an_agent_sees_queries_but_cannot_create_one(client, agent, workspace):
    client.force_login(agent)
    url = reverse("listening_queries", args=[workspace.slug])
    assert "New query" not in client.get(url).content.decode()
    response = client.post(url, {"name": "Brand", "text": "acme", "tag": "brand"})
    assert response.status_code == 400
    assert not ListeningQuery.objects.exists()


def test_the_dashboard_is_drawn_from_rollups(client, owner, listening, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: T0 + timedelta(hours=3))
    client.force_login(owner)
    page = client.get(reverse("listening_dashboard", args=[listening.slug]), {"days": 30})
    html = page.content.decode()
    assert "<svg" in html
    assert "@camille" in html  # most followers first
    assert html.index("@camille") < html.index("@dominique")
    assert "66.7%" in html
    assert "33.3%" in html


def test_the_alerts_page_lists_and_shows_channels(client, owner, workspace, settings):
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    client.force_login(owner)
    response = client.post(
        reverse("listening_channel_create", args=[workspace.slug]),
        {"name": "Ops", "kind": "webhook", "target": "http://127.0.0.1:9/hook/t0ken"},
    )
    assert response.status_code == 302
    page = client.get(reverse("listening_alerts", args=[workspace.slug])).content.decode()
    assert "Ops" in page
    assert "http://127.0.0.1/…" in page
    assert "t0ken" not in page
    assert "No alert so far." in page


def test_a_private_channel_address_is_refused_with_the_reason(client, owner, workspace):
    client.force_login(owner)
    response = client.post(
        reverse("listening_channel_create", args=[workspace.slug]),
        {"name": "Ops", "kind": "webhook", "target": "http://127.0.0.1:5432/"},
        follow=True,
    )
    assert "private address" in response.content.decode()
