from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import URLPattern, reverse

from relais.accounts.actions import do_create_api_token
from relais.connectors.models import ConnectedAccount
from relais.core import clock
from relais.publishing import actions
from relais.publishing.models import Draft, Offer, TargetStatus

pytestmark = pytest.mark.django_db


def url(name, workspace, query=""):
    return reverse(name, args=[workspace.slug]) + query


def test_compose_submit_approve_and_schedule_through_the_pages(
    client, owner, workspace, brand_account
):
    client.force_login(owner)
    assert client.get(url("publishing", workspace)).status_code == 200
    counted = client.post(
        url("publishing_count", workspace), {"text": "a" * 281, "account": brand_account.pk}
    )
    assert b"281 / 280" in counted.content
    response = client.post(
        url("publishing_create_draft", workspace), {"text": "Hello", "account": brand_account.pk}
    )
    draft = Draft.objects.get()
    assert response["Location"].endswith(f"?id={draft.pk}")
    page = client.get(response["Location"])
    assert b"Submit for approval" in page.content
    step = url("publishing_draft_step", workspace)
    client.post(step, {"id": draft.pk, "step": "submit"})
    client.post(step, {"id": draft.pk, "step": "approve"})
    client.post(step, {"id": draft.pk, "step": "comment", "text": "Looks good"})
    past = client.post(step, {"id": draft.pk, "step": "schedule", "when": "2020-01-01T10:00"})
    assert b"in the past" in client.get(past["Location"]).content
    client.post(step, {"id": draft.pk, "step": "schedule", "when": "2100-01-01T10:00"})
    assert draft.targets.get().status == TargetStatus.SCHEDULED
    assert draft.comments.get().text == "Looks good"


