"""What networks tell us about our published posts: real forwards, and claims by reply keyword.

The pipeline calls ``do_record_published_post_activity`` with the posts a batch stored for the
first time, inside the batch's transaction:

- a repost, quote or boost of one of our published targets becomes a ``Forward`` of its cascade
  (once per forwarder and target, so a redelivered batch changes nothing). Who it came from is
  the forward it names (a repost ``via`` another, a quote of a quote), else our post itself.
  A forward undone on the network is marked withdrawn (``do_withdraw_forwards`` from a stream's
  deletions, ``do_withdraw_missing_forwards`` from a network's list of current forwarders);
- a customer's reply to an offer's post that says one of the offer's keywords becomes an
  ``OfferReply``, stored with the reply (an outbox). The unit is taken and the code sent back
  afterwards by ``do_answer_offer_reply`` (the beat's publish run and a task after commit),
  so the pipeline never waits on a network nor holds the offer's row.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from relais.accounts.actions import record_audit
from relais.connectors.base import ConnectorError, CredentialsExpiredError, OutboundPost, PostKind
from relais.connectors.registry import connector_for
from relais.core import clock
from relais.core.errors import ValidationFailedError
from relais.core.events import publish_event
from relais.pipeline.models import Direction, Post
from relais.publishing.counting import count_for
from relais.publishing.links import visitor_hash
from relais.publishing.models import (
    Claim,
    Forward,
    Offer,
    OfferReply,
    ReplyOutcome,
    ReplyState,
    Target,
    TargetStatus,
    TrackedLink,
)

logger = logging.getLogger(__name__)

ANSWER_LEASE = timedelta(seconds=60)
MAX_ANSWER_ATTEMPTS = 5
ANSWER_BACKOFF = timedelta(seconds=30)
# How each network names a forward, for the cascade's labels.
FORWARD_NAMES = {"mastodon": {"repost": "boost"}}


def do_record_published_post_activity(
    workspace_id: int, network: str, posts: Sequence[Post]
) -> None:
    """Forwards of our published posts and keyword replies to our offers, among new posts."""
    inbound = [post for post in posts if post.direction == Direction.INBOUND]
    forwards = [(post, subject) for post in inbound if (subject := forwarded_subject(post))]
    replies = [
        post for post in inbound if post.kind == PostKind.REPLY and post.in_reply_to_remote_id
    ]
    if not forwards and not replies:
        return
    wanted = {subject for _post, subject in forwards} | {p.in_reply_to_remote_id for p in replies}
    targets = {
        target.remote_id: target
        for target in Target.objects.in_workspace(workspace_id)
        .filter(remote_id__in=wanted, account__network=network, status=TargetStatus.PUBLISHED)
        .select_related("draft__offer")
    }
    if forwards:
        _record_forwards(workspace_id, network, forwards, targets)
    if replies and targets:
        _record_offer_replies(replies, targets)


# Forwards -----------------------------------------------------------------------------------


def forwarded_subject(post: Post) -> str:
    """The post a repost, quote or boost forwards ('' for any other post)."""
    raw: dict[str, Any] = post.raw if isinstance(post.raw, dict) else {}
    if post.kind == PostKind.REPOST:
        return str(raw.get("subject") or "")
    return str(raw.get("quoted") or _embedded_record(raw.get("record")))


def _embedded_record(record: Any) -> str:
    """A Bluesky post's quoted record: ``embed.record.uri``, or inside a record with media."""
    embed = record.get("embed") if isinstance(record, dict) else None
    if not isinstance(embed, dict) or not str(embed.get("$type", "")).startswith(
        "app.bsky.embed.record"
    ):
        return ""
    inner = embed.get("record")
    if isinstance(inner, dict) and isinstance(inner.get("record"), dict):
        inner = inner["record"]  # app.bsky.embed.recordWithMedia
    return str(inner.get("uri") or "") if isinstance(inner, dict) else ""


