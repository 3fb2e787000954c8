"""A draft's link preview is read once from the page (a real local server) and shown per account."""

import pytest
from django.urls import reverse

from relais.connectors.tests.test_linkpreview import private_allowed, site  # noqa: F401
from relais.publishing import actions
from relais.publishing.models import LinkPreview

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_allowed")]


def test_the_draft_page_reads_the_preview_once_and_shows_it_escaped(
    client,
    owner,
    workspace,
    brand_account,
    site,  # noqa: F811
):
    text = f"Our spring sale {site}/page and {site}/hostile"
    draft = actions.do_create_draft(owner, workspace.pk, text, [brand_account.pk])
    client.force_login(owner)
    page_url = reverse("publishing_draft", args=[workspace.slug]) + f"?id={draft.pk}"
    first = client.get(page_url).content.decode()
    assert "previews-loading" in first
    fetched = client.post(
        reverse("publishing_fetch_previews", args=[workspace.slug]), {"id": draft.pk}
    ).content.decode()
    assert "Spring sale &amp; more" in fetched
    assert f'src="{site}/img/x1.jpg"' in fetched
    assert "<script>alert" not in fetched  # the hostile page's title is shown as text
    assert "previews-loading" not in fetched
    assert LinkPreview.objects.filter(workspace=workspace).count() == 2
    again = client.get(page_url).content.decode()
    assert "previews-loading" not in again
    assert again.count('class="pub-preview"') == 2


def test_an_unreachable_page_is_remembered_without_a_card(client, owner, workspace, brand_account):
    draft = actions.do_create_draft(
        owner, workspace.pk, "See http://127.0.0.1:9/nothing", [brand_account.pk]
    )
    client.force_login(owner)
    client.post(reverse("publishing_fetch_previews", args=[workspace.slug]), {"id": draft.pk})
    preview = LinkPreview.objects.get()
    assert preview.error
    page = client.get(reverse("publishing_draft", args=[workspace.slug]) + f"?id={draft.pk}")
    assert b'class="pub-preview"' not in page.content
    assert b"previews-loading" not in page.content
