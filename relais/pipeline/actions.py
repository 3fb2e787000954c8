"""Storing what networks deliver: batches accepted, posts upserted, enriched, routed.

Storing is idempotent: posts are unique by (workspace, network, remote id), so a replayed or
redelivered item is stored once, and routing only ever handles posts not yet routed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery

from relais.accounts.actions import record_audit
from relais.connectors.base import InboundItem
from relais.connectors.models import ConnectedAccount
from relais.core import clock
from relais.core.events import publish_event
from relais.inbox.routing import route_posts
from relais.listening.actions import do_correct_rollups_for_reenriched, do_match_posts
from relais.pipeline.enrichers import current_enrichment, enrich_posts
from relais.pipeline.items import MAX_TEXT_LENGTH, item_from_json, item_to_json
from relais.pipeline.models import Author, Direction, PendingBatch, Post, Routing
from relais.publishing.inbound import do_record_published_post_activity

MAX_ADOPTION_DEPTH = 50


@dataclass(frozen=True)
class IngestReport:
    received: int
    created: int
    routed: int


def do_accept_items(
    workspace_id: int, network: str, items: Sequence[InboundItem], *, batch_size: int = 0
) -> list[int]:
    """Keep items as pending batches and have workers store them once this transaction commits.

    Call it in the same transaction that saves the connector's cursor: then items are either
    accepted with their cursor or not at all.
    """
    batch_size = batch_size or int(settings.RELAIS["PIPELINE_BATCH_SIZE"])
    batch_ids = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = PendingBatch.objects.create(
            workspace_id=workspace_id,
            network=network,
            items=[item_to_json(item) for item in chunk],
        )
        batch_ids.append(batch.pk)
    if batch_ids:
        from relais.pipeline.tasks import process_batch

        transaction.on_commit(lambda: [process_batch.delay(pk) for pk in batch_ids])
    return batch_ids


def do_process_batch(batch_id: int) -> IngestReport | None:
    """Store one pending batch; None when another worker already did."""
    with transaction.atomic():
        batch = PendingBatch.objects.filter(pk=batch_id).first()
        if batch is None:
            return None
        items = [item_from_json(data) for data in batch.items]
        report = do_ingest_items(batch.workspace_id, batch.network, items)
        PendingBatch.objects.filter(pk=batch_id).delete()
    return report


def do_ingest_items(workspace_id: int, network: str, items: Iterable[InboundItem]) -> IngestReport:
    unique_items = list({item.remote_id: item for item in items}.values())
    if not unique_items:
        return IngestReport(0, 0, 0)
    with transaction.atomic():
        accounts = _brand_accounts(workspace_id, network)
        authors = _upsert_authors(workspace_id, network, unique_items)
        new_posts = _upsert_posts(workspace_id, network, unique_items, authors, accounts)
        adopted = _adopt_waiting_children(workspace_id, network, new_posts)
        do_match_posts(workspace_id, new_posts)
        routed = route_posts(workspace_id, new_posts + adopted, accounts, now=clock.now())
        _save_links_and_routing(new_posts + adopted, relinked=adopted)
        do_record_published_post_activity(workspace_id, network, new_posts)
        if new_posts:
            publish_event(workspace_id, "posts.created", {"count": len(new_posts)})
    return IngestReport(len(unique_items), len(new_posts), routed)


def do_route_orphans(workspace_id: int, *, grace: timedelta | None = None) -> int:
    """Route replies whose parent never arrived (or arrived in a concurrent batch)."""
    if grace is None:
        grace = timedelta(seconds=settings.RELAIS["ORPHAN_GRACE_SECONDS"])
    with transaction.atomic():
        waiting = list(
            Post.objects.in_workspace(workspace_id)
            .filter(routing=Routing.WAITING_PARENT)
            .select_related("author")
            .order_by("created_at")[:5000]
        )
        if not waiting:
            return 0
        by_network: dict[str, list[Post]] = {}
        for post in waiting:
            by_network.setdefault(post.network, []).append(post)
        routed = 0
        cutoff = clock.now() - grace
        for network, posts in by_network.items():
            _link_parents(workspace_id, network, posts)
            ready = [p for p in posts if p.parent_id is not None or p.received_at <= cutoff]
            for post in ready:
                post.routing = Routing.PENDING
            accounts = _brand_accounts(workspace_id, network)
            routed += route_posts(workspace_id, ready, accounts, now=clock.now(), orphans_ok=True)
            _save_links_and_routing(ready, relinked=[p for p in ready if p.parent_id])
    return routed


ENRICHMENT_FIELDS = ["lang", "sentiment", "sentiment_score", "intent", "reason", "entities"]


def do_reenrich_posts(workspace_id: int, *, everything: bool = False, chunk: int = 2000) -> int:
    """Run the current enrichers again over stored posts, oldest first, one chunk per transaction.

    By default only posts enriched by another model version (or never) are redone, so an
    interrupted run resumes where it stopped. Listening mentions and rollups follow the new
    values in the same transaction. Returns the number of posts re-enriched.
    """
    stale = Post.objects.in_workspace(workspace_id).select_related(None)
    if not everything:
        stale = stale.exclude(enriched_by=current_enrichment())
    done, after_pk = 0, 0
    while True:
        with transaction.atomic():
            posts = list(stale.filter(pk__gt=after_pk).order_by("pk")[:chunk])
            if not posts:
                break
            enrich_posts(posts)
            Post.objects.bulk_update(posts, [*ENRICHMENT_FIELDS, "enriched_by"], batch_size=500)
            do_correct_rollups_for_reenriched(workspace_id, [post.pk for post in posts])
        done += len(posts)
        after_pk = posts[-1].pk
    if done:
        with transaction.atomic():
            model = current_enrichment()
            record_audit(workspace_id, None, "posts.reenriched", count=done, model=model)
    return done


def _save_links_and_routing(posts: Sequence[Post], *, relinked: Sequence[Post]) -> None:
    """Write what routing decided, and the parents found for posts stored earlier.

    Routing outcomes take one UPDATE per (routing, account) pair. Only ``relinked`` posts (replies
    adopted or routed after their insert) need a per-row update; new posts got their links in
    their INSERT. Django's bulk_update over every row was 85% of the time when all went that way.
    """
    groups: dict[tuple[str, int | None], list[int]] = {}
    for post in posts:
        groups.setdefault((post.routing, post.account_id), []).append(post.pk)
    for (routing, account_id), pks in groups.items():
        Post.objects.filter(pk__in=pks).update(routing=routing, account_id=account_id)
    Post.objects.bulk_update(relinked, ["parent", "thread_root_remote_id"], batch_size=500)


def _brand_accounts(workspace_id: int, network: str) -> dict[str, ConnectedAccount]:
    """The workspace's connected accounts on this network, by lower-cased handle and alias."""
    by_handle: dict[str, ConnectedAccount] = {}
    for account in ConnectedAccount.objects.in_workspace(workspace_id).filter(network=network):
        by_handle[account.handle.lower()] = account
        for alias in account.settings.get("aliases", []):
            by_handle.setdefault(str(alias).lower(), account)
    return by_handle


