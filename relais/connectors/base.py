"""The one interface every network implements, and the normalized shapes that cross it.

Connectors know nothing about the database: they take an ``AccountContext`` and return plain
dataclasses. The pipeline turns ``InboundItem`` into stored posts; actions turn user intent into
``OutboundPost`` and call ``reply``/``send_private_message``/``publish``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar


class Capability(StrEnum):
    LISTEN = "listen"  # a stream of public posts beyond the account's own mentions
    INBOX = "inbox"  # mentions, replies and messages addressed to the account
    REPLY = "reply"
    PRIVATE_MESSAGES = "private_messages"
    PUBLISH = "publish"
    METRICS = "metrics"
    FOLLOWERS = "followers"
    IMAGES = "images"  # posts, replies and messages may carry ``OutboundPost.media``


class PostKind(StrEnum):
    POST = "post"
    REPLY = "reply"
    REPOST = "repost"
    QUOTE = "quote"
    PRIVATE_MESSAGE = "private_message"
    COMMENT = "comment"


@dataclass(frozen=True)
class Limits:
    max_text_length: int
    max_media: int = 0
    requests_per_minute: int | None = None


@dataclass(frozen=True)
class InboundAuthor:
    remote_id: str
    handle: str
    name: str = ""
    followers: int | None = None


@dataclass(frozen=True)
class InboundItem:
    """A post as a network delivered it, normalized; ``raw`` keeps the original payload."""

    remote_id: str
    kind: PostKind
    author: InboundAuthor
    text: str
    created_at: datetime
    in_reply_to: str | None = None
    mentions: tuple[str, ...] = ()
    lang: str | None = None
    metrics: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchPage:
    """Items fetched since a cursor; store ``cursor`` only once the items are safely stored."""

    items: list[InboundItem]
    cursor: dict[str, Any]
    has_more: bool = False
    skipped: int = 0


@dataclass(frozen=True)
class MediaFile:
    """A file to attach; ``alt`` describes it for people who cannot see it."""

    filename: str
    mime_type: str
    data: bytes = field(repr=False)
    alt: str = ""
    # Where the network may fetch it itself (Relais' signed public address), for networks that
    # take an image by address rather than uploaded (Instagram); empty when none is configured.
    url: str = ""


IMAGE_SIGNATURES = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


def sniffed_image_type(data: bytes) -> str:
    """The image type the bytes say (networks sniff them too), or '' (WebP: RIFF holding WEBP)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for mime_type, starts in IMAGE_SIGNATURES.items():
        if data.startswith(starts):
            return mime_type
    return ""


@dataclass(frozen=True)
class OutboundPost:
    text: str
    kind: PostKind = PostKind.POST
    in_reply_to: str | None = None
    recipient: str | None = None  # remote author id, for private messages
    # Sent only by connectors with ``Capability.IMAGES``; the others ignore it.
    media: tuple[MediaFile, ...] = ()


@dataclass(frozen=True)
class PublishedRef:
    remote_id: str
    created_at: datetime
    url: str = ""


@dataclass(frozen=True)
class AccountContext:
    """What a connector needs to act for one connected account, decrypted by the caller."""

    workspace_id: int
    handle: str
    settings: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)  # never logged
    # Called with the full credentials when the network issued new ones (a refreshed session).
    save_credentials: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)
    # Runs ``renew`` on the credentials as stored now, the account locked, and stores its result:
    # a network that rotates refresh tokens must never see an old one again (a replayed refresh
    # token ends the whole session on atproto OAuth servers), whichever process refreshed first.
    renew_credentials: (
        Callable[[Callable[[dict[str, Any]], dict[str, Any]]], dict[str, Any]] | None
    ) = field(default=None, repr=False)


class ConnectorError(Exception):
    """A network refused or failed; ``retryable`` tells the caller whether trying later may work."""

    retryable = False
    # Set by the HTTP client for answered requests, so a connector can read the network's own
    # error code (XRPC answers 400 {"error": "ExpiredToken"} for an expired session).
    status_code: int | None = None
    body: str = ""


class TransientNetworkError(ConnectorError):
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(TransientNetworkError):
    pass


class CredentialsExpiredError(ConnectorError):
    """The account must be reconnected by an admin; polling stops until then."""


class UnsupportedError(ConnectorError):
    pass


class Connector(ABC):
    key: ClassVar[str]
    display_name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    limits: ClassVar[Limits]
    requires_image: ClassVar[bool] = False  # a post without an image cannot be published

    def __init__(self, account: AccountContext) -> None:
        self.account = account

    @abstractmethod
    def fetch(self, cursor: dict[str, Any] | None, *, limit: int = 500) -> FetchPage:
        """Items for this account since ``cursor`` (None: from where the network starts us)."""

    def own_author(self) -> InboundAuthor:
        """The connected account as an author on the network (posts it sends carry it)."""
        return InboundAuthor(remote_id=self.account.handle, handle=self.account.handle)

    def reply(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        raise UnsupportedError(f"{self.display_name} cannot reply")

    def send_private_message(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        raise UnsupportedError(f"{self.display_name} cannot send private messages")

    def publish(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        raise UnsupportedError(f"{self.display_name} cannot publish")

    def text_length(self, text: str) -> int:
        """Length as the network counts it; networks that count otherwise override this."""
        return len(text)

    def boosters(self, remote_id: str) -> set[str] | None:
        """Who reposts one of our posts now, for networks that send nothing when a repost is
        undone (their stored reposts are compared with it); None: not known."""
        return None

    def quoters(self, remote_id: str) -> set[str] | None:
        """Who quotes one of our posts now, for networks that send nothing when a quote is
        deleted (compared like ``boosters``); None: not known."""
        return None
