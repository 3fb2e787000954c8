import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from relais import nlp
from relais.accounts.models import AuditEntry
from relais.conftest import make_item
from relais.listening.actions import do_correct_rollups_for_reenriched, do_create_query
from relais.listening.models import Mention, MentionRollup
from relais.nlp.keywords import INTENTS, REASONS
from relais.nlp.train import SENTIMENTS
from relais.pipeline.actions import do_ingest_items, do_reenrich_posts
from relais.pipeline.models import Intent, Post, Reason, Sentiment

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


def test_reenrichment_redoes_posts_of_older_models_once(workspace, brand_account):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [make_item(f"free:{n}", f"@free panne numéro {n}, rien ne marche") for n in range(5)],
    )
    posts = Post.objects.in_workspace(workspace.pk)
    posts.filter(remote_id__in=["free:1", "free:3"]).update(enriched_by="older", sentiment="")

    assert do_reenrich_posts(workspace.pk, chunk=1) == 2
    assert set(posts.values_list("enriched_by", flat=True)) == {nlp.MODEL_VERSION}
    assert "" not in set(posts.values_list("sentiment", flat=True))
    assert do_reenrich_posts(workspace.pk) == 0
    assert do_reenrich_posts(workspace.pk, everything=True) == 5
    assert AuditEntry.objects.filter(workspace=workspace, action="posts.reenriched").count() == 2


def test_the_reenrich_command_names_the_model(workspace, brand_account):
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free merci !")])
    out = io.StringIO()

    call_command("reenrich", "--workspace", workspace.slug, "--all", stdout=out)

    assert out.getvalue().strip() == f"1 posts re-enriched with {nlp.MODEL_VERSION}"
    with pytest.raises(CommandError, match="no workspace"):
        call_command("reenrich", "--workspace", "nope")


def test_the_relais_command_runs_the_nlp_tools():
    relais = Path(sys.executable).with_name("relais")
    done = subprocess.run(
        [str(relais), "nlp", "enrich"],
        input='{"text": "@free toujours pas de connexion depuis hier"}\nnot json\n',
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    enriched = json.loads(done.stdout.splitlines()[0])
    assert enriched["lang"] == "fr"
    assert enriched["sentiment"] in {"negative", "neutral", "positive"}
    assert "line 2" in done.stderr


def test_the_stored_labels_are_those_the_models_produce():
    assert set(Sentiment.values) == set(SENTIMENTS)
    assert set(Intent.values) == set(INTENTS)
    assert set(Reason.values) == set(REASONS)


def test_reenrichment_moves_listening_counts_with_the_new_sentiment(
    workspace, owner, brand_account
):
    do_create_query(owner, workspace, name="Free", text="@free")
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free merci beaucoup !")])
    post = Post.objects.in_workspace(workspace.pk).get()
    before = post.sentiment
    wrong = "negative" if before != "negative" else "positive"
    Post.objects.filter(pk=post.pk).update(sentiment=wrong, enriched_by="older")
    do_correct_rollups_for_reenriched(workspace.pk, [post.pk])
    assert _rollup_sentiments(workspace) == {wrong: 1}

    do_reenrich_posts(workspace.pk)

    assert _rollup_sentiments(workspace) == {before: 1}
    assert Mention.objects.in_workspace(workspace.pk).get().sentiment == before


def _rollup_sentiments(workspace):
    counts = (
        MentionRollup.objects.in_workspace(workspace.pk)
        .values_list("sentiment")
        .annotate(total=Sum("count"))
    )
    return {sentiment: total for sentiment, total in counts if total}
