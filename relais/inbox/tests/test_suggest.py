import pytest

from relais.conftest import make_item
from relais.inbox.models import Conversation
from relais.inbox.suggest import suggest_for, template_of
from relais.inbox.suggest_quality import evaluate
from relais.pipeline.actions import do_ingest_items


def test_a_past_reply_becomes_a_template():
    reply = "@lea_martin42 Bonjour Léa, pouvez-vous redémarrer la Freebox ? ^MB"
    assert template_of(reply, "Léa M.") == (
        "Bonjour {customer_name}, pouvez-vous redémarrer la Freebox ? ^{agent_name}"
    )


def test_on_held_out_free_threads_suggestions_beat_the_most_frequent_replies():
    quality = evaluate("free")
    assert quality.questions > 500
    assert quality.close_at_3 > quality.baseline_close_at_3
    assert quality.hit_at_3 > 0.05  # speed is benchmarks/inbox.py's (suggest_p95_ms), not a test's


@pytest.mark.django_db
def test_a_conversation_gets_the_brands_reply_to_a_similar_message(workspace, brand_account, agent):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            make_item("free:1", "@free ma fibre est coupée depuis hier soir", handle="lea"),
            make_item(
                "free:2",
                "@lea Bonjour Lea, nous vérifions la ligne fibre, merci de patienter. ^MB",
                handle="free",
                minutes=5,
                in_reply_to="free:1",
            ),
            make_item("free:3", "@free la box redémarre sans cesse", handle="tom", minutes=6),
            make_item(
                "free:4",
                "@tom Avez-vous essayé de la débrancher 30 s ? ^MB",
                handle="free",
                minutes=7,
                in_reply_to="free:3",
            ),
            make_item("free:5", "@free plus de fibre depuis ce matin", minutes=9),
        ],
    )
    conversation = Conversation.objects.get(thread_key="free:5")
    suggestions = suggest_for(conversation, agent)
    assert suggestions[0] == (
        "Bonjour Camille, nous vérifions la ligne fibre, merci de patienter. ^Alex"
    )
