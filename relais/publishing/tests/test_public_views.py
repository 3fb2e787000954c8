import time
from datetime import timedelta
from decimal import Decimal

import pytest

from relais.core import clock
from relais.publishing import actions, links
from relais.publishing.models import Claim, LinkClick

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


@pytest.fixture
def synchronous_clicks(monkeypatch):
    monkeypatch.setattr(links.recorder, "synchronous", True)


@pytest.fixture
def link(agent, workspace):
    return actions.do_create_link(
        agent,
        workspace.pk,
        "https://shop.example/pc?ref=1",
        utm_source="sandbox",
        utm_campaign="spring",
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("synchronous_clicks")
def test_the_short_link_redirects_with_utm_parameters(client, link):
    response = client.get(f"/l/{link.code}", HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    assert response["Location"] == (
        "https://shop.example/pc?ref=1&utm_source=sandbox&utm_medium=social&utm_campaign=spring"
    )
    assert client.get("/l/nope", HTTP_USER_AGENT=BROWSER).status_code == 404


@pytest.mark.django_db
@pytest.mark.usefixtures("synchronous_clicks")
def test_a_visitor_counts_once_a_day_and_bots_not_at_all(client, link):
    for _repeat in range(3):
        client.get(f"/l/{link.code}", HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.5")
    client.get(f"/l/{link.code}", HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.6")
    client.get(f"/l/{link.code}", HTTP_USER_AGENT="Twitterbot/1.0", REMOTE_ADDR="203.0.113.7")
    client.get(f"/l/{link.code}", HTTP_USER_AGENT="", REMOTE_ADDR="203.0.113.8")
    clicks = LinkClick.objects.filter(link=link)
    assert clicks.count() == 2
    assert not any("203.0.113" in click.visitor for click in clicks)


def test_the_visitor_hash_changes_every_day():
    today = clock.now().date()
    same_person = (today, "203.0.113.5", BROWSER)
    assert links.visitor_hash(*same_person) == links.visitor_hash(*same_person)
    assert links.visitor_hash(today + timedelta(days=1), *same_person[1:]) != links.visitor_hash(
        *same_person
    )


@pytest.mark.django_db(transaction=True)
def test_clicks_are_written_in_the_background(client, link):
    client.get(f"/l/{link.code}", HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.9")
    deadline = time.monotonic() + 10
    while not LinkClick.objects.filter(link=link).exists():
        assert time.monotonic() < deadline, "the click was never written"
        time.sleep(0.05)


@pytest.mark.django_db
@pytest.mark.usefixtures("synchronous_clicks")
def test_an_offer_is_claimed_on_its_landing_page(client, owner, workspace, brand_account):
    offer = actions.do_create_offer(
        owner,
        workspace,
        product="ThinkPad T14",
        price=Decimal("499.00"),
        stock=1,
        starts_at=clock.now() - timedelta(hours=1),
        ends_at=clock.now() + timedelta(days=1),
        shared_code="SPRING",
    )
    draft = actions.do_create_offer_draft(owner, offer, [brand_account.pk], "http://testserver")
    link = offer.links.get()
    assert f"http://testserver/l/{link.code}" in draft.targets.get().text
    landing = client.get(f"/l/{link.code}", HTTP_USER_AGENT=BROWSER)["Location"]
    assert landing.startswith(f"http://testserver/l/{link.code}/offer/?utm_source=sandbox")
    page = client.post(f"/l/{link.code}/offer/", {"via": "camille"}, REMOTE_ADDR="203.0.113.5")
    assert page.status_code == 200
    assert b"SPRING" in page.content
    again = client.post(f"/l/{link.code}/offer/", REMOTE_ADDR="203.0.113.5")
    assert again.status_code == 200  # the same person gets their claim back, not a second unit
    assert Claim.objects.get().forwarder == "camille"
    refused = client.post(f"/l/{link.code}/offer/", REMOTE_ADDR="203.0.113.6")
    assert refused.status_code == 409
    assert b"Sold out" in refused.content