def _record_forwards(
    workspace_id: int,
    network: str,
    forwards: list[tuple[Post, str]],
    targets: dict[str, Target],
) -> None:
    """One forward per forwarder and target; a forward of a forward hangs under it."""
    subjects = {subject for _post, subject in forwards}
    vias = {str(post.raw.get("via") or "") for post, _subject in forwards} - {""}
    earlier = {
        forward.post_remote_id: forward
        for forward in Forward.objects.in_workspace(workspace_id).filter(
            network=network, post_remote_id__in=subjects | vias
        )
    }
    touched: set[int] = set()
    for post, subject in sorted(forwards, key=lambda pair: pair[0].created_at):
        via = str(post.raw.get("via") or "")
        parent = earlier.get(via) or earlier.get(subject)
        target = targets.get(subject) or (parent.target if parent else None)
        if target is None:
            continue
        kind = "quote" if post.kind != PostKind.REPOST else "repost"
        forward, created = Forward.objects.get_or_create(
            target=target,
            forwarder_id=post.author.remote_id,
            defaults={
                "workspace_id": workspace_id,
                "parent": parent,
                "network": network,
                "handle": post.author.handle[:255],
                "kind": FORWARD_NAMES.get(network, {}).get(kind, kind),
                "followers": post.author.followers,
                "depth": parent.depth + 1 if parent else 1,
                "forwarded_at": post.created_at,
                "post_remote_id": post.remote_id,
            },
        )
        if not created and forward.withdrawn_at is not None:
            _stand_again(forward, post)
        earlier[post.remote_id] = forward
        touched.add(target.pk)
    _announce_forwards(workspace_id, touched)


def _stand_again(forward: Forward, post: Post) -> None:
    """A forwarder who undid a forward and forwarded again counts from the new forward."""
    forward.withdrawn_at = None
    forward.forwarded_at = post.created_at
    forward.post_remote_id = post.remote_id
    forward.save(update_fields=["withdrawn_at", "forwarded_at", "post_remote_id"])


def _announce_forwards(workspace_id: int, target_ids: set[int]) -> None:
    for target_id in sorted(target_ids):
        publish_event(workspace_id, "publishing.forwarded", {"target": target_id})


def do_withdraw_forwards(workspace_id: int, network: str, post_remote_ids: Sequence[str]) -> int:
    """Forwards whose own post the network says is gone (a deleted repost or quote, an undone
    boost) stop counting: marked withdrawn, kept for the cascade's history."""
    if not post_remote_ids:
        return 0
    standing = Forward.objects.in_workspace(workspace_id).filter(
        network=network, post_remote_id__in=set(post_remote_ids), withdrawn_at=None
    )
    return _withdraw(workspace_id, standing)


def do_withdraw_missing_forwards(target: Target, kinds: Sequence[str], forwarders: set[str]) -> int:
    """The network listed everyone who still forwards ``target`` in ``kinds``: the others
    undid theirs (a network that sends no event when a boost is undone)."""
    standing = (
        Forward.objects.in_workspace(target.workspace_id)
        .filter(target=target, kind__in=kinds, simulated=False, withdrawn_at=None)
        .exclude(forwarder_id__in=forwarders)
    )
    return _withdraw(target.workspace_id, standing)


# Networks that send nothing when a boost, repost or quote is undone (Mastodon, Bluesky's
# AppView) are asked who still forwards our recent posts that way.
BOOSTS_CHECKED_FOR = timedelta(days=7)
LISTED_BOOSTS = ("boost", "repost")
LISTED_QUOTES = ("quote",)


def targets_with_standing_boosts(now: Any, limit: int = 200) -> list[int]:
    """Published targets of the last week with real forwards still counted, oldest check first."""
    return list(
        Target.objects.filter(
            status=TargetStatus.PUBLISHED,
            published_at__gte=now - BOOSTS_CHECKED_FOR,
            forwards__kind__in=LISTED_BOOSTS + LISTED_QUOTES,
            forwards__simulated=False,
            forwards__withdrawn_at=None,
        )
        .distinct()
        .order_by("published_at")
        .values_list("pk", flat=True)[:limit]
    )


