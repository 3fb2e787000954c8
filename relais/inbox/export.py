"""Contacts as CSV, for an outside CRM or a spreadsheet.

Names, handles and tags come from strangers on social networks: a cell that starts like a
formula (=, +, -, @, tab, carriage return) is prefixed with a quote so a spreadsheet shows it
as text instead of running it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import Count, Prefetch

from relais.inbox.models import Contact
from relais.pipeline.models import Author

HEADER = ["contact_id", "name", "identities", "followers", "tags", "attributes", "conversations",
          "created_at"]  # fmt: skip
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BY_NETWORK_AND_HANDLE = Author.objects.order_by("network", "handle")


def spreadsheet_safe(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def contact_rows(workspace_id: int) -> Iterator[list[str]]:
    """The header, then one row per contact (identities as ``network:handle``, ``;``-joined)."""
    yield HEADER
    contacts = (
        Contact.objects.in_workspace(workspace_id)
        .annotate(conversation_count=Count("authors__conversations", distinct=True))
        .prefetch_related(
            Prefetch("authors", queryset=Author.objects.order_by("network", "handle"))
        )
        .order_by("pk")
    )
    for contact in contacts.iterator(chunk_size=500):
        authors = list(contact.authors.all())
        cells = [
            str(contact.pk),
            contact.display_name,
            ";".join(f"{a.network}:{a.handle}" for a in authors),
            str(max((a.followers or 0 for a in authors), default=0)),
            ";".join(str(tag) for tag in contact.tags),
            json.dumps(contact.attributes, ensure_ascii=False, sort_keys=True),
            str(contact.conversation_count),
            contact.created_at.isoformat(),
        ]
        yield [spreadsheet_safe(cell) for cell in cells]
