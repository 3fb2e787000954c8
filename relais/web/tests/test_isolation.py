"""A member of workspace A gets 404 for every page and API object of workspace B."""

import pytest
from django.urls import get_resolver, reverse

from relais.accounts.actions import do_create_api_token
from relais.conftest import make_item
from relais.inbox.models import Conversation
from relais.pipeline.actions import do_ingest_items
from relais.sandbox.actions import do_connect_sandbox_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def other(make_workspace, make_user):
    owner = make_user("bob")
    workspace = make_workspace("Other brand", owner)
    do_connect_sandbox_account(workspace, "free", "Freebox", [], actor=owner)
    do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@Freebox secret")])
    return workspace, Conversation.objects.in_workspace(workspace.pk).get()


def workspace_urls(slug, conversation_id):
    """Every page under /w/<slug>/, found from the URL configuration itself."""
    urls = []

    def walk(patterns, route):
        for pattern in patterns:
            full = route + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, full)
            elif "workspace_slug" in full:
                kwargs = {"workspace_slug": slug}
                if "conversation_id" in full:
                    kwargs["conversation_id"] = conversation_id
                urls.append(reverse(pattern.name, kwargs=kwargs))

    walk(get_resolver().url_patterns, "")
    return urls


def test_every_page_of_another_workspace_is_404(client, agent, workspace, other):
    other_workspace, conversation = other
    client.force_login(agent)
    urls = workspace_urls(other_workspace.slug, conversation.pk)
    assert len(urls) >= 12
    for url in urls:
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"text": "x", "status": "resolved"}).status_code in {404, 405}, url


def test_a_conversation_of_another_workspace_is_404_even_under_ones_own(
    client, agent, workspace, other
):
    _other_workspace, conversation = other
    client.force_login(agent)
    for name in ("conversation", "conversation_thread"):
        assert client.get(reverse(name, args=[workspace.slug, conversation.pk])).status_code == 404
    response = client.post(reverse("reply", args=[workspace.slug, conversation.pk]), {"text": "x"})
    assert response.status_code == 404


def test_every_api_object_of_another_workspace_is_404(client, agent, workspace, other):
    _other_workspace, conversation = other
    _token, secret = do_create_api_token(workspace, agent, "tests")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get(f"/api/v1/conversations/{conversation.pk}", **auth).status_code == 404
    response = client.post(
        f"/api/v1/conversations/{conversation.pk}/reply",
        {"text": "x", "idempotency_key": "k"},
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 404
    assert client.get("/api/v1/conversations", **auth).json()["items"] == []
    assert client.get("/api/v1/posts", **auth).json()["items"] == []