def do_check_boosts(target_id: int) -> int:
    """Withdraw the forwards of one published target that its network no longer lists.

    Only the kinds the network can list are checked; a forwarder is kept while any listing
    names them (one forward per forwarder: a repost undone under a standing quote stays)."""
    target = Target.objects.select_related("account").get(pk=target_id)
    connector = connector_for(target.account)
    try:
        boosters = connector.boosters(target.remote_id)
        quoters = connector.quoters(target.remote_id)
    except CredentialsExpiredError:
        return 0  # the account's poll marks it for reconnection
    except ConnectorError as exc:
        logger.warning("could not list who forwards %s: %s", target.remote_id, exc)
        return 0
    kinds = (LISTED_BOOSTS if boosters is not None else ()) + (
        LISTED_QUOTES if quoters is not None else ()
    )
    if not kinds:
        return 0
    return do_withdraw_missing_forwards(target, kinds, (boosters or set()) | (quoters or set()))


def _withdraw(workspace_id: int, standing: Any) -> int:
    with transaction.atomic():
        withdrawn = list(standing.select_for_update().select_related("target"))
        if not withdrawn:
            return 0
        Forward.objects.filter(pk__in=[forward.pk for forward in withdrawn]).update(
            withdrawn_at=clock.now()
        )
        for forward in withdrawn:
            record_audit(
                workspace_id,
                None,
                "publishing.forward_withdrawn",
                forward.target,
                forwarder=forward.handle,
                kind=forward.kind,
            )
        _announce_forwards(workspace_id, {forward.target_id for forward in withdrawn})
    return len(withdrawn)


# Claims by reply keyword --------------------------------------------------------------------


def keywords_of(offer: Offer) -> list[str]:
    return [k for k in (normalized(part) for part in offer.reply_keywords.split(",")) if k]


