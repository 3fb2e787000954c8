import pytest

from relais.accounts.actions import do_create_api_token
from relais.conftest import make_item
from relais.listening.actions import do_create_query
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def auth(workspace, owner):
    _token, secret = do_create_api_token(workspace, owner, "tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_query_is_created_and_its_mentions_listed(client, workspace, auth):
    response = client.post(
        "/api/v1/listening/queries",
        {"name": "Delays", "text": "retard*", "tag": "topic"},
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 201
    do_ingest_items(
        workspace.pk, "sandbox", [make_item("1", "Retardé encore"), make_item("2", "ok")]
    )
    mentions = client.get("/api/v1/listening/mentions", {"q": "retard"}, **auth).json()["items"]
    assert [m["text"] for m in mentions] == ["Retardé encore"]
    assert client.get("/api/v1/listening/queries", **auth).json()[0]["name"] == "Delays"


def test_a_broken_query_is_refused_with_its_position(client, auth):
    response = client.post(
        "/api/v1/listening/queries",
        {"name": "Broken", "text": "free OR", "tag": "brand"},
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 400
    assert response.json()["position"] == 5


@pytest.mark.usefixtures("workspace")
def test_another_workspace_sees_nothing(client, make_workspace, make_user, auth):
    other_owner = make_user("bob")
    other = make_workspace("Other", other_owner)
    do_create_query(other_owner, other, name="Secret", text="secret")
    do_ingest_items(other.pk, "sandbox", [make_item("1", "secret plan")])
    assert client.get("/api/v1/listening/mentions", **auth).json()["items"] == []
    assert client.get("/api/v1/listening/queries", **auth).json() == []
