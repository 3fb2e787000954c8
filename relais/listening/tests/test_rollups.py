"""Rollups always equal a recount from the mentions, whatever arrives in whatever order."""

from collections import Counter
from datetime import UTC, datetime

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relais.conftest import make_item
from relais.listening import matching
from relais.listening.actions import do_correct_rollups_for_reenriched, do_create_query
from relais.listening.models import AuthorRollup, Mention, MentionRollup
from relais.listening.rollups import bucket_of, day_of, terms_of
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import Post

pytestmark = pytest.mark.django_db

WORDS = ["panne", "retard", "free", "orange", "wifi", "merci", "#fibre", "@free"]
SENTIMENTS = ["", "negative", "neutral", "positive"]
REASONS = ["", "delay", "outage", "billing"]

posts = st.lists(
    st.tuples(
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=5),
        st.floats(min_value=0, max_value=600),
        st.sampled_from(["ana", "bo", "cy"]),
    ),
    min_size=1,
    max_size=25,
)
reenrichments = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=24),
        st.sampled_from(SENTIMENTS),
        st.sampled_from(REASONS),
        st.sampled_from(["fr", "en", "fr-CA"]),
    ),
    max_size=10,
)


def volume_recount(workspace_id):
    return Counter(
        (m.query_id, bucket_of(m.created_at), m.network, m.language, m.sentiment, m.reason)
        for m in Mention.objects.in_workspace(workspace_id)
    )


def volume_rollups(workspace_id):
    return Counter(
        {
            (r.query_id, r.bucket.astimezone(UTC), r.network, r.language, r.sentiment, r.reason): (
                r.count
            )
            for r in MentionRollup.objects.in_workspace(workspace_id)
            if r.count
        }
    )


def author_recount(workspace_id):
    return Counter(
        (m.query_id, day_of(m.created_at), m.post.author_id)
        for m in Mention.objects.in_workspace(workspace_id).select_related("post")
    )


def author_rollups(workspace_id):
    return Counter(
        {
            (r.query_id, r.bucket.astimezone(UTC), r.author_id): r.count
            for r in AuthorRollup.objects.in_workspace(workspace_id)
            if r.count
        }
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(posts, min_size=1, max_size=3), changes=reenrichments)
def test_rollups_equal_a_recount_from_mentions(workspace, owner, batches, changes):
    with transaction.atomic():
        matching.forget_workspace(workspace.pk)
        do_create_query(owner, workspace, name="Outage", text="panne OR retard")
        do_create_query(owner, workspace, name="Free", text="free OR @free OR #fibre")
        for batch_number, batch in enumerate(batches):
            items = [
                make_item(f"{batch_number}-{i}", " ".join(words), minutes=minutes, handle=handle)
                for i, (words, minutes, handle) in enumerate(batch)
            ]
            do_ingest_items(workspace.pk, "sandbox", items)
            # A redelivered batch changes nothing.
            do_ingest_items(workspace.pk, "sandbox", items)
        stored = list(Post.objects.in_workspace(workspace.pk).order_by("pk"))
        for index, sentiment, reason, lang in changes:
            if index < len(stored):
                Post.objects.filter(pk=stored[index].pk).update(
                    sentiment=sentiment, reason=reason, lang=lang
                )
        do_correct_rollups_for_reenriched(workspace.pk, [post.pk for post in stored])
        assert volume_rollups(workspace.pk) == volume_recount(workspace.pk)
        assert author_rollups(workspace.pk) == author_recount(workspace.pk)
        transaction.set_rollback(True)


def test_terms_leave_out_stop_words_handles_and_the_query_itself():
    assert terms_of("Merci @free, la #fibre est en panne depuis lundi", frozenset({"panne"})) == [
        "#fibre",
        "lundi",
    ]


def test_buckets_are_five_minutes_aligned():
    moment = datetime(2024, 8, 19, 13, 27, 41, tzinfo=UTC)
    assert bucket_of(moment) == datetime(2024, 8, 19, 13, 25, tzinfo=UTC)
