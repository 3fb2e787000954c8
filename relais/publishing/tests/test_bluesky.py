"""Publishing on the real reference PDS (``pytest -m bluesky``): an offer with an image goes out,
a customer's repost and quote join its cascade and a keyword reply gets its code back."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from relais.connectors.actions import bluesky_connector_for
from relais.connectors.streams import AccountStream
from relais.connectors.tests.conftest import pds  # noqa: F401
from relais.connectors.tests.test_bluesky_pds import Customer, brand, png, pump_until  # noqa: F401
from relais.core import clock
from relais.publishing import actions, media
from relais.publishing.models import Forward, OfferReply, ReplyState, TargetStatus
from relais.publishing.tests.test_promotions import make_offer

pytestmark = [
    pytest.mark.bluesky,
    pytest.mark.timeout(1200),
    pytest.mark.django_db(transaction=True),
]


def test_an_offer_with_an_image_is_forwarded_and_claimed_by_reply(
    pds,  # noqa: F811
    brand,  # noqa: F811
    owner,
    workspace,
) -> None:
    offer = make_offer(owner, workspace, stock=3, reply_keywords="claim")
    draft = actions.do_create_offer_draft(owner, offer, [brand.pk], "https://relais.test")
    media.do_attach_media(owner, draft, "lid.png", png(16, 16, (90, 90, 90)), "A grey laptop lid")
    actions.do_submit_for_approval(owner, draft)
    actions.do_approve(owner, draft)
    actions.do_schedule(owner, draft, clock.now() + timedelta(minutes=1))
    draft.targets.update(scheduled_at=clock.now())
    target = actions.do_publish_target(draft.targets.get().pk)
    assert target is not None
    assert target.status == TargetStatus.PUBLISHED
    connector = bluesky_connector_for(brand)
    record = connector.get_record(target.remote_id)
    assert record["value"]["embed"]["images"][0]["alt"] == "A grey laptop lid"

    subject = {"uri": target.remote_id, "cid": record["cid"]}
    fan = Customer(pds, f"fan{time.monotonic_ns() % 10**8}.test")
    buyer = Customer(pds, f"buyer{time.monotonic_ns() % 10**8}.test")
    fan.create("app.bsky.feed.repost", {"subject": subject})
    fan_quote = fan.create(
        "app.bsky.feed.post",
        {"text": "Good deal", "embed": {"$type": "app.bsky.embed.record", "record": subject}},
    )
    buyer.create(
        "app.bsky.feed.post",
        {"text": "CLAIM please", "reply": {"root": subject, "parent": subject}},
    )
    with AccountStream(brand) as stream:
        pump_until(stream, lambda: Forward.objects.filter(target=target).exists())
        answered = pump_until(
            stream,
            lambda: OfferReply.objects.filter(state=ReplyState.SENT).first(),
            timeout=30,
        )
    forward = Forward.objects.get(target=target)  # one per forwarder: the repost came first
    assert (forward.handle, forward.simulated) == (fan.session["handle"], False)
    assert forward.post_remote_id != fan_quote["uri"]
    answer = connector.get_record(answered.answer_remote_id)["value"]
    assert answer["reply"]["parent"]["uri"] == answered.post.remote_id
    assert "LAT-40" in answer["text"]
