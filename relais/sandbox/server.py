"""The sandbox network's server side, called only by its connector.

It serves the shipped datasets as a replayed stream and keeps what brands send to it, which it
hands back on the next fetch like a real network would deliver the brand's own post.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache

from django.db import IntegrityError, transaction

from relais.core import clock
from relais.sandbox.dataset import DATASETS, DatasetLoad, load_rows
from relais.sandbox.models import SandboxOutbound


@cache
def dataset_rows(name: str) -> DatasetLoad:
    """Rows of a shipped dataset, loaded once per process."""
    if name not in DATASETS:
        raise KeyError(f"unknown sandbox dataset {name!r}")
    return load_rows(name)


def accept_outbound(
    *,
    workspace_id: int,
    dataset: str,
    author_handle: str,
    kind: str,
    text: str,
    in_reply_to: str = "",
    recipient: str = "",
    idempotency_key: str,
) -> SandboxOutbound:
    """Accept a post once per idempotency key; a retry gets the post accepted the first time."""
    existing = SandboxOutbound.objects.filter(
        workspace_id=workspace_id, idempotency_key=idempotency_key
    ).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return SandboxOutbound.objects.create(
                workspace_id=workspace_id,
                remote_id=f"{dataset}:sent-{uuid.uuid4().hex[:16]}",
                dataset=dataset,
                author_handle=author_handle,
                kind=kind,
                text=text,
                in_reply_to=in_reply_to,
                recipient=recipient,
                idempotency_key=idempotency_key,
                created_at=clock.now(),
            )
    except IntegrityError:
        # Two senders with the same key at the same moment: the first one's post is the post.
        return SandboxOutbound.objects.get(
            workspace_id=workspace_id, idempotency_key=idempotency_key
        )


def take_undelivered(workspace_id: int, dataset: str, limit: int) -> list[SandboxOutbound]:
    """Sent posts not yet delivered back; marked delivered in the caller's transaction."""
    sent = list(
        SandboxOutbound.objects.filter(
            workspace_id=workspace_id, dataset=dataset, delivered=False
        ).order_by("created_at", "pk")[:limit]
    )
    SandboxOutbound.objects.filter(pk__in=[s.pk for s in sent]).update(delivered=True)
    return sent


def sent_at(outbound: SandboxOutbound) -> datetime:
    return outbound.created_at
