from collections import Counter

import pytest

from relais.conftest import make_item
from relais.core.errors import PermissionDeniedError, ValidationFailedError
from relais.listening.actions import (
    QueryRefusedError,
    check_query,
    do_archive_query,
    do_correct_rollups_for_reenriched,
    do_create_query,
    do_match_posts,
    do_update_query,
)
from relais.listening.models import AuthorRollup, ListeningQuery, Mention, MentionRollup
from relais.listening.rollups import bucket_of
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import Post

pytestmark = pytest.mark.django_db


def recount(workspace_id):
    """Rollup keys recomputed from the mentions themselves."""
    return Counter(
        (m.query_id, bucket_of(m.created_at), m.network, m.language, m.sentiment, m.reason)
        for m in Mention.objects.in_workspace(workspace_id)
    )


def rollup_counts(workspace_id):
    return Counter(
        {
            (r.query_id, r.bucket, r.network, r.language, r.sentiment, r.reason): r.count
            for r in MentionRollup.objects.in_workspace(workspace_id)
            if r.count
        }
    )


def test_a_query_that_does_not_parse_is_refused_with_its_position():
    with pytest.raises(QueryRefusedError) as refused:
        check_query('"air france" AND (retard')
    assert refused.value.position == 17
    assert "never closed" in refused.value.message


def test_a_query_matching_everything_is_refused():
    with pytest.raises(QueryRefusedError) as refused:
        check_query("lang:fr NOT job*")
    assert refused.value.position == 0


def test_only_managers_and_above_write_queries(workspace, agent):
    with pytest.raises(PermissionDeniedError):
        do_create_query(agent, workspace, name="Brand", text="free")


def test_a_query_needs_a_name(workspace, owner):
    with pytest.raises(ValidationFailedError):
        do_create_query(owner, workspace, name=" ", text="free")


def test_new_posts_become_mentions_with_rollups(
    workspace, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        brand = do_create_query(owner, workspace, name="Free", text="free OR freebox")
        outage = do_create_query(owner, workspace, name="Outage", text="panne*", tag="topic")
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            make_item("1", "Panne chez Free depuis ce matin", minutes=1),
            make_item("2", "la freebox redémarre en boucle, pannes partout", minutes=2),
            make_item("3", "rien à voir", minutes=3),
        ],
    )
    assert set(Mention.objects.filter(query=brand).values_list("post__remote_id", flat=True)) == {
        "1",
        "2",
    }
    assert Mention.objects.filter(query=outage).count() == 2
    assert rollup_counts(workspace.pk) == recount(workspace.pk)
    assert sum(r.count for r in AuthorRollup.objects.filter(query=brand)) == 2


def test_matching_twice_writes_and_counts_once(workspace, owner):
    do_create_query(owner, workspace, name="Free", text="free")
    do_ingest_items(workspace.pk, "sandbox", [make_item("1", "free wifi")])
    posts = list(Post.objects.in_workspace(workspace.pk).select_related("author"))
    assert do_match_posts(workspace.pk, posts) == 0
    assert Mention.objects.count() == 1
    assert sum(rollup_counts(workspace.pk).values()) == 1


def test_a_new_query_is_backfilled_over_stored_posts(
    workspace, owner, django_capture_on_commit_callbacks
):
    do_ingest_items(workspace.pk, "sandbox", [make_item(str(i), f"retard {i}") for i in range(5)])
    with django_capture_on_commit_callbacks(execute=True):
        query = do_create_query(owner, workspace, name="Delays", text="retard")
    assert Mention.objects.filter(query=query).count() == 5
    assert rollup_counts(workspace.pk) == recount(workspace.pk)


def test_editing_the_text_rematches_and_archiving_stops_matching(
    workspace, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        query = do_create_query(owner, workspace, name="Q", text="retard")
    do_ingest_items(workspace.pk, "sandbox", [make_item("1", "retard"), make_item("2", "panne")])
    with django_capture_on_commit_callbacks(execute=True):
        do_update_query(owner, query, name="Q", text="panne", tag="topic")
    assert list(Mention.objects.values_list("post__remote_id", flat=True)) == ["2"]
    assert rollup_counts(workspace.pk) == recount(workspace.pk)
    do_archive_query(owner, query)
    do_ingest_items(workspace.pk, "sandbox", [make_item("3", "panne encore")])
    assert Mention.objects.count() == 1
    assert ListeningQuery.objects.get().active is False
    with django_capture_on_commit_callbacks(execute=True):
        do_update_query(owner, query, name="Q", text="panne", tag="topic", active=True)
    assert Mention.objects.count() == 2  # caught up on what arrived while archived
    assert rollup_counts(workspace.pk) == recount(workspace.pk)


def test_reenrichment_moves_rollup_counts(workspace, owner):
    do_create_query(owner, workspace, name="Q", text="retard")
    do_ingest_items(workspace.pk, "sandbox", [make_item("1", "retard"), make_item("2", "retard")])
    Post.objects.filter(remote_id="1").update(sentiment="negative", reason="delay", lang="fr")
    ids = list(Post.objects.values_list("pk", flat=True))
    assert do_correct_rollups_for_reenriched(workspace.pk, ids) == 1
    assert do_correct_rollups_for_reenriched(workspace.pk, ids) == 0
    assert rollup_counts(workspace.pk) == recount(workspace.pk)
    assert Mention.objects.get(post__remote_id="1").sentiment == "negative"