def _upsert_authors(
    workspace_id: int, network: str, items: Sequence[InboundItem]
) -> dict[str, Author]:
    latest = {item.author.remote_id: item.author for item in items}
    Author.objects.bulk_create(
        [
            Author(
                workspace_id=workspace_id,
                network=network,
                remote_id=author.remote_id,
                handle=author.handle[:255],
                name=author.name[:255],
                followers=author.followers,
            )
            for author in latest.values()
        ],
        update_conflicts=True,
        unique_fields=["workspace", "network", "remote_id"],
        update_fields=["handle", "name", "followers"],
    )
    return {
        author.remote_id: author
        for author in Author.objects.in_workspace(workspace_id).filter(
            network=network, remote_id__in=list(latest)
        )
    }


def _upsert_posts(
    workspace_id: int,
    network: str,
    items: Sequence[InboundItem],
    authors: dict[str, Author],
    accounts: dict[str, ConnectedAccount],
) -> list[Post]:
    """Insert new posts enriched and linked, refresh known ones (text, metrics); return the new.

    Everything about a new post is decided before its INSERT, except the parent key of a reply
    whose parent is in the same batch: those take one UPDATE for the whole batch.
    """
    remote_ids = [item.remote_id for item in items]
    known = set(
        Post.objects.in_workspace(workspace_id)
        .filter(network=network, remote_id__in=remote_ids)
        .values_list("remote_id", flat=True)
    )
    posts = [_post_from_item(workspace_id, network, item, authors, accounts) for item in items]
    fresh = sorted((p for p in posts if p.remote_id not in known), key=lambda p: p.created_at)
    enrich_posts(fresh)
    parent_in_batch = _link_before_insert(workspace_id, network, fresh)
    Post.objects.bulk_create(
        posts,
        update_conflicts=True,
        unique_fields=["workspace", "network", "remote_id"],
        update_fields=["text", "metrics"],
    )
    _link_parents_in_batch(parent_in_batch)
    # A concurrent worker may have stored and routed one of these since ``known`` was read.
    still_pending = set(
        Post.objects.filter(pk__in=[p.pk for p in fresh], routing=Routing.PENDING).values_list(
            "pk", flat=True
        )
    )
    return [post for post in fresh if post.pk in still_pending]


