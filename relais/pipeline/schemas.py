"""How posts and their authors appear in the API (the posts endpoints and conversations)."""

from datetime import datetime
from typing import Any

from ninja import Schema


class AuthorOut(Schema):
    handle: str
    name: str
    followers: int | None


class PostOut(Schema):
    id: int
    network: str
    remote_id: str
    kind: str
    direction: str
    author: AuthorOut
    text: str
    lang: str
    created_at: datetime
    in_reply_to_remote_id: str
    thread_root_remote_id: str
    metrics: dict[str, Any]
    sentiment: str
    sentiment_score: float | None
    intent: str
    reason: str
    entities: dict[str, Any]
    enriched_by: str
