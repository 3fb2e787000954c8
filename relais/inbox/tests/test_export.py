import csv
import io

import pytest
from django.urls import reverse

from relais.accounts.actions import do_add_member
from relais.accounts.models import AuditEntry
from relais.conftest import make_item
from relais.core.errors import PermissionDeniedError
from relais.inbox.actions import do_export_contacts
from relais.inbox.export import spreadsheet_safe
from relais.inbox.models import Contact
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers(workspace, brand_account):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            make_item("free:1", "@free panne", handle="camille", followers=120),
            make_item("free:2", "@free =HYPERLINK(1)", handle="=cmd|calc", minutes=1),
        ],
    )
    return Contact.objects.in_workspace(workspace.pk)


def read(response):
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_a_manager_exports_every_contact_with_its_identities(client, workspace, owner, customers):
    client.force_login(owner)

    response = client.get(reverse("contacts_csv", args=[workspace.slug]))

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = read(response)
    assert len(rows) == customers.count() == 2
    camille = next(r for r in rows if r["identities"] == "sandbox:camille")
    assert camille["followers"] == "120"
    assert camille["conversations"] == "1"
    assert AuditEntry.objects.filter(workspace=workspace, action="contacts.exported").count() == 1


def test_hostile_names_cannot_become_spreadsheet_formulas(client, workspace, owner, customers):
    client.force_login(owner)

    rows = read(client.get(reverse("contacts_csv", args=[workspace.slug])))

    hostile = next(r for r in rows if "cmd" in r["identities"])
    assert hostile["name"].startswith("'=")
    assert spreadsheet_safe("@handle") == "'@handle"
    assert spreadsheet_safe("Camille") == "Camille"


def test_agents_cannot_export_people(client, workspace, agent, customers):
    client.force_login(agent)

    assert client.get(reverse("contacts_csv", args=[workspace.slug])).status_code == 404
    with pytest.raises(PermissionDeniedError):
        do_export_contacts(agent, workspace)


@pytest.mark.usefixtures("customers")
def test_the_link_shows_for_managers_only(client, workspace, owner, agent, make_user):
    manager = make_user("morgan")
    do_add_member(workspace, manager, "manager", actor=owner)
    url = reverse("contacts", args=[workspace.slug])
    export = reverse("contacts_csv", args=[workspace.slug])

    client.force_login(manager)
    assert export in client.get(url).content.decode()
    client.force_login(agent)
    assert export not in client.get(url).content.decode()
