import pytest

from relais import nlp
from relais.conftest import make_item
from relais.nlp.keywords import INTENTS
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import Post

pytestmark = pytest.mark.django_db


def test_new_posts_are_stored_enriched_by_the_nlp_models(workspace, brand_account):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            make_item("free:1", "@free ma box ne marche plus depuis trois jours, inadmissible"),
            make_item("free:2", "@free thank you so much, the new router works perfectly"),
        ],
    )

    french, english = Post.objects.in_workspace(workspace.pk).order_by("remote_id")
    assert (french.lang, english.lang) == ("fr", "en")
    assert {french.enriched_by, english.enriched_by} == {nlp.MODEL_VERSION}
    for post in (french, english):
        assert post.sentiment in {"negative", "neutral", "positive"}
        assert post.sentiment_score is not None
        assert -1.0 <= post.sentiment_score <= 1.0
        assert post.intent in INTENTS
        assert post.entities["handles"] == ["free"]
    assert english.sentiment == "positive"


def test_a_redelivered_post_keeps_its_enrichment(workspace, brand_account):
    item = make_item("free:1", "@free toujours pas de connexion")
    do_ingest_items(workspace.pk, "sandbox", [item])
    Post.objects.in_workspace(workspace.pk).update(sentiment="negative", enriched_by="older-model")

    do_ingest_items(workspace.pk, "sandbox", [item])

    post = Post.objects.in_workspace(workspace.pk).get()
    assert (post.sentiment, post.enriched_by) == ("negative", "older-model")