def normalized(text: str) -> str:
    """Case, accents and spacing do not matter: "Je prends" says "JE PRENDS"."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def says_keyword(text: str, keywords: list[str]) -> bool:
    said = normalized(text)
    return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", said) for word in keywords)


def _record_offer_replies(replies: list[Post], targets: dict[str, Target]) -> None:
    stored: list[int] = []
    for post in replies:
        target = targets.get(post.in_reply_to_remote_id)
        offer = target.draft.offer if target else None
        if target is None or offer is None or not says_keyword(post.text, keywords_of(offer)):
            continue
        reply, created = OfferReply.objects.get_or_create(
            post=post,
            defaults={
                "workspace_id": post.workspace_id,
                "offer": offer,
                "target": target,
                "idempotency_key": f"offer-reply-{post.workspace_id}-{post.pk}",
                "created_at": post.created_at,
            },
        )
        if created:
            stored.append(reply.pk)
    if stored:
        transaction.on_commit(lambda: _answer_soon(stored))


def _answer_soon(reply_ids: list[int]) -> None:
    from relais.publishing.tasks import answer_offer_replies

    answer_offer_replies.delay(reply_ids)


def author_claimant(offer_id: int, network: str, author_remote_id: str) -> str:
    """One claim per person per offer: a keyed hash of who replied, never their id itself."""
    return visitor_hash(f"offer-{offer_id}", f"{network}:{author_remote_id}", "reply")


def due_offer_reply_ids(now: Any, limit: int = 200) -> list[int]:
    return list(
        OfferReply.objects.filter(state=ReplyState.PENDING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def do_answer_offer_reply(reply_id: int) -> OfferReply | None:
    """Take the unit (or learn why not), then send the answer as a reply to the customer.

    The reply is leased first, so two workers never answer it at once; the claim is the
    landing page's (conditional UPDATE, one per person); the answer carries an idempotency
    key, so a retry after a timeout is not a second answer. Returns None when another worker
    holds the reply or it is already answered.
    """
    now = clock.now()
    leased = (
        OfferReply.objects.filter(pk=reply_id, state=ReplyState.PENDING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + ANSWER_LEASE, attempts=F("attempts") + 1)
    )
    if not leased:
        return None
    reply = OfferReply.objects.select_related("post__author", "target__account", "offer").get(
        pk=reply_id
    )
    if not reply.outcome:
        _decide(reply)
    return _send_answer(reply)


def _decide(reply: OfferReply) -> None:
    from relais.publishing.actions import do_claim

    offer, post = reply.offer, reply.post
    link = TrackedLink.objects.filter(target=reply.target, offer=offer).first()
    with transaction.atomic():
        try:
            claim: Claim | None = do_claim(
                offer.pk,
                link=link,
                claimant=author_claimant(offer.pk, post.network, post.author.remote_id),
                network=post.network,
            )
        except ValidationFailedError as refusal:
            claim, reply.outcome, reply.answer = None, ReplyOutcome.REFUSED, str(refusal)
        else:
            assert claim is not None
            reply.outcome, reply.answer = ReplyOutcome.CLAIMED, claimed_answer(offer, claim, post)
        reply.claim = claim
        OfferReply.objects.filter(pk=reply.pk).update(
            claim=claim, outcome=reply.outcome, answer=reply.answer
        )
        record_audit(
            reply.workspace_id, None, "publishing.reply_claim", offer, outcome=reply.outcome
        )


def claimed_answer(offer: Offer, claim: Claim, post: Post) -> str:
    """The code, with the product named when the network's limit leaves room for it."""
    answer = _("It is yours: your code for %(product)s is %(code)s") % {
        "product": offer.product,
        "code": claim.code,
    }
    if count_for(post.network, answer).over:
        answer = _("It is yours: your code is %(code)s") % {"code": claim.code}
    return answer


def _send_answer(reply: OfferReply) -> OfferReply:
    account = reply.target.account
    outbound = OutboundPost(
        text=reply.answer, kind=PostKind.REPLY, in_reply_to=reply.post.remote_id
    )
    try:
        sent = connector_for(account).reply(outbound, idempotency_key=reply.idempotency_key)
    except ConnectorError as error:
        return _answer_failed(reply, error)
    with transaction.atomic():
        OfferReply.objects.filter(pk=reply.pk).update(
            state=ReplyState.SENT, answer_remote_id=sent.remote_id, lease_until=None, last_error=""
        )
        record_audit(reply.workspace_id, None, "publishing.reply_answered", reply.offer)
        publish_event(reply.workspace_id, "publishing.claimed", {"offer": reply.offer_id})
    reply.state, reply.answer_remote_id = ReplyState.SENT, sent.remote_id
    return reply


def _answer_failed(reply: OfferReply, error: ConnectorError) -> OfferReply:
    """A passing failure is tried again later with the same key; anything else is kept, failed."""
    if isinstance(error, CredentialsExpiredError):
        from relais.connectors.actions import do_mark_reconnect_needed

        do_mark_reconnect_needed(reply.target.account, error)
    reason = (str(error) or type(error).__name__)[:500]
    retry = error.retryable and reply.attempts < MAX_ANSWER_ATTEMPTS
    with transaction.atomic():
        if retry:
            OfferReply.objects.filter(pk=reply.pk).update(
                lease_until=clock.now() + ANSWER_BACKOFF * reply.attempts, last_error=reason
            )
        else:
            OfferReply.objects.filter(pk=reply.pk).update(
                state=ReplyState.FAILED, lease_until=None, last_error=reason
            )
            reply.state = ReplyState.FAILED
        record_audit(reply.workspace_id, None, "publishing.reply_failed", reply.offer, error=reason)
    reply.last_error = reason
    return reply
