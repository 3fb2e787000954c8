import pytest
from django.urls import reverse

from relais.connectors.actions import do_mark_reconnect_needed
from relais.connectors.base import CredentialsExpiredError
from relais.connectors.models import ConnectedAccount

pytestmark = pytest.mark.django_db


def test_admins_see_accounts_needing_a_reconnection_first(client, owner, workspace, brand_account):
    do_mark_reconnect_needed(brand_account, CredentialsExpiredError("app password revoked"))
    client.force_login(owner)

    page = client.get(reverse("accounts", args=[workspace.slug])).content.decode()

    assert "Reconnect needed" in page
    assert "app password revoked" in page
    assert 'name="app_password" type="password"' in page


def test_agents_cannot_open_the_accounts_page(client, agent, workspace):
    client.force_login(agent)

    assert client.get(reverse("accounts", args=[workspace.slug])).status_code == 404
    response = client.post(
        reverse("connect_bluesky", args=[workspace.slug]),
        {"handle": "brand.bsky.social", "app_password": "x"},
    )
    assert response.status_code == 404


def test_an_incomplete_form_is_shown_again_with_the_reason(client, owner, workspace):
    client.force_login(owner)

    response = client.post(
        reverse("connect_bluesky", args=[workspace.slug]),
        {"handle": "brand", "app_password": "abcd-efgh-ijkl-mnop"},
    )

    assert response.status_code == 400
    assert "Enter the full handle" in response.content.decode()
    assert 'value="brand"' in response.content.decode()
    assert "abcd-efgh" not in response.content.decode()  # a password is never sent back
    assert not ConnectedAccount.objects.filter(network="bluesky").exists()