def test_an_over_limit_autosave_is_refused_with_the_count(client, owner, workspace, brand_account):
    draft = actions.do_create_draft(owner, workspace.pk, "Hello", [brand_account.pk])
    client.force_login(owner)
    response = client.post(
        url("publishing_save_draft", workspace),
        {"id": draft.pk, "text": "b" * 300, "account": brand_account.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert b"300 of 280" in response.content
    draft.refresh_from_db()
    assert draft.text == "Hello"


def test_the_campaign_page_and_its_csv_export(client, owner, workspace, brand_account):
    offer = actions.do_create_offer(
        owner,
        workspace,
        product="Vostro 3520",
        price=Decimal("399"),
        stock=10,
        starts_at=clock.now() - timedelta(minutes=1),
        ends_at=clock.now() + timedelta(days=1),
        shared_code="V35",
    )
    client.force_login(owner)
    client.post(
        url("publishing_publish_offer", workspace), {"id": offer.pk, "account": brand_account.pk}
    )
    actions.do_claim(offer.pk, link=offer.links.get(), forwarder="=cmd")
    page = client.get(url("publishing_campaign", workspace, f"?id={offer.pk}"))
    assert page.status_code == 200
    assert b"Vostro 3520" in page.content
    csv_text = client.get(url("publishing_campaign_csv", workspace, f"?id={offer.pk}")).content
    lines = csv_text.decode().splitlines()
    assert lines[0].startswith("breakdown,key,clicks,claims")
    assert "total,,0,1,0,399.00" in lines[1]
    assert any(line.startswith("forwarder,'=cmd,") for line in lines)


def test_the_api_creates_and_lists_drafts(client, agent, workspace, brand_account):
    _token, secret = do_create_api_token(workspace, agent, "tests")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    created = client.post(
        "/api/v1/publishing/drafts",
        {"text": "From the API", "account_ids": [brand_account.pk]},
        content_type="application/json",
        **auth,
    )
    assert created.status_code == 201
    assert created.json()["targets"][0]["status"] == "draft"
    too_long = client.post(
        "/api/v1/publishing/drafts",
        {"text": "x" * 400, "account_ids": [brand_account.pk]},
        content_type="application/json",
        **auth,
    )
    assert too_long.status_code == 400
    assert "400 of 280" in too_long.json()["detail"]
    assert [d["text"] for d in client.get("/api/v1/publishing/drafts", **auth).json()] == [
        "From the API"
    ]


def test_every_publishing_page_of_another_workspace_is_404(
    client, agent, make_workspace, make_user, workspace
):
    from relais.publishing.urls import urlpatterns

    other = make_workspace("Other brand", make_user("bob"))
    client.force_login(agent)
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        page = reverse(pattern.name, args=[other.slug]) + "?id=1"
        assert client.get(page).status_code == 404, page
        assert client.post(page, {"id": 1, "text": "x", "step": "comment"}).status_code == 404


def test_the_calendar_shows_scheduled_posts_and_moves_one_to_another_day(
    client, owner, workspace, brand_account
):
    draft = actions.do_create_draft(owner, workspace.pk, "Calendar post", [brand_account.pk])
    actions.do_submit_for_approval(owner, draft)
    actions.do_approve(owner, draft)
    actions.do_schedule(owner, draft, datetime(2100, 3, 10, 9, 30))
    client.force_login(owner)
    page = client.get(url("publishing_calendar", workspace, "?month=2100-03"))
    assert b"09:30 @Freebox" in page.content
    target = draft.targets.get()
    client.post(
        url("publishing_move_target", workspace), {"target": target.pk, "day": "2100-03-12"}
    )
    target.refresh_from_db()
    assert target.scheduled_at == datetime(2100, 3, 12, 9, 30, tzinfo=UTC)
    refused = client.post(
        url("publishing_move_target", workspace), {"target": target.pk, "day": "2000-01-01"}
    )
    assert b"in the past" in client.get(refused["Location"]).content


def test_an_offer_created_with_claim_keywords_keeps_them_cleaned(client, owner, workspace):
    client.force_login(owner)
    form = {
        "product": "Latitude 5440",
        "price": "480",
        "stock": "4",
        "starts_at": "2099-01-01T10:00",
        "ends_at": "2099-01-02T10:00",
        "shared_code": "LAT",
        "code_mode": "shared",
    }
    client.post(
        url("publishing_create_offer", workspace),
        form | {"reply_keywords": " CLAIM ,, je  prends "},
    )
    assert Offer.objects.get().reply_keywords == "CLAIM, je prends"
    refused = client.post(url("publishing_create_offer", workspace), form | {"reply_keywords": "x"})
    assert b"Claim keywords" in client.get(refused["Location"]).content
    assert Offer.objects.count() == 1


def test_the_week_view_shows_repeats_and_moves_a_post_to_a_day_and_hour(
    client, owner, workspace, brand_account
):
    draft = actions.do_create_draft(owner, workspace.pk, "Daily tip", [brand_account.pk])
    actions.do_submit_for_approval(owner, draft)
    actions.do_approve(owner, draft)
    actions.do_schedule(owner, draft, datetime(2100, 3, 10, 9, 30), recurrence="daily")
    client.force_login(owner)
    page = client.get(url("publishing_calendar", workspace, "?week=2100-03-11")).content.decode()
    assert "Week of" in page
    # Wednesday the post itself (draggable), Thursday to Sunday its coming repeats (not).
    assert page.count("09:30 @Freebox") == 5
    assert page.count('draggable="true"') == 1
    assert page.count("pub-repeat-mark") == 4
    assert 'value="2100-03-10T09:30"' in page  # the keyboard's move form
    target = draft.targets.get()
    back = url("publishing_calendar", workspace, "?week=2100-03-11")
    moved = client.post(
        url("publishing_move_target", workspace),
        {"target": target.pk, "day": "2100-03-12", "hour": "14", "back": back},
    )
    assert moved["Location"] == back
    target.refresh_from_db()
    assert target.scheduled_at == datetime(2100, 3, 12, 14, 30, tzinfo=UTC)
    client.post(
        url("publishing_move_target", workspace), {"target": target.pk, "when": "2100-03-13T08:05"}
    )
    target.refresh_from_db()
    assert target.scheduled_at == datetime(2100, 3, 13, 8, 5, tzinfo=UTC)
    month = client.get(url("publishing_calendar", workspace, "?month=2100-03")).content.decode()
    # The 13th, then a repeat each day to the grid's last day (Sunday, April 4th).
    assert month.count("08:05 @Freebox") == 23


def test_the_composer_warns_that_an_x_post_with_a_link_costs_more(client, owner, workspace):
    # No connection action without X's OAuth approval: stored as that flow would store it.
    x_account = ConnectedAccount.objects.create(workspace=workspace, network="x", handle="acme")
    client.force_login(owner)
    count = url("publishing_count", workspace)

    plain = client.post(count, {"text": "Our autumn sale", "account": x_account.pk})
    linked = client.post(
        count, {"text": "Our autumn sale https://shop.example/sale", "account": x_account.pk}
    )

    assert b"pub-warning" not in plain.content
    assert b"A post with a link costs" in linked.content
