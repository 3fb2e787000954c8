"""Real forwards of our posts join the cascade; a keyword reply to an offer claims a unit."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from relais.accounts.actions import do_create_api_token
from relais.accounts.models import AuditEntry
from relais.conftest import T0, make_item
from relais.connectors.actions import do_accept_bluesky_page
from relais.connectors.base import InboundAuthor, InboundItem, PostKind
from relais.connectors.models import ConnectedAccount
from relais.connectors.models import Engagement as NetworkEngagement
from relais.connectors.networks.bluesky import BlueskyPage, EngagementEvent
from relais.core import clock
from relais.pipeline.actions import do_ingest_items
from relais.publishing import actions, inbound, queries
from relais.publishing.models import (
    Claim,
    Forward,
    Offer,
    OfferReply,
    ReplyOutcome,
    ReplyState,
    Target,
    TargetStatus,
)
from relais.publishing.tests.test_promotions import make_offer
from relais.sandbox.models import SandboxOutbound

BRAND_POST = "at://did:plc:brand/app.bsky.feed.post/3kbrand"


def published(owner, draft, remote_id=""):
    """The draft through approval; published now for real (sandbox) or as a network said so."""
    actions.do_submit_for_approval(owner, draft)
    actions.do_approve(owner, draft)
    actions.do_schedule(owner, draft, clock.now() + timedelta(minutes=1))
    if remote_id:  # a real network's post: its id is what the network gave back
        draft.targets.update(status=TargetStatus.PUBLISHED, remote_id=remote_id, published_at=T0)
    else:
        draft.targets.update(scheduled_at=clock.now())
        actions.do_publish_target(draft.targets.get().pk)
    return draft.targets.get()


@pytest.fixture
def bluesky_account(workspace):
    return ConnectedAccount.objects.create(
        workspace=workspace, network="bluesky", handle="brand.test"
    )


def bluesky_repost(uri, did, subject, minutes=1, via=""):
    raw = {"uri": uri, "subject": subject} | ({"via": via} if via else {})
    return InboundItem(
        remote_id=uri,
        kind=PostKind.REPOST,
        author=InboundAuthor(remote_id=did, handle=f"{did[-4:]}.test", followers=40),
        text="",
        created_at=T0 + timedelta(minutes=minutes),
        raw=raw,
    )


def bluesky_quote(uri, did, quoted, minutes=2):
    embed = {"$type": "app.bsky.embed.record", "record": {"uri": quoted, "cid": "bafy"}}
    return InboundItem(
        remote_id=uri,
        kind=PostKind.QUOTE,
        author=InboundAuthor(remote_id=did, handle=f"{did[-4:]}.test"),
        text="Look at this",
        created_at=T0 + timedelta(minutes=minutes),
        raw={"uri": uri, "record": {"text": "Look at this", "embed": embed}},
    )


@pytest.mark.django_db
def test_reposts_and_quotes_on_bluesky_become_the_cascade_once(owner, workspace, bluesky_account):
    draft = actions.do_create_draft(owner, workspace.pk, "Spring sale", [bluesky_account.pk])
    target = published(owner, draft, BRAND_POST)
    batch = [
        bluesky_repost("at://did:plc:anna/app.bsky.feed.repost/1", "did:plc:anna", BRAND_POST),
        bluesky_quote("at://did:plc:bert/app.bsky.feed.post/2", "did:plc:bert", BRAND_POST),
        # Carla quotes Bert's quote, then Dan reposts our post through Carla's repost of it.
        bluesky_quote(
            "at://did:plc:carl/app.bsky.feed.post/3",
            "did:plc:carl",
            "at://did:plc:bert/app.bsky.feed.post/2",
            minutes=3,
        ),
        bluesky_repost(
            "at://did:plc:dann/app.bsky.feed.repost/4",
            "did:plc:dann",
            BRAND_POST,
            minutes=4,
            via="at://did:plc:carl/app.bsky.feed.post/3",
        ),
        # Someone else's post reposted: not ours, not a forward of ours.
        bluesky_repost("at://did:plc:erin/app.bsky.feed.repost/5", "did:plc:erin", "at://x/y/z"),
    ]
    do_ingest_items(workspace.pk, "bluesky", batch)
    do_ingest_items(workspace.pk, "bluesky", batch)  # redelivered: nothing new

    forwards = {f.handle: f for f in Forward.objects.filter(target=target)}
    assert set(forwards) == {"anna.test", "bert.test", "carl.test", "dann.test"}
    assert not any(f.simulated for f in forwards.values())
    assert (forwards["anna.test"].kind, forwards["anna.test"].depth) == ("repost", 1)
    assert forwards["anna.test"].followers == 40
    assert forwards["anna.test"].forwarded_at == T0 + timedelta(minutes=1)
    assert (forwards["bert.test"].kind, forwards["bert.test"].parent) == ("quote", None)
    assert forwards["carl.test"].parent == forwards["bert.test"]
    assert forwards["dann.test"].parent == forwards["carl.test"]
    assert forwards["dann.test"].depth == 3


@pytest.mark.django_db
def test_a_mastodon_boost_is_a_boost_of_the_cascade(owner, workspace):
    account = ConnectedAccount.objects.create(
        workspace=workspace, network="mastodon", handle="brand@social.test"
    )
    draft = actions.do_create_draft(owner, workspace.pk, "Spring sale", [account.pk])
    target = published(owner, draft, "1100")
    boost = InboundItem(
        remote_id="1100/reblogged_by/77",
        kind=PostKind.REPOST,
        author=InboundAuthor(remote_id="lea@mastodon.test", handle="lea@mastodon.test"),
        text="",
        created_at=T0,
        raw={"notification": "9", "subject": "1100"},
    )
    do_ingest_items(workspace.pk, "mastodon", [boost])
    forward = Forward.objects.get(target=target)
    assert (forward.kind, forward.handle, forward.simulated) == (
        "boost",
        "lea@mastodon.test",
        False,
    )


@pytest.mark.django_db
def test_a_deleted_repost_or_quote_is_a_withdrawn_forward(owner, workspace, bluesky_account):
    draft = actions.do_create_draft(owner, workspace.pk, "Spring sale", [bluesky_account.pk])
    target = published(owner, draft, BRAND_POST)
    repost = bluesky_repost("at://did:plc:anna/app.bsky.feed.repost/1", "did:plc:anna", BRAND_POST)
    quote = bluesky_quote("at://did:plc:bert/app.bsky.feed.post/2", "did:plc:bert", BRAND_POST)
    do_ingest_items(workspace.pk, "bluesky", [repost, quote])
    counts, _events = queries.engagement(workspace.pk, [target])
    assert (counts[target.pk]["reposts"], counts[target.pk]["quotes"]) == (1, 1)

    # The firehose tells us both records were deleted (and an unrelated deletion).
    undone = [repost.remote_id, quote.remote_id, "at://did:plc:zed/app.bsky.feed.like/9"]
    page = BlueskyPage(
        items=[], cursor={}, engagements=[EngagementEvent(uri, "", undone=True) for uri in undone]
    )
    do_accept_bluesky_page(bluesky_account, page)

    assert Forward.objects.filter(target=target, withdrawn_at__isnull=False).count() == 2
    counts, _events = queries.engagement(workspace.pk, [target])
    assert (counts[target.pk]["reposts"], counts[target.pk]["quotes"]) == (0, 0)
    dots, _height = queries.cascade_picture(target, clock.now())
    assert [dot.withdrawn for dot in dots] == [True, True]  # still drawn, marked
    assert AuditEntry.objects.filter(action="publishing.forward_withdrawn").count() == 2

    # Anna reposts again: her forward stands again, from the new repost.
    again = bluesky_repost(
        "at://did:plc:anna/app.bsky.feed.repost/7", "did:plc:anna", BRAND_POST, minutes=9
    )
    do_ingest_items(workspace.pk, "bluesky", [again])
    anna = Forward.objects.get(target=target, forwarder_id="did:plc:anna")
    assert (anna.withdrawn_at, anna.post_remote_id) == (None, again.remote_id)
    assert anna.forwarded_at == T0 + timedelta(minutes=9)


def claim_reply(remote_id, parent, text, handle):
    return make_item(remote_id, text, handle=handle, in_reply_to=parent)


@pytest.fixture
def offer_post(owner, workspace, brand_account):
    offer = make_offer(owner, workspace, stock=2, reply_keywords="CLAIM, je prends")
    draft = actions.do_create_offer_draft(owner, offer, [brand_account.pk], "https://relais.test")
    return published(owner, draft)


@pytest.mark.django_db
def test_a_keyword_reply_claims_a_unit_and_gets_its_code_back(
    client, owner, workspace, offer_post, django_capture_on_commit_callbacks
):
    parent = offer_post.remote_id
    with django_capture_on_commit_callbacks(execute=True):
        do_ingest_items(
            workspace.pk,
            "sandbox",
            [
                claim_reply("r1", parent, "@Freebox Je prends !", "camille"),
                claim_reply("r2", parent, "Is it refurbished?", "dominique"),
                claim_reply("r3", parent, "CLAIM", "camille"),  # the same person again
            ],
        )
    replies = list(OfferReply.objects.order_by("post__remote_id"))
    assert [r.post.remote_id for r in replies] == ["r1", "r3"]
    assert all(r.state == ReplyState.SENT and r.outcome == ReplyOutcome.CLAIMED for r in replies)
    claim = Claim.objects.get()
    assert claim.network == "sandbox"
    assert claim.link is not None
    assert Offer.objects.get(pk=claim.offer_id).stock_left == 1
    answers = SandboxOutbound.objects.filter(kind="reply").order_by("in_reply_to")
    assert [a.in_reply_to for a in answers] == ["r1", "r3"]
    assert all("LAT-40" in a.text for a in answers)
    assert "reply CLAIM to claim one" in offer_post.text
    client.force_login(owner)
    page = client.get(
        reverse("publishing_campaign", args=[workspace.slug]) + f"?id={claim.offer_id}"
    )
    assert b"Claims by reply (CLAIM, je prends)" in page.content
    assert b"@camille" in page.content


@pytest.mark.django_db
def test_sold_out_gets_a_clear_answer_and_a_retry_sends_it_once(
    workspace, offer_post, django_capture_on_commit_callbacks
):
    parent = offer_post.remote_id
    items = [claim_reply(f"r{n}", parent, "claim", f"person{n}") for n in range(3)]
    do_ingest_items(workspace.pk, "sandbox", items)  # answered by the next publish run
    for reply_id in inbound.due_offer_reply_ids(clock.now()):
        inbound.do_answer_offer_reply(reply_id)
    refused = OfferReply.objects.get(post__remote_id="r2")
    assert refused.outcome == ReplyOutcome.REFUSED
    assert refused.answer.startswith("Sold out")
    assert SandboxOutbound.objects.get(in_reply_to="r2").text == refused.answer
    assert inbound.do_answer_offer_reply(refused.pk) is None  # answered: never twice
    assert inbound.due_offer_reply_ids(clock.now()) == []
    assert SandboxOutbound.objects.filter(kind="reply").count() == 3


@pytest.mark.django_db
def test_replies_to_a_post_without_keywords_or_offer_claim_nothing(owner, workspace, brand_account):
    offer = make_offer(owner, workspace, stock=2)  # no keyword set
    draft = actions.do_create_offer_draft(owner, offer, [brand_account.pk], "https://relais.test")
    target = published(owner, draft)
    plain = published(owner, actions.do_create_draft(owner, workspace.pk, "Hi", [brand_account.pk]))
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            claim_reply("r1", target.remote_id, "CLAIM", "camille"),
            claim_reply("r2", plain.remote_id, "CLAIM", "camille"),
        ],
    )
    assert not OfferReply.objects.exists()


def test_keywords_ignore_case_accents_and_spacing_but_not_word_parts():
    keywords = [inbound.normalized(k) for k in ["CLAIM", "JE PRENDS"]]
    assert inbound.says_keyword("je   prends, merci", keywords)
    assert inbound.says_keyword("Jé Prends", keywords)
    assert inbound.says_keyword("@brand claim!", keywords)
    assert not inbound.says_keyword("reclaimed", keywords)


@pytest.mark.django_db(transaction=True)
def test_concurrent_keyword_claims_never_oversell(owner, workspace, brand_account):
    if connection.vendor != "postgresql":
        pytest.skip("row locking under real concurrency is tested on PostgreSQL")
    offer = make_offer(
        owner, workspace, stock=6, code_mode="unique", shared_code="", reply_keywords="claim"
    )
    draft = actions.do_create_offer_draft(owner, offer, [brand_account.pk], "https://relais.test")
    target = published(owner, draft)

    def store_and_answer(number: int) -> None:
        # Each worker stores its own batch; the answer task runs (eagerly) after its commit.
        reply = claim_reply(f"r{number}", target.remote_id, "CLAIM", f"person{number}")
        try:
            do_ingest_items(workspace.pk, "sandbox", [reply])
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(store_and_answer, range(30)))
    outcomes = list(OfferReply.objects.values_list("outcome", flat=True))
    assert len(outcomes) == 30
    assert outcomes.count(ReplyOutcome.CLAIMED) == 6
    assert outcomes.count(ReplyOutcome.REFUSED) == 24
    codes = list(Claim.objects.filter(offer=offer).values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 6
    assert Offer.objects.get(pk=offer.pk).stock_left == 0
    assert not OfferReply.objects.exclude(state=ReplyState.SENT).exists()
    assert Target.objects.get(pk=target.pk).status == TargetStatus.PUBLISHED


@pytest.mark.django_db
def test_engagement_shows_in_the_campaign_report_and_its_csv(
    client, owner, workspace, brand_account, bluesky_account
):
    offer = make_offer(owner, workspace, stock=5)
    draft = actions.do_create_offer_draft(
        owner, offer, [brand_account.pk, bluesky_account.pk], "https://relais.test"
    )
    actions.do_submit_for_approval(owner, draft)
    actions.do_approve(owner, draft)
    actions.do_schedule(owner, draft, clock.now() + timedelta(minutes=1))
    sandbox_target = draft.targets.get(account=brand_account)
    draft.targets.filter(pk=sandbox_target.pk).update(scheduled_at=clock.now())
    actions.do_publish_target(sandbox_target.pk)
    sandbox_target.refresh_from_db()
    draft.targets.filter(account=bluesky_account).update(
        status=TargetStatus.PUBLISHED, remote_id=BRAND_POST, published_at=T0
    )
    # The sandbox's echo of our post with the counts it reports, a reply and a repost of it.
    echo = make_item(sandbox_target.remote_id, "Our offer", handle="Freebox")
    echo = replace(echo, metrics={"likes": 7})
    reply = make_item("c1", "Nice price", handle="camille", in_reply_to=sandbox_target.remote_id)
    repost = bluesky_repost("rp1", "did:plc:rpst", sandbox_target.remote_id)
    do_ingest_items(workspace.pk, "sandbox", [echo, reply, repost])
    # Bluesky reports each like with its time.
    for number, day in enumerate([T0, T0, T0 + timedelta(days=1)]):
        NetworkEngagement.objects.create(
            workspace=workspace,
            account=bluesky_account,
            network="bluesky",
            remote_id=f"at://did:plc:l{number}/app.bsky.feed.like/1",
            subject_remote_id=BRAND_POST,
            actor_remote_id=f"did:plc:l{number}",
            kind="like",
            created_at=day,
        )

    report = queries.offer_report(workspace.pk, offer.pk, clock.now())
    by_account = {line.target.account.network: line.tally for line in report.posts}
    assert (by_account["sandbox"].likes, by_account["sandbox"].replies) == (7, 1)
    assert by_account["sandbox"].reposts == 1
    assert by_account["bluesky"].likes == 3
    assert report.by_network["bluesky"].likes == 3
    assert report.by_day[T0.date()].likes == 2
    assert report.by_day[(T0 + timedelta(days=1)).date()].likes == 1
    assert report.total.likes == 10

    client.force_login(owner)
    csv_url = reverse("publishing_campaign_csv", args=[workspace.slug]) + f"?id={offer.pk}"
    lines = client.get(csv_url).content.decode().splitlines()
    assert lines[0].endswith(",likes,reposts,replies,quotes")
    assert lines[1].endswith(",10,1,1,0")
    assert f"day,{(T0 + timedelta(days=1)).date().isoformat()},0,0,0,0" in "\n".join(lines)
    page = client.get(reverse("publishing_draft", args=[workspace.slug]) + f"?id={draft.pk}")
    assert b"7 likes, 1 reposts, 1 replies, 0 quotes" in page.content
    _token, secret = do_create_api_token(workspace, owner, "report")
    api = client.get(
        f"/api/v1/publishing/offers/{offer.pk}/report", HTTP_AUTHORIZATION=f"Bearer {secret}"
    ).json()
    assert api["by_network"]["bluesky"]["likes"] == 3
    assert api["by_day"][T0.date().isoformat()]["likes"] == 2