def _link_before_insert(
    workspace_id: int, network: str, posts: Sequence[Post]
) -> list[tuple[Post, Post]]:
    """Point replies at their stored parents and set every thread root, before the INSERT.

    Returns the (reply, parent) pairs whose parent is in this same batch: its key exists only
    once the batch is inserted. ``posts`` are in time order, so a parent's thread root is known
    before its replies are looked at.
    """
    wanted = {p.in_reply_to_remote_id for p in posts if p.in_reply_to_remote_id}
    if not wanted:
        return []
    in_batch = {p.remote_id: p for p in posts if p.remote_id in wanted}
    stored = {
        parent.remote_id: parent
        for parent in Post.objects.in_workspace(workspace_id)
        .filter(network=network, remote_id__in=wanted - in_batch.keys())
        .select_related("author")
    }
    pairs: list[tuple[Post, Post]] = []
    for post in posts:
        parent = in_batch.get(post.in_reply_to_remote_id) or stored.get(post.in_reply_to_remote_id)
        if parent is None:
            continue
        post.thread_root_remote_id = parent.thread_root_remote_id or parent.remote_id
        if parent.pk is None:
            pairs.append((post, parent))
        else:
            post.parent = parent
    return pairs


def _link_parents_in_batch(pairs: Sequence[tuple[Post, Post]]) -> None:
    if not pairs:
        return
    for post, parent in pairs:
        post.parent = parent
    Post.objects.filter(pk__in=[post.pk for post, _ in pairs]).update(
        parent_id=Subquery(
            Post.objects.filter(
                workspace_id=OuterRef("workspace_id"),
                network=OuterRef("network"),
                remote_id=OuterRef("in_reply_to_remote_id"),
            ).values("pk")[:1]
        )
    )


def _post_from_item(
    workspace_id: int,
    network: str,
    item: InboundItem,
    authors: dict[str, Author],
    accounts: dict[str, ConnectedAccount],
) -> Post:
    own_account = accounts.get(item.author.handle.lower())
    return Post(
        workspace_id=workspace_id,
        network=network,
        remote_id=item.remote_id,
        kind=item.kind.value,
        direction=Direction.OUTBOUND if own_account else Direction.INBOUND,
        author=authors[item.author.remote_id],
        account=own_account,
        text=item.text[:MAX_TEXT_LENGTH],
        lang=(item.lang or "")[:8],
        created_at=item.created_at,
        in_reply_to_remote_id=item.in_reply_to or "",
        thread_root_remote_id=item.in_reply_to or item.remote_id,
        mentions=list(item.mentions),
        metrics=item.metrics,
        raw=item.raw,
    )


def _link_parents(workspace_id: int, network: str, posts: Sequence[Post]) -> None:
    wanted = {p.in_reply_to_remote_id for p in posts if p.in_reply_to_remote_id and not p.parent_id}
    if not wanted:
        return
    parents = {
        parent.remote_id: parent
        for parent in Post.objects.in_workspace(workspace_id)
        .filter(network=network, remote_id__in=wanted)
        .select_related("author")
    }
    parents.update({p.remote_id: p for p in posts if p.remote_id in wanted})
    for post in posts:  # posts arrive in time order, so a parent is resolved before its children
        parent = parents.get(post.in_reply_to_remote_id)
        if parent is not None:
            post.parent = parent
            post.thread_root_remote_id = parent.thread_root_remote_id or parent.remote_id


def _adopt_waiting_children(
    workspace_id: int, network: str, new_posts: Sequence[Post]
) -> list[Post]:
    """Replies stored before their parent can be routed now that the parent is here.

    So can their own waiting replies: the chain is adopted level by level, parents first, so
    routing meets each parent before its children. The depth bound only guards against
    hostile data whose replies point at each other. A reply given up on after the grace period
    (routed as an orphan; left out of the inbox when it opened no conversation, as the brand's
    own replies do) is adopted too when its parent finally comes.
    """
    adopted: list[Post] = []
    seen: set[int] = set()
    parents = list(new_posts)
    for _level in range(MAX_ADOPTION_DEPTH):
        if not parents:
            break
        children = list(
            Post.objects.in_workspace(workspace_id)
            .filter(network=network, in_reply_to_remote_id__in=[p.remote_id for p in parents])
            .filter(
                Q(routing=Routing.WAITING_PARENT)
                | Q(routing=Routing.NOT_ADDRESSED, parent__isnull=True)
            )
            .exclude(pk__in=seen)
            .select_related("author")
            .order_by("created_at", "pk")
        )
        by_remote_id = {p.remote_id: p for p in parents}
        for child in children:
            child.parent = by_remote_id[child.in_reply_to_remote_id]
            child.thread_root_remote_id = (
                child.parent.thread_root_remote_id or child.parent.remote_id
            )
            child.routing = Routing.PENDING
            seen.add(child.pk)
        adopted.extend(children)
        parents = children
    return adopted


def pipeline_lag(workspace_id: int) -> dict[str, Any]:
    """How far behind storing is: batches waiting and the age of the oldest."""
    pending = PendingBatch.objects.in_workspace(workspace_id)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    return {
        "pending_batches": pending.count(),
        "oldest_pending_seconds": round((clock.now() - oldest).total_seconds(), 1)
        if oldest
        else 0.0,
        "waiting_replies": Post.objects.in_workspace(workspace_id)
        .filter(routing=Routing.WAITING_PARENT)
        .count(),
    }
