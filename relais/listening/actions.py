"""Writes of the listening module: queries, mentions with their rollups, alerts and channels.

``check_*`` validates and authorizes, ``do_*`` writes, records the audit entry in the same
transaction and fires side effects (backfill, deliveries, live events) after commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, record_audit
from relais.accounts.models import User, Workspace
from relais.accounts.roles import Capability
from relais.connectors import webhooks_out
from relais.connectors.netguard import UnsafeDestinationError
from relais.core import clock
from relais.core.errors import ValidationFailedError
from relais.core.events import publish_event
from relais.listening import addresses, alerting, delivery, detection, matching
from relais.listening.matcher import Matcher
from relais.listening.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertMetric,
    AlertStatus,
    AuthorRollup,
    ChannelKind,
    DeliveryStatus,
    DetectorState,
    ListeningQuery,
    Mention,
    MentionRollup,
    QueryTag,
    TermRollup,
    WebhookSigningKey,
)
from relais.listening.query import Query, QuerySyntaxError, parse_query
from relais.listening.rollups import CountedMention, add_to_rollups, move_in_rollups, terms_of
from relais.pipeline.models import Post

# Managers and above configure listening (there is no listening capability of its own yet).
MANAGE_LISTENING = Capability.MANAGE_INBOX
MAX_QUERY_NAME = 120
BACKFILL_CHUNK = 2000
SKIP_AFTER = timedelta(hours=1)  # a notice held back by a channel's rate limit this long is dropped


class QueryRefusedError(ValidationFailedError):
    """A query text that does not parse; `position` points at the mistake (0-based)."""

    def __init__(self, message: str, position: int, text: str) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.text = text


@dataclass(frozen=True)
class QueryFields:
    name: str
    text: str
    tag: str
    parsed: Query


# ---------------------------------------------------------------------------------------------
# Queries


def check_query(text: str) -> Query:
    """Parse a query or refuse it with the reason and position (too-broad queries included)."""
    try:
        return parse_query(text)
    except QuerySyntaxError as error:
        raise QueryRefusedError(error.message, error.position, text) from error


def check_query_fields(name: str, text: str, tag: str) -> QueryFields:
    name = name.strip()
    if not name:
        raise ValidationFailedError(_("A query needs a name."))
    if len(name) > MAX_QUERY_NAME:
        raise ValidationFailedError(_("The name is too long."))
    if tag not in QueryTag.values:
        raise ValidationFailedError(_("Unknown tag: %(tag)s") % {"tag": tag})
    return QueryFields(name=name, text=text.strip(), tag=tag, parsed=check_query(text.strip()))


def do_create_query(
    actor: User, workspace: Workspace, *, name: str, text: str, tag: str = QueryTag.BRAND
) -> ListeningQuery:
    check_capability(actor, workspace, MANAGE_LISTENING)
    fields = check_query_fields(name, text, tag)
    with transaction.atomic():
        query = ListeningQuery.objects.create(
            workspace=workspace,
            name=fields.name,
            text=fields.text,
            tag=fields.tag,
            created_by=actor,
        )
        record_audit(workspace, actor, "listening.query_created", query, text=query.text)
        publish_event(workspace.pk, "listening.queries_changed", {"query": query.pk})
        _after_commit_backfill(query)
    return query


def do_update_query(
    actor: User,
    query: ListeningQuery,
    *,
    name: str,
    text: str,
    tag: str,
    active: bool = True,
) -> ListeningQuery:
    """Edit a query; a new text forgets the old mentions and matches the stored posts again."""
    check_capability(actor, query.workspace_id, MANAGE_LISTENING)
    fields = check_query_fields(name, text, tag)
    text_changed, was_active = fields.text != query.text, query.active
    with transaction.atomic():
        if text_changed:
            _forget_mentions(query)
            DetectorState.objects.filter(query=query).delete()
        query.name, query.text, query.tag = fields.name, fields.text, fields.tag
        query.active = active
        query.save()
        record_audit(query.workspace_id, actor, "listening.query_updated", query, text=query.text)
        publish_event(query.workspace_id, "listening.queries_changed", {"query": query.pk})
        if active and (text_changed or not was_active):
            # A reactivated query catches up on what arrived while it was archived.
            _after_commit_backfill(query)
    return query


def do_archive_query(actor: User, query: ListeningQuery) -> ListeningQuery:
    """Stop matching; the mentions, rollups and alerts already recorded are kept."""
    check_capability(actor, query.workspace_id, MANAGE_LISTENING)
    with transaction.atomic():
        query.active = False
        query.save(update_fields=["active", "updated_at"])
        record_audit(query.workspace_id, actor, "listening.query_archived", query)
        publish_event(query.workspace_id, "listening.queries_changed", {"query": query.pk})
    matching.forget_workspace(query.workspace_id)
    return query


def _after_commit_backfill(query: ListeningQuery) -> None:
    from relais.listening.tasks import backfill_query

    workspace_id, query_id = query.workspace_id, query.pk
    transaction.on_commit(lambda: matching.forget_workspace(workspace_id))
    transaction.on_commit(lambda: backfill_query.delay(query_id))


def _forget_mentions(query: ListeningQuery) -> None:
    Mention.objects.filter(query=query).delete()
    for rollup in (MentionRollup, TermRollup, AuthorRollup):
        rollup.objects.filter(query=query).delete()


# ---------------------------------------------------------------------------------------------
# Mentions


def do_match_posts(workspace_id: int, posts: Sequence[Post]) -> int:
    """Match newly stored posts against the workspace's active queries; return mentions written.

    Runs inside the ingest transaction (posts need their author loaded). Mentions and rollups are
    written in a few statements whatever the batch size; a mention already written (a replay, a
    concurrent backfill) is neither written nor counted twice.
    """
    if not posts:
        return 0
    compiled = matching.compiled_queries(workspace_id)
    if compiled is None:
        return 0
    matched = compiled.matcher.match_many(map(matching.matchable, posts))
    pairs = [
        (query_id, post)
        for post, query_ids in zip(posts, matched, strict=True)
        for query_id in query_ids
    ]
    written = _write_mentions(workspace_id, pairs, compiled.own_terms)
    if written:
        publish_event(workspace_id, "mentions.created", {"count": written})
    return written


def do_backfill_query(query_id: int, *, chunk: int = BACKFILL_CHUNK) -> int:
    """Match one query over every post the workspace already holds, oldest first, in chunks."""
    query = ListeningQuery.objects.filter(pk=query_id, active=True).first()
    if query is None:
        return 0
    compiled = matching.compile_queries([query], (1, query.updated_at, query.pk))
    matcher: Matcher[int] = compiled.matcher
    written, after = 0, 0
    while True:
        posts = list(
            Post.objects.in_workspace(query.workspace_id)
            .filter(pk__gt=after)
            .select_related("author")
            .order_by("pk")[:chunk]
        )
        if not posts:
            return written
        after = posts[-1].pk
        matched = matcher.match_many(map(matching.matchable, posts))
        pairs = [(query.pk, post) for post, hit in zip(posts, matched, strict=True) if hit]
        with transaction.atomic():
            # Re-read under the transaction: an edit meanwhile has deleted the mentions and
            # queued its own backfill, so this one stops writing.
            if not ListeningQuery.objects.filter(
                pk=query.pk, updated_at=query.updated_at, active=True
            ).exists():
                return written
            written += _write_mentions(query.workspace_id, pairs, compiled.own_terms)
            if pairs:
                publish_event(query.workspace_id, "mentions.created", {"count": len(pairs)})


def _write_mentions(
    workspace_id: int,
    pairs: Sequence[tuple[int, Post]],
    own_terms: dict[int, frozenset[str]],
) -> int:
    if not pairs:
        return 0
    inserted = _insert_mentions(workspace_id, pairs)
    counted = []
    terms_by_post: dict[int, list[str]] = {}
    for query_id, post in pairs:
        if (query_id, post.pk) not in inserted:
            continue
        if post.pk not in terms_by_post:
            terms_by_post[post.pk] = terms_of(post.text)
        excluded = own_terms.get(query_id, frozenset())
        counted.append(
            _counted(
                workspace_id,
                query_id,
                post,
                tuple(t for t in terms_by_post[post.pk] if t not in excluded),
            )
        )
    add_to_rollups(counted)
    return len(counted)


def _insert_mentions(workspace_id: int, pairs: Sequence[tuple[int, Post]]) -> set[tuple[int, int]]:
    """Insert mentions, skipping existing ones; return the (query, post) pairs really inserted.

    ``ON CONFLICT DO NOTHING RETURNING`` (SQLite 3.35+, PostgreSQL) tells exactly which rows are
    new, so rollups count each mention once even when two writers race on the same post.
    """
    quote = connection.ops.quote_name
    columns = [
        "workspace_id",
        "query_id",
        "post_id",
        "network",
        "language",
        "sentiment",
        "intent",
        "reason",
        "author_handle",
        "created_at",
    ]
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    inserted: set[tuple[int, int]] = set()
    for start in range(0, len(pairs), 300):
        chunk = pairs[start : start + 300]
        params: list[Any] = []
        for query_id, post in chunk:
            params += [
                workspace_id,
                query_id,
                post.pk,
                post.network,
                _language(post.lang),
                post.sentiment,
                post.intent,
                post.reason,
                post.author.handle[:255],
                connection.ops.adapt_datetimefield_value(post.created_at),
            ]
        # Only quoted model identifiers are interpolated; every value is a parameter.
        sql = (
            f"INSERT INTO {quote(Mention._meta.db_table)} "  # noqa: S608
            f"({', '.join(quote(c) for c in columns)}) VALUES "
            f"{', '.join([placeholder] * len(chunk))} "
            f"ON CONFLICT ({quote('query_id')}, {quote('post_id')}) DO NOTHING "
            f"RETURNING {quote('query_id')}, {quote('post_id')}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            inserted.update((row[0], row[1]) for row in cursor.fetchall())
    return inserted


def _language(lang: str) -> str:
    """Mentions and rollups keep the primary language: fr-CA counts as fr."""
    return lang.replace("_", "-").partition("-")[0].lower()[:8]


def _counted(
    workspace_id: int, query_id: int, post: Post, terms: tuple[str, ...]
) -> CountedMention:
    return CountedMention(
        workspace_id=workspace_id,
        query_id=query_id,
        author_id=post.author_id,
        created_at=post.created_at,
        network=post.network,
        language=_language(post.lang),
        sentiment=post.sentiment,
        reason=post.reason,
        terms=terms,
    )


def do_correct_rollups_for_reenriched(workspace_id: int, post_ids: Iterable[int]) -> int:
    """Bring mentions and rollups in line with posts whose enrichment changed.

    Call it after saving new enrichment (language, sentiment, intent, reason) on posts, with the
    ids of the posts re-enriched, in the same transaction or after it. Each mention still holds
    the values it was counted under, so no "before" needs to be passed: every mention whose values
    differ from its post's moves its count from the old rollup key to the new one and takes the
    post's values. Idempotent: a second call finds nothing to move. Returns the mentions moved.
    """
    ids = list(post_ids)
    moved = 0
    for start in range(0, len(ids), BACKFILL_CHUNK):
        with transaction.atomic():
            moved += _correct_chunk(workspace_id, ids[start : start + BACKFILL_CHUNK])
    return moved


def _correct_chunk(workspace_id: int, post_ids: list[int]) -> int:
    posts = {
        post.pk: post for post in Post.objects.in_workspace(workspace_id).filter(pk__in=post_ids)
    }
    mentions = list(
        Mention.objects.in_workspace(workspace_id)
        .filter(post_id__in=list(posts))
        .select_for_update()
    )
    before, after, changed = [], [], []
    for mention in mentions:
        post = posts[mention.post_id]
        new_values = (_language(post.lang), post.sentiment, post.intent, post.reason)
        old_values = (mention.language, mention.sentiment, mention.intent, mention.reason)
        if new_values == old_values:
            continue
        before.append(_counted_from_mention(mention, post))
        mention.language, mention.sentiment, mention.intent, mention.reason = new_values
        after.append(_counted_from_mention(mention, post))
        changed.append(mention)
    Mention.objects.bulk_update(
        changed, ["language", "sentiment", "intent", "reason"], batch_size=500
    )
    # Terms and authors do not depend on enrichment: only the volume rollup moves.
    move_in_rollups(before, after)
    if changed:
        publish_event(workspace_id, "mentions.created", {"count": 0})
    return len(changed)


def _counted_from_mention(mention: Mention, post: Post) -> CountedMention:
    return CountedMention(
        workspace_id=mention.workspace_id,
        query_id=mention.query_id,
        author_id=post.author_id,
        created_at=mention.created_at,
        network=mention.network,
        language=mention.language,
        sentiment=mention.sentiment,
        reason=mention.reason,
        terms=(),
    )


# ---------------------------------------------------------------------------------------------
# Crisis alerts


def do_evaluate_alerts(workspace_id: int, *, now: datetime | None = None) -> list[Alert]:
    """Run the detector on every active query; open and close episodes. Returns alerts opened.

    Called every minute by the beat; idempotent (a second run in the same minute finds the
    episode already open), and never part of storing posts, so it cannot slow the pipeline.
    """
    now = now or clock.now()
    opened = []
    for query in ListeningQuery.objects.in_workspace(workspace_id).filter(active=True):
        baseline = _baseline_for(query, now)
        if baseline is None:
            continue
        recent = alerting.recent_counts(query.pk, now)
        assessments = {
            AlertMetric.VOLUME: detection.assess_volume(baseline, recent, now),
            AlertMetric.NEGATIVE_SHARE: detection.assess_negative_share(baseline, recent, now),
        }
        for metric, finding in assessments.items():
            alert = _apply_finding(query, metric, finding, now)
            if alert is not None:
                opened.append(alert)
    return opened


def _baseline_for(query: ListeningQuery, now: datetime) -> detection.Baseline | None:
    """The query's baseline, recomputed once per hour from its rollups.

    While a query has too little history for a baseline, it is looked for at every evaluation:
    a backfill may bring the history at any moment.
    """
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    state, _created = DetectorState.objects.get_or_create(
        query=query, defaults={"workspace_id": query.workspace_id}
    )
    if state.computed_for != hour or not state.baseline:
        baseline = detection.build_baseline(alerting.history_counts(query.pk, hour), hour)
        state.baseline = baseline.to_json() if baseline else {}
        state.computed_for = hour
        state.save(update_fields=["baseline", "computed_for"])
    return detection.Baseline.from_json(state.baseline) if state.baseline else None


def _apply_finding(
    query: ListeningQuery, metric: str, finding: detection.Finding, now: datetime
) -> Alert | None:
    with transaction.atomic():
        current = (
            Alert.objects.select_for_update()
            .filter(query=query, metric=metric, status=AlertStatus.OPEN)
            .first()
        )
        if current is None and finding.unusual:
            assert finding.started_at is not None
            if _join_open_episode(query, metric):
                return None
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        workspace_id=query.workspace_id,
                        query=query,
                        metric=metric,
                        started_at=finding.started_at,
                        detected_at=now,
                        observed=finding.observed,
                        expected=finding.expected,
                        peak=finding.observed,
                        explanation=alerting.explain(query, finding.started_at, now),
                    )
            except IntegrityError:  # another evaluator opened this episode a moment ago
                return None
            record_audit(query.workspace_id, None, "listening.alert_opened", alert)
            _notify(alert, "opened")
            return alert
        if current is None:
            return None
        if finding.ended and finding.ended_at is not None:
            current.status = AlertStatus.CLOSED
            current.ended_at = max(finding.ended_at, current.started_at)
            joined = current.explanation.get("also_unusual")
            current.explanation = alerting.explain(query, current.started_at, current.ended_at)
            if joined:
                current.explanation["also_unusual"] = joined
            current.save()
            record_audit(query.workspace_id, None, "listening.alert_closed", current)
            _notify(current, "closed")
        elif finding.observed > current.peak:
            current.peak = finding.observed
            current.save(update_fields=["peak", "updated_at"])
    return None


def _join_open_episode(query: ListeningQuery, metric: str) -> bool:
    """One crisis, one alert: a second unusual metric is noted on the query's open alert.

    A surge of complaints raises volume and negative share together; two alerts (and two
    notices) for it would be noise. The metric opens its own alert only once that one closed.
    """
    other = (
        Alert.objects.select_for_update()
        .filter(query=query, status=AlertStatus.OPEN)
        .exclude(metric=metric)
        .first()
    )
    if other is None:
        return False
    also = other.explanation.get("also_unusual", [])
    if metric not in also:
        other.explanation = {**other.explanation, "also_unusual": [*also, metric]}
        other.save(update_fields=["explanation", "updated_at"])
    return True


def _notify(alert: Alert, event: str) -> None:
    """Queue one notice per active channel and tell open pages; sent after commit."""
    channels = AlertChannel.objects.in_workspace(alert.workspace_id).filter(active=True)
    AlertDelivery.objects.bulk_create(
        [
            AlertDelivery(
                workspace_id=alert.workspace_id,
                alert=alert,
                channel=channel,
                event=event,
                next_attempt_at=clock.now(),
            )
            for channel in channels
        ],
        ignore_conflicts=True,
    )
    publish_event(alert.workspace_id, "alerts.changed", {"alert": alert.pk, "event": event})
    from relais.listening.tasks import deliver_notices

    transaction.on_commit(lambda: deliver_notices.delay(alert.workspace_id))


def check_channel(kind: str, target: str, min_interval_seconds: int) -> None:
    """Refuse unknown kinds, malformed addresses and addresses on private networks."""
    if kind not in ChannelKind.values:
        raise ValidationFailedError(_("Unknown channel kind."))
    target = target.strip()
    if kind == ChannelKind.WEBHOOK and not target.startswith(("https://", "http://")):
        raise ValidationFailedError(_("A webhook address starts with https:// or http://."))
    if kind == ChannelKind.APPRISE and not delivery.valid_apprise_url(target):
        raise ValidationFailedError(_("This is not an e-mail or chat address Apprise knows."))
    try:
        if kind == ChannelKind.WEBHOOK:
            addresses.check_webhook_destination(target)
        else:
            addresses.check_apprise_destination(target)
    except UnsafeDestinationError as error:
        raise ValidationFailedError(str(error)) from error
    if min_interval_seconds < 60:
        raise ValidationFailedError(_("Leave at least one minute between two messages."))


def do_create_channel(
    actor: User,
    workspace: Workspace,
    *,
    name: str,
    kind: str,
    target: str,
    min_interval_seconds: int = 300,
) -> AlertChannel:
    check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    check_channel(kind, target, min_interval_seconds)
    with transaction.atomic():
        channel = AlertChannel(
            workspace=workspace,
            name=name.strip()[:120] or kind,
            kind=kind,
            min_interval_seconds=min_interval_seconds,
        )
        channel.target = target.strip()  # stored encrypted
        channel.save()
        signing_key(workspace.pk)
        record_audit(workspace, actor, "listening.channel_created", channel, kind=kind)
    return channel


def do_delete_channel(actor: User, channel: AlertChannel) -> None:
    check_capability(actor, channel.workspace_id, Capability.MANAGE_ACCOUNTS)
    with transaction.atomic():
        record_audit(channel.workspace_id, actor, "listening.channel_deleted", channel)
        channel.delete()


def signing_key(workspace_id: int) -> str:
    key, _created = WebhookSigningKey.objects.get_or_create(
        workspace_id=workspace_id, defaults={"secret": secrets.token_urlsafe(32)}
    )
    return key.secret


def do_deliver_notices(workspace_id: int, *, now: datetime | None = None) -> int:
    """Send the notices that are due; return how many were sent.

    A channel sends at most one message per `min_interval_seconds`: a notice that arrives sooner
    waits its turn, and one that has waited past an hour is skipped, so alerts never flood. A
    failure is retried with backoff up to MAX_ATTEMPTS and shown on the channel meanwhile.
    """
    now = now or clock.now()
    due = list(
        AlertDelivery.objects.in_workspace(workspace_id)
        .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .select_related("alert", "alert__query", "channel")
        .order_by("next_attempt_at", "pk")[:100]
    )
    sent = 0
    channels: dict[int, AlertChannel] = {}
    for notice in due:
        # One instance per channel, so the rate limit sees what the previous notice just sent.
        sent += _deliver_one(notice, channels.setdefault(notice.channel_id, notice.channel), now)
    return sent


def _deliver_one(notice: AlertDelivery, channel: AlertChannel, now: datetime) -> int:
    if now - notice.created_at > SKIP_AFTER:
        notice.status = DeliveryStatus.SKIPPED
        notice.save(update_fields=["status"])
        return 0
    ready_at = (
        channel.last_sent_at + timedelta(seconds=channel.min_interval_seconds)
        if channel.last_sent_at
        else now
    )
    if ready_at > now:
        notice.next_attempt_at = ready_at
        notice.save(update_fields=["next_attempt_at"])
        return 0
    payload = delivery.notice_payload(notice.alert, notice.event, _alert_url(notice.alert))
    notice.attempts += 1
    try:
        delivery.send(channel, payload, signing_key(notice.workspace_id))
    except delivery.DeliveryError as error:
        notice.last_error = channel.last_error = str(error)[:500]
        channel.consecutive_failures += 1
        if notice.attempts >= delivery.MAX_ATTEMPTS:
            notice.status = DeliveryStatus.FAILED
        else:
            notice.next_attempt_at = now + webhooks_out.retry_delay(notice.attempts)
        notice.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
        channel.save(update_fields=["consecutive_failures", "last_error"])
        publish_event(notice.workspace_id, "alerts.changed", {"channel": channel.pk})
        return 0
    notice.status, notice.sent_at, notice.last_error = DeliveryStatus.SENT, now, ""
    notice.save(update_fields=["attempts", "status", "sent_at", "last_error"])
    channel.last_sent_at, channel.consecutive_failures, channel.last_error = now, 0, ""
    channel.save(update_fields=["last_sent_at", "consecutive_failures", "last_error"])
    return 1


def _alert_url(alert: Alert) -> str:
    """The alert's page, as a path: Relais does not know the address it is served at."""
    return reverse("listening_alerts", args=[alert.workspace.slug]) + f"?alert={alert.pk}"
