import pytest

from relais.core import clock
from relais.listening.actions import do_create_query
from relais.listening.matcher import MatchablePost
from relais.listening.matching import compiled_queries
from relais.listening.models import ListeningQuery

pytestmark = pytest.mark.django_db


def test_the_cached_matcher_is_reused_until_a_query_changes_anywhere(workspace, owner):
    assert compiled_queries(workspace.pk) is None
    query = do_create_query(owner, workspace, name="Q", text="panne")
    first = compiled_queries(workspace.pk)
    assert first is not None
    assert compiled_queries(workspace.pk) is first
    # Another process edits the query: no message reaches this one, the fingerprint does.
    ListeningQuery.objects.filter(pk=query.pk).update(text="retard", updated_at=clock.now())
    second = compiled_queries(workspace.pk)
    assert second is not first
    assert second is not None
    assert second.matcher.match(MatchablePost("un retard")) == [query.pk]
    assert second.own_terms[query.pk] == frozenset({"retard"})
