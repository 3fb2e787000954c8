import pytest
from django.urls import reverse

from relais.conftest import make_item
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import Post

pytestmark = pytest.mark.django_db


@pytest.fixture
def stream_url(workspace, brand_account):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            make_item("free:1", "@free toujours pas de connexion, c'est inadmissible"),
            make_item("free:2", "@free thank you, the router works perfectly now", minutes=1),
        ],
    )
    return reverse("stream", args=[workspace.slug])


def test_posts_show_their_sentiment_and_intent(agent_client, stream_url, workspace):
    page = agent_client.get(stream_url).content.decode()

    for post in Post.objects.in_workspace(workspace.pk):
        assert f'class="badge sentiment-{post.sentiment}"' in page
        assert post.get_intent_display() in page


def test_the_stream_filters_by_language_and_keeps_the_filter_when_live(agent_client, stream_url):
    page = agent_client.get(stream_url, {"lang": "en"}).content.decode()

    assert 'data-post="free:2"' in page
    assert 'data-post="free:1"' not in page
    assert "?lang=en&amp;" in page  # the live refresh asks for the same filter


def test_unknown_filter_values_are_ignored_not_errors(agent_client, stream_url):
    response = agent_client.get(stream_url, {"sentiment": "furious", "lang": "<x>"})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-post="free:1"' in page
    assert 'data-post="free:2"' in page
