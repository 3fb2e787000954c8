from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from relais.core import clock
from relais.publishing import actions, audience
from relais.publishing.models import Claim, Forward, LinkClick, Offer, Target


def test_a_simulated_cascade_follows_real_follow_edges_and_calibrated_depths():
    graph, calib = audience.audience_graph(), audience.calibration()
    cascade = audience.simulate_cascade(graph, calib, 400, np.random.default_rng(7))
    by_node = {step.node: step for step in cascade}
    assert len(by_node) == len(cascade) > 300
    for step in cascade:
        if step.parent is not None:
            assert step.node in graph.followers_of(step.parent)
            assert by_node[step.parent].after <= step.after
            assert by_node[step.parent].depth == step.depth - 1
    first_level = sum(step.depth == 1 for step in cascade) / len(cascade)
    assert abs(first_level - calib.depth_share[1]) < 0.1
    assert max(step.after for step in cascade) <= timedelta(days=7, minutes=1)


@pytest.mark.django_db
def test_a_published_sandbox_offer_is_forwarded_clicked_and_claimed_by_simulated_followers(
    owner, workspace, brand_account, django_capture_on_commit_callbacks
):
    offer = actions.do_create_offer(
        owner,
        workspace,
        product="OptiPlex 7010",
        price=Decimal("300"),
        stock=5,
        starts_at=clock.now() - timedelta(minutes=1),
        ends_at=clock.now() + timedelta(days=30),
        shared_code="OPTI",
    )
    actions.do_set_simulation(owner, workspace, click_rate=0.5, claim_rate=0.5, speed=1)
    draft = actions.do_create_offer_draft(owner, offer, [brand_account.pk], "http://localhost")
    actions.do_submit_for_approval(owner, draft)
    actions.do_approve(owner, draft)
    actions.do_schedule(owner, draft, clock.now() + timedelta(minutes=1))
    Target.objects.update(scheduled_at=clock.now())
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_publish_target(draft.targets.get().pk)
    forwards = Forward.objects.in_workspace(workspace.pk).filter(target__draft=draft)
    assert forwards.count() > 20
    assert not forwards.filter(settled=True).exists()
    assert set(forwards.values_list("simulated", flat=True)) == {True}
    with django_capture_on_commit_callbacks(execute=True):
        while actions.do_settle_forwards(clock.now() + timedelta(days=8), limit=100):
            pass
    assert not forwards.filter(settled=False).exists()
    assert LinkClick.objects.filter(simulated=True).count() > 0
    claims = Claim.objects.filter(offer=offer)
    assert claims.count() == 5
    assert set(claims.values_list("simulated", flat=True)) == {True}
    assert Offer.objects.get(pk=offer.pk).sold_out_at is not None
