"""Inbound items as JSON (for batches kept in the database and for task arguments) and back."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from relais.connectors.base import InboundAuthor, InboundItem, PostKind

MAX_TEXT_LENGTH = 40_000  # far above any network's limit; longer text is cut, never refused


def item_to_json(item: InboundItem) -> dict[str, Any]:
    data = asdict(item)
    data["kind"] = item.kind.value
    data["created_at"] = item.created_at.isoformat()
    data["mentions"] = list(item.mentions)
    return data


def item_from_json(data: dict[str, Any]) -> InboundItem:
    author = data["author"]
    return InboundItem(
        remote_id=str(data["remote_id"]),
        kind=PostKind(data["kind"]),
        author=InboundAuthor(
            remote_id=str(author["remote_id"]),
            handle=str(author["handle"]),
            name=str(author.get("name") or ""),
            followers=author.get("followers"),
        ),
        text=str(data["text"])[:MAX_TEXT_LENGTH],
        created_at=datetime.fromisoformat(data["created_at"]),
        in_reply_to=data.get("in_reply_to") or None,
        mentions=tuple(data.get("mentions") or ()),
        lang=data.get("lang") or None,
        metrics=dict(data.get("metrics") or {}),
        raw=dict(data.get("raw") or {}),
    )
