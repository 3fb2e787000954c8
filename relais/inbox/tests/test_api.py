import pytest

from relais.accounts.actions import do_create_api_token
from relais.conftest import make_item
from relais.inbox import actions
from relais.inbox.models import Contact, Conversation
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, workspace, agent, brand_account):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [make_item("free:1", "@free panne"), make_item("free:2", "@free b", handle="camille2")],
    )
    _token, secret = do_create_api_token(workspace, agent, "tests")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    def call(method, path, body=None):
        return getattr(client, method)(
            "/api/v1" + path, body, content_type="application/json", **auth
        )

    return call


def test_agents_work_a_conversation_through_the_api(api, agent, owner):
    conversation = Conversation.objects.get(thread_key="free:1")
    base = f"/conversations/{conversation.pk}"
    listed = api("get", "/conversations?sort=priority").json()
    assert listed["count"] == 2
    taken = api("post", base + "/assign", {"assignee_id": agent.pk, "expected_assignee_id": None})
    assert taken.json()["assignee"] == "alex"
    late = api("post", base + "/assign", {"assignee_id": agent.pk, "expected_assignee_id": None})
    assert late.status_code == 200  # already hers: nothing to refuse
    assert api("post", base + "/notes", {"text": f"@{owner.username} vu"}).status_code == 201
    assert api("put", base + "/tags", {"tags": ["Fibre"]}).json()["tags"] == ["fibre"]
    sent = api("post", base + "/reply", {"text": "On regarde", "idempotency_key": "k1"})
    assert sent.status_code == 201
    assert sent.json()["direction"] == "outbound"
    resolved = api("post", base + "/status", {"status": "resolved", "expected": "open"})
    assert resolved.json()["status"] == "resolved"
    stale = api("post", base + "/status", {"status": "pending", "expected": "open"})
    assert stale.status_code == 409
    detail = api("get", base).json()
    assert [m["direction"] for m in detail["messages"]] == ["inbound", "outbound"]
    assert detail["notes"][0]["mentions"] == [owner.username]


def test_a_reply_waiting_for_approval_is_accepted_with_202(api, owner, workspace):
    actions.do_set_approval_required(owner, workspace, True)
    conversation = Conversation.objects.get(thread_key="free:1")
    response = api(
        "post", f"/conversations/{conversation.pk}/reply", {"text": "Ok", "idempotency_key": "k"}
    )
    assert response.status_code == 202
    assert response.json()["state"] == "awaiting_approval"


def test_contacts_are_read_updated_and_merged(api):
    keep = Contact.objects.get(authors__handle="camille")
    other = Contact.objects.get(authors__handle="camille2")
    updated = api("patch", f"/contacts/{keep.pk}", {"attributes": {"plan": "Pop"}}).json()
    assert updated["attributes"] == {"plan": "Pop"}
    merged = api("post", f"/contacts/{keep.pk}/merge", {"merged_id": other.pk}).json()
    assert {i["handle"] for i in merged["identities"]} == {"camille", "camille2"}
    assert len(merged["conversation_ids"]) == 2
    assert api("get", f"/contacts/{other.pk}").status_code == 404
    assert api("get", "/contacts?q=cam").json()["count"] == 1


def test_the_openapi_document_lists_the_inbox(api):
    paths = api("get", "/openapi.json").json()["paths"]
    assert "/api/v1/conversations/{conversation_id}/assign" in paths
    assert "/api/v1/contacts/{contact_id}/merge" in paths


def test_admins_manage_webhooks_through_the_api(client, workspace, owner, agent, settings):
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}

    def call(user, method, path, body=None):
        _token, secret = do_create_api_token(workspace, user, "tests")
        return getattr(client, method)(
            "/api/v1" + path,
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )

    body = {"url": "http://127.0.0.1:9/crm", "events": ["conversation.status_changed"]}
    assert call(agent, "post", "/webhooks", body).status_code == 403
    assert call(agent, "get", "/webhooks").status_code == 403
    created = call(owner, "post", "/webhooks", body)
    assert created.status_code == 201
    hook = created.json()
    assert hook["secret"].startswith("whsec_")
    listed = call(owner, "get", "/webhooks").json()
    assert [h["url"] for h in listed] == [body["url"]]
    assert "secret" not in listed[0]
    refused = call(owner, "patch", f"/webhooks/{hook['id']}", {"events": ["nope"]})
    assert refused.status_code == 400
    assert call(owner, "post", f"/webhooks/{hook['id']}/discard").status_code == 400  # active
    paused = call(owner, "patch", f"/webhooks/{hook['id']}", {"active": False}).json()
    assert paused["active"] is False
    assert call(agent, "post", f"/webhooks/{hook['id']}/discard").status_code == 403
    assert call(owner, "post", f"/webhooks/{hook['id']}/discard").json()["active"] is False
    assert call(owner, "get", f"/webhooks/{hook['id']}/deliveries").json() == []
    assert call(owner, "delete", f"/webhooks/{hook['id']}").status_code == 204
    assert call(owner, "get", f"/webhooks/{hook['id']}/deliveries").status_code == 404
