"""The sandbox network: real public posts replayed live, and an ear for the brand's replies.

Its account settings name the dataset (``{"dataset": "free"}``) and the replay's ``speed`` and
``max_gap``. ``fetch`` returns the rows that are due on the compressed clock plus the posts the
brand sent since the last fetch; sending is idempotent by key, as a real network's should be.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from relais.connectors.base import (
    AccountContext,
    Capability,
    Connector,
    FetchPage,
    InboundAuthor,
    InboundItem,
    Limits,
    OutboundPost,
    PostKind,
    PublishedRef,
)
from relais.core import clock
from relais.sandbox import server
from relais.sandbox.dataset import SandboxRow
from relais.sandbox.replay import ReplayCursor, due_rows

MENTION = re.compile(r"(?<![\w@])@(\w{1,30})")


class SandboxConnector(Connector):
    key: ClassVar[str] = "sandbox"
    display_name: ClassVar[str] = "Sandbox"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.LISTEN,
            Capability.INBOX,
            Capability.REPLY,
            Capability.PRIVATE_MESSAGES,
            Capability.PUBLISH,
        }
    )
    limits: ClassVar[Limits] = Limits(max_text_length=280)

    def __init__(self, account: AccountContext) -> None:
        super().__init__(account)
        self.dataset = str(account.settings.get("dataset", ""))

    def fetch(self, cursor: dict[str, Any] | None, *, limit: int = 500) -> FetchPage:
        loaded = server.dataset_rows(self.dataset)
        now = clock.now()
        due, next_cursor = due_rows(
            loaded.rows,
            ReplayCursor.from_json(cursor),
            now,
            speed=float(self.account.settings.get("speed", 60.0)),
            max_gap=float(self.account.settings.get("max_gap", 20.0)),
            limit=limit,
        )
        items = [_item_from_row(d.row, d.due_at) for d in due]
        items += [
            self._item_from_sent(sent)
            for sent in server.take_undelivered(self.account.workspace_id, self.dataset, limit)
        ]
        has_more = next_cursor.position < len(loaded.rows) and len(due) == limit
        return FetchPage(items, next_cursor.to_json(), has_more=has_more, skipped=loaded.skipped)

    def own_author(self) -> InboundAuthor:
        handle = self.account.handle
        return InboundAuthor(remote_id=f"{self.dataset}:{handle}", handle=handle, name=handle)

    def reply(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        return self._send(post, PostKind.REPLY, idempotency_key)

    def send_private_message(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        return self._send(post, PostKind.PRIVATE_MESSAGE, idempotency_key)

    def publish(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        return self._send(post, PostKind.POST, idempotency_key)

    def _send(self, post: OutboundPost, kind: PostKind, idempotency_key: str) -> PublishedRef:
        sent = server.accept_outbound(
            workspace_id=self.account.workspace_id,
            dataset=self.dataset,
            author_handle=self.account.handle,
            kind=kind.value,
            text=post.text,
            in_reply_to=post.in_reply_to or "",
            recipient=post.recipient or "",
            idempotency_key=idempotency_key,
        )
        return PublishedRef(remote_id=sent.remote_id, created_at=sent.created_at)

    def _item_from_sent(self, sent: Any) -> InboundItem:
        return InboundItem(
            remote_id=sent.remote_id,
            kind=PostKind(sent.kind),
            author=self.own_author(),
            text=sent.text,
            created_at=sent.created_at,
            in_reply_to=sent.in_reply_to or None,
            mentions=tuple(MENTION.findall(sent.text)),
            raw={"sandbox": "sent", "recipient": sent.recipient},
        )


def _item_from_row(row: SandboxRow, due_at: Any) -> InboundItem:
    """A dataset row as the network delivers it now; its historical time is kept in ``raw``."""
    return InboundItem(
        remote_id=row.id,
        kind=PostKind(row.kind),
        author=InboundAuthor(
            remote_id=row.author.id,
            handle=row.author.handle,
            name=row.author.name,
            followers=row.author.followers,
        ),
        text=row.text,
        created_at=due_at,
        in_reply_to=row.in_reply_to,
        mentions=row.mentions,
        lang=row.lang,
        metrics=dict(row.metrics),
        raw={
            "sandbox": "replay",
            "original_time": row.time.isoformat(),
            "labels": dict(row.labels),
        },
    )
