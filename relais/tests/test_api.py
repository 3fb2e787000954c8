import pytest

from relais import nlp
from relais.accounts.actions import do_add_member, do_create_api_token
from relais.conftest import make_item
from relais.inbox.models import Conversation
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def auth(workspace, agent, brand_account):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [make_item("free:1", "@free panne"), make_item("free:2", "bonjour à tous", minutes=1)],
    )
    _token, secret = do_create_api_token(workspace, agent, "tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_the_api_needs_a_valid_token(client):
    assert client.get("/api/v1/posts").status_code == 401
    assert client.get("/api/v1/posts", HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_posts_are_listed_newest_first_and_filtered(client, auth):
    body = client.get("/api/v1/posts", **auth).json()
    assert [p["remote_id"] for p in body["items"]] == ["free:2", "free:1"]
    body = client.get("/api/v1/posts?q=panne", **auth).json()
    assert [p["remote_id"] for p in body["items"]] == ["free:1"]


def test_conversations_and_reply(client, auth, workspace):
    listed = client.get("/api/v1/conversations?status=new", **auth).json()["items"]
    assert len(listed) == 1
    assert listed[0]["account_handle"] == "Freebox"
    conversation_id = listed[0]["id"]
    url = f"/api/v1/conversations/{conversation_id}/reply"
    payload = {"text": "@camille On regarde.", "idempotency_key": "api-1"}
    first = client.post(url, payload, content_type="application/json", **auth)
    second = client.post(url, payload, content_type="application/json", **auth)
    assert first.status_code == second.status_code == 201
    assert first.json()["remote_id"] == second.json()["remote_id"]
    detail = client.get(f"/api/v1/conversations/{conversation_id}", **auth).json()
    assert [m["direction"] for m in detail["messages"]] == ["inbound", "outbound"]
    assert Conversation.objects.get().status == "open"


def test_an_analyst_cannot_reply(client, workspace, owner, make_user, auth):
    analyst = make_user("ana")
    do_add_member(workspace, analyst, "analyst", actor=owner)
    _token, secret = do_create_api_token(workspace, analyst, "read only")
    conversation = Conversation.objects.get()
    response = client.post(
        f"/api/v1/conversations/{conversation.pk}/reply",
        {"text": "x", "idempotency_key": "k"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 403


def test_the_openapi_document_is_served(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/conversations/{conversation_id}/reply" in schema["paths"]
    assert client.get("/api/v1/docs").status_code == 200


def test_posts_carry_their_enrichment_and_filter_on_it(client, auth):
    items = client.get("/api/v1/posts", **auth).json()["items"]
    assert {p["enriched_by"] for p in items} == {nlp.MODEL_VERSION}
    assert all(p["sentiment"] in {"negative", "neutral", "positive"} for p in items)
    assert items[0]["entities"]["handles"] == []
    assert items[1]["entities"]["handles"] == ["free"]

    french = client.get("/api/v1/posts?lang=fr", **auth).json()["items"]
    assert {p["remote_id"] for p in french} == {"free:1", "free:2"}
    intent = items[1]["intent"]
    same_intent = client.get(f"/api/v1/posts?intent={intent}", **auth).json()["items"]
    assert "free:1" in {p["remote_id"] for p in same_intent}
