from datetime import timedelta

import pytest
from django.urls import reverse

from relais.conftest import make_item
from relais.core import clock
from relais.inbox import actions
from relais.inbox.kpis import care_report
from relais.inbox.models import Conversation
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


def brand_answers(workspace, number, after_minutes, handle):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            make_item(f"free:{number}", "@free panne", handle=handle),
            make_item(
                f"free:{number}r",
                f"@{handle} on regarde",
                handle="free",
                minutes=after_minutes,
                in_reply_to=f"free:{number}",
            ),
        ],
    )


def test_response_times_percentiles_and_sla_per_agent_and_account(
    workspace, brand_account, owner, agent
):
    actions.do_set_sla_policy(owner, workspace, first_response_minutes=15, resolution_minutes=600)
    for number, minutes in enumerate([5, 10, 20, 40]):
        brand_answers(workspace, number, minutes, f"c{number}")
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:9", "@free allo", handle="z")])
    waiting = Conversation.objects.get(thread_key="free:9")
    actions.do_send_reply(agent, waiting, "Bonjour", idempotency_key="k")
    now = clock.now()
    report = care_report(workspace.pk, now - timedelta(days=1), now + timedelta(seconds=1), now)
    assert report.overall.volume == 5
    history = next(r for r in report.per_agent if r.label.startswith("Brand"))
    assert history.first_median == 15 * 60  # 5, 10, 20, 40 minutes
    assert history.sla_compliance == 50.0  # 5 and 10 within 15 minutes
    assert [r.label for r in report.per_account] == ["@Freebox"]
    alex = next(r for r in report.per_agent if r.label == "Alex")
    assert alex.volume == 1


def test_the_kpi_page_is_for_managers(client, owner, agent, workspace, brand_account):
    brand_answers(workspace, 1, 22, "c1")
    url = reverse("care_kpis", args=[workspace.slug])
    client.force_login(agent)
    assert client.get(url).status_code == 404
    client.force_login(owner)
    page = client.get(url + "?days=30").content.decode()
    assert 'data-kpi="first-median">22 min<' in page
