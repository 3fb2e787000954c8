"""Refusals of the query parser speak the reader's language; the position stays a number.

The French assertions need the French catalog compiled with relais' listening strings (the
lead merges /tmp/relais_fr/listening.json into the .po; until then they fail, like
relais/core/tests/test_translations.py).
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from relais.accounts.actions import do_add_member
from relais.listening.query import QuerySyntaxError, parse_query


def refusal(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(text)
    return raised.value


def test_the_message_is_translated_when_read_not_when_parsed():
    with translation.override("en"):
        error = refusal('air "france')
    with translation.override("fr"):
        assert error.message == "ce guillemet n'est jamais fermé"
        assert str(error) == "ce guillemet n'est jamais fermé (à la position 4)"
    with translation.override("en"):
        assert str(error) == "this quote is never closed (at position 4)"


def test_the_parts_taken_from_the_query_are_kept_as_typed():
    with translation.override("fr"):
        assert refusal("air -job").message == "pour exclure un terme, écrivez NOT job"
        assert refusal("network:myspace a").message.startswith("réseau 'myspace' inconnu")
        assert refusal("a OR").message == "'OR' doit être suivi d'un terme, rien trouvé"


@pytest.mark.django_db
def test_a_french_manager_sees_the_refusal_in_french(client, workspace, owner, make_user):
    manager = make_user("camille", language="fr")
    do_add_member(workspace, manager, "manager", actor=owner)
    client.force_login(manager)
    client.cookies["django_language"] = manager.language  # what logging in sets
    answer = client.post(
        reverse("listening_queries", args=[workspace.slug]),
        {"name": "Marque", "text": '"air france" AND (retard', "tag": "brand"},
    )
    page = answer.content.decode()
    assert answer.status_code == 400
    assert "cette &#x27;(&#x27; n&#x27;est jamais fermée" in page
    assert "18" in page  # the mistake's character, counted from 1
