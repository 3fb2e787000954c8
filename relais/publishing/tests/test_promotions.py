from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from relais.core import clock
from relais.core.errors import ValidationFailedError
from relais.publishing import actions
from relais.publishing.models import Claim, Draft, Offer, OfferCode, TargetStatus
from relais.publishing.tasks import publish_due
from relais.sandbox.models import SandboxOutbound


def make_offer(owner, workspace, stock=3, **changes):
    fields = {
        "product": "Latitude 7440",
        "price": Decimal("650.00"),
        "stock": stock,
        "starts_at": clock.now() - timedelta(minutes=5),
        "ends_at": clock.now() + timedelta(days=2),
        "shared_code": "LAT-40",
    }
    return actions.do_create_offer(owner, workspace, **(fields | changes))


@pytest.mark.django_db
def test_unique_codes_are_each_given_once(owner, workspace):
    offer = make_offer(owner, workspace, stock=3, code_mode="unique", shared_code="")
    codes = {actions.do_claim(offer.pk).code for _unit in range(3)}
    assert codes == set(OfferCode.objects.filter(offer=offer).values_list("code", flat=True))
    with pytest.raises(ValidationFailedError, match="Sold out"):
        actions.do_claim(offer.pk)


@pytest.mark.django_db
def test_an_offer_outside_its_dates_is_refused(owner, workspace):
    offer = make_offer(owner, workspace, starts_at=clock.now() + timedelta(hours=1))
    with pytest.raises(ValidationFailedError, match="not started"):
        actions.do_claim(offer.pk)
    with pytest.raises(ValidationFailedError, match="past"):
        make_offer(
            owner,
            workspace,
            starts_at=clock.now() - timedelta(hours=2),
            ends_at=clock.now() - timedelta(hours=1),
        )


@pytest.mark.django_db
def test_selling_out_posts_sold_out_on_the_accounts_that_announced_it(
    owner, workspace, brand_account, django_capture_on_commit_callbacks
):
    offer = make_offer(owner, workspace, stock=1)
    draft = actions.do_create_offer_draft(owner, offer, [brand_account.pk], "https://relais.test")
    actions.do_submit_for_approval(owner, draft)
    actions.do_approve(owner, draft)
    actions.do_schedule(owner, draft, clock.now() + timedelta(minutes=1))
    draft.targets.update(scheduled_at=clock.now())
    actions.do_publish_target(draft.targets.get().pk)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_claim(offer.pk, forwarder="camille")
    assert publish_due() == 1
    notice = Draft.objects.exclude(pk=draft.pk).get(offer=offer)
    assert notice.targets.get().status == TargetStatus.PUBLISHED
    assert SandboxOutbound.objects.filter(text__startswith="Sold out").count() == 1
    assert Offer.objects.get(pk=offer.pk).sold_out_at is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_oversell(owner, workspace):
    if connection.vendor != "postgresql":
        pytest.skip("row locking under real concurrency is tested on PostgreSQL")
    offer = make_offer(owner, workspace, stock=25, code_mode="unique", shared_code="")

    def claim(_attempt: int) -> str:
        try:
            return actions.do_claim(offer.pk).code
        except ValidationFailedError:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(claim, range(80)))
    codes = [o for o in outcomes if o != "refused"]
    assert len(codes) == len(set(codes)) == 25
    assert outcomes.count("refused") == 55
    assert Offer.objects.get(pk=offer.pk).stock_left == 0
    assert Claim.objects.filter(offer=offer).count() == 25


@pytest.mark.django_db(transaction=True)
def test_one_persons_concurrent_submits_take_one_unit(owner, workspace):
    if connection.vendor != "postgresql":
        pytest.skip("row locking under real concurrency is tested on PostgreSQL")
    offer = make_offer(owner, workspace, stock=10)

    def claim(_attempt: int) -> int:
        try:
            return actions.do_claim(offer.pk, claimant="same-person").pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        claim_ids = set(pool.map(claim, range(16)))
    assert len(claim_ids) == 1
    assert Offer.objects.get(pk=offer.pk).stock_left == 9
