"""Bluesky (AT Protocol): XRPC for sessions and writes; notifications or the firehose for reads.

Account settings: ``service`` (the brand's PDS, default https://bsky.social), ``firehose``
(``wss://`` host serving ``com.atproto.sync.subscribeRepos``: the relay, or the PDS itself),
``plc`` (the DID directory), ``chat`` (the chat service the PDS forwards ``chat.bsky.*`` calls
to; "" turns chat off). Credentials: the handle's app password, and the session the PDS issued
for it (kept up to date through ``AccountContext.save_credentials``); or, for an account signed
in through atproto OAuth (``auth`` = "oauth"), DPoP-bound tokens and the session's key, every
call to the PDS then signed (connectors/atproto_oauth.py).

When the account's server has an AppView, inbound items come from its notifications (mentions,
replies, quotes, reposts; likes as engagements), the brand's own posts from its repository and
private messages from the chat log; replies deeper in customers' threads, which notify nobody
the brand is, from the threads of the customer posts delivered. A PDS without an AppView serves
none of that, so items come from the firehose filtered on the brand's DID: posts mentioning it,
replying in its threads or quoting it, reposts of its posts, and its own posts (sent from
elsewhere); likes are reported as engagements so their count is kept. The cursor says which
(``source``). Text is limited to 300 graphemes; rich-text facets carry UTF-8 byte offsets; posts
may carry up to 4 images.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
import libipld
import regex
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from relais.connectors import atproto_oauth
from relais.connectors.atproto_oauth import DpopSigner
from relais.connectors.base import (
    AccountContext,
    Capability,
    Connector,
    ConnectorError,
    CredentialsExpiredError,
    FetchPage,
    InboundAuthor,
    InboundItem,
    Limits,
    MediaFile,
    OutboundPost,
    PostKind,
    PublishedRef,
    TransientNetworkError,
    UnsupportedError,
    sniffed_image_type,
)
from relais.connectors.client import HttpClient

logger = logging.getLogger(__name__)

DEFAULT_SERVICE = "https://bsky.social"
DEFAULT_FIREHOSE = "wss://bsky.network"
DEFAULT_PLC = "https://plc.directory"
POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
LIKE = "app.bsky.feed.like"
SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
RETRY_WINDOW = timedelta(minutes=15)  # how far back a retried send looks for its first attempt
# Where an account's inbox is read from (kept in its cursor as "source").
FIREHOSE = "firehose"
NOTIFICATIONS = "notifications"
LIST_NOTIFICATIONS = "app.bsky.notification.listNotifications"
GET_REPOSTED_BY = "app.bsky.feed.getRepostedBy"
GET_QUOTES = "app.bsky.feed.getQuotes"
AUTHORS_PAGE = 100  # getRepostedBy's and getQuotes' maximum
NOTIFICATION_REASONS = ("mention", "reply", "quote", "repost", "like")
NOTIFICATION_PAGE_SIZE = 100  # the lexicon's maximum
MAX_NOTIFICATION_PAGES = 10  # per poll; more waits in the cursor's "gap" for the next poll
FIRST_OWN_POSTS = 25  # the brand's latest posts taken as history when reading starts
WATCHED_THREAD_POSTS = 100  # customer posts whose new replies are looked for (the newest kept)
GET_POSTS_BATCH = 25  # app.bsky.feed.getPosts' maximum
THREAD_DEPTH = 6  # levels of replies read under a post whose reply count grew
THREAD_VIEW = "app.bsky.feed.defs#threadViewPost"
DEFAULT_CHAT = "did:web:api.bsky.chat#bsky_chat"  # the chat service a PDS forwards chat calls to
MAX_MESSAGE_GRAPHEMES = 1000  # chat.bsky.convo.defs#messageInput
MAX_CHAT_LOG_PAGES = 10
CHAT_RETRY_DELAY = timedelta(hours=1)  # after a refusal (no chat service, no access)
CHAT_OUTAGE_DELAY = timedelta(minutes=5)
LOG_CREATE_MESSAGE = "chat.bsky.convo.defs#logCreateMessage"
MESSAGE_VIEW = "chat.bsky.convo.defs#messageView"


# ---------------------------------------------------------------------------------------------
# Text: graphemes and rich-text facets


_GRAPHEME = regex.compile(r"\X")
_MENTION = re.compile(
    r"(?:^|(?<=[\s(\[]))@((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z][a-zA-Z0-9-]*)"
)
_LINK = re.compile(r"(?:^|(?<=[\s(\[]))(https?://[^\s<>\"]+)")
_HASHTAG = regex.compile(r"(?:^|(?<=\s))[#\uFF03]([^\s#\uFF03]+)")  # also the full-width sign
_TAG_TRAILING_PUNCTUATION = regex.compile(r"\p{P}+$")
_TRAILING_PUNCTUATION = ".,;:!?'\")]}"
MAX_TAG_LENGTH = 64


def grapheme_length(text: str) -> int:
    """Length as Bluesky counts it: user-perceived characters (an emoji family is one)."""
    return len(_GRAPHEME.findall(text))


def _byte_span(text: str, start: int, end: int) -> dict[str, int]:
    byte_start = len(text[:start].encode())
    return {"byteStart": byte_start, "byteEnd": byte_start + len(text[start:end].encode())}


def build_facets(text: str, resolve_handle: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """Mentions (resolved to DIDs), links and hashtags of ``text``, with UTF-8 byte offsets.

    A mention whose handle does not resolve stays plain text, as in the Bluesky app.
    """
    facets: list[dict[str, Any]] = []
    for match in _MENTION.finditer(text):
        handle = match.group(1).rstrip(".")
        did = resolve_handle(handle.lower())
        if did:
            end = match.start(1) + len(handle)
            facets.append(
                {
                    "index": _byte_span(text, match.start(), end),
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                }
            )
    for match in _LINK.finditer(text):
        uri = _trim_link(match.group(1))
        facets.append(
            {
                "index": _byte_span(text, match.start(1), match.start(1) + len(uri)),
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
            }
        )
    for match in _HASHTAG.finditer(text):
        tag = _TAG_TRAILING_PUNCTUATION.sub("", match.group(1))
        if not tag or tag.isdigit() or len(tag) > MAX_TAG_LENGTH:
            continue
        facets.append(
            {
                "index": _byte_span(text, match.start(), match.start(1) + len(tag)),
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
            }
        )
    return sorted(facets, key=lambda facet: facet["index"]["byteStart"])


def _trim_link(uri: str) -> str:
    """Drop the sentence's punctuation after a link, but keep a closing parenthesis it opened."""
    while uri and uri[-1] in _TRAILING_PUNCTUATION:
        if uri[-1] == ")" and uri.count("(") >= uri.count(")"):
            break
        uri = uri[:-1]
    return uri


def facet_text(text: str, facet: dict[str, Any]) -> str:
    """The slice of ``text`` a facet covers (its offsets count UTF-8 bytes, not characters)."""
    index = facet.get("index") or {}
    data = text.encode()
    return data[int(index.get("byteStart", 0)) : int(index.get("byteEnd", 0))].decode(
        errors="replace"
    )


# ---------------------------------------------------------------------------------------------
# AT URIs


@dataclass(frozen=True)
class AtUri:
    repo: str
    collection: str
    rkey: str

    @classmethod
    def parse(cls, uri: str) -> AtUri:
        parts = uri.removeprefix("at://").split("/")
        if not uri.startswith("at://") or len(parts) != 3 or not all(parts):
            raise ConnectorError(f"not a record URI: {uri!r}")
        return cls(*parts)

    def __str__(self) -> str:
        return f"at://{self.repo}/{self.collection}/{self.rkey}"


def post_url(handle: str, uri: str) -> str:
    return f"https://bsky.app/profile/{handle}/post/{AtUri.parse(uri).rkey}"


# ---------------------------------------------------------------------------------------------
# XRPC over the project's HTTP client


def xrpc_error_code(error: ConnectorError) -> str:
    """The ``error`` name an XRPC server put in its answer, or ""."""
    try:
        data = json.loads(error.body) if error.body else {}
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""


class Xrpc:
    """Calls to one XRPC host through ``HttpClient`` (timeouts, 429/5xx backoff, Retry-After).

    With ``dpop`` (an OAuth session's signer), authenticated calls carry ``Authorization: DPoP``
    and a fresh proof each; without it, the app-password session's bearer token.
    """

    def __init__(
        self, base_url: str, http: HttpClient | None = None, *, dpop: DpopSigner | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or HttpClient(base_url=self.base_url)
        self.dpop = dpop

    def query(
        self,
        nsid: str,
        params: dict[str, Any],
        *,
        token: str = "",
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = self._send("GET", nsid, token, headers, params=params)
        return dict(response.json())

    def procedure(
        self,
        nsid: str,
        body: dict[str, Any] | None = None,
        *,
        token: str = "",
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = self._send("POST", nsid, token, headers, json=body or {})
        return dict(response.json()) if response.content else {}

    def upload(self, nsid: str, data: bytes, mime_type: str, *, token: str) -> dict[str, Any]:
        """A procedure whose input is raw bytes (``com.atproto.repo.uploadBlob``)."""
        response = self._send("POST", nsid, token, {"Content-Type": mime_type}, content=data)
        return dict(response.json())

    def _send(
        self, method: str, nsid: str, token: str, headers: dict[str, str] | None, **kwargs: Any
    ) -> httpx.Response:
        path = f"/xrpc/{nsid}"
        if self.dpop is not None and token:
            url = self.base_url + path
            return self.dpop.send(
                self.http, method, url, access_token=token, headers=headers, **kwargs
            )
        return self.http.request(
            method, path, headers={**_auth(token), **(headers or {})}, **kwargs
        )


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class Directory:
    """Handle and DID resolution (the PDS for handles, the PLC directory for DIDs), cached."""

    def __init__(self, service: Xrpc, plc_url: str, http: HttpClient | None = None) -> None:
        self.service = service
        self.plc = http or HttpClient(base_url=plc_url.rstrip("/"))
        self._handles: dict[str, str] = {}
        self._dids: dict[str, str | None] = {}
        self._endpoints: dict[str, str] = {}

    def remember(self, did: str, handle: str) -> None:
        self._handles[did] = handle
        self._dids[handle.lower()] = did

    def did_for(self, handle: str) -> str | None:
        if handle not in self._dids:
            try:
                found = self.service.query("com.atproto.identity.resolveHandle", {"handle": handle})
                self._dids[handle] = str(found["did"])
            except ConnectorError as exc:
                if exc.retryable or exc.status_code is None:
                    raise  # not an answer about the handle (an outage, a refused address)
                self._dids[handle] = None
        return self._dids[handle]

    def handle_for(self, did: str) -> str:
        """The DID's handle as its document claims it; the DID itself when it cannot be read."""
        if did not in self._handles:
            document = self._document(did)
            aliases = [a for a in document.get("alsoKnownAs", []) if a.startswith("at://")]
            self._handles[did] = aliases[0].removeprefix("at://") if aliases else did
        return self._handles[did]

    def pds_for(self, did: str) -> str:
        if did not in self._endpoints:
            services = self._document(did).get("service", [])
            endpoint = next(
                (s["serviceEndpoint"] for s in services if s.get("id", "").endswith("atproto_pds")),
                "",
            )
            if not endpoint:
                raise ConnectorError(f"{did} names no PDS")
            self._endpoints[did] = str(endpoint)
        return self._endpoints[did]

    def _document(self, did: str) -> dict[str, Any]:
        try:
            if did.startswith("did:plc:"):
                return dict(self.plc.request("GET", f"/{did}").json())
            if did.startswith("did:web:"):
                host = did.removeprefix("did:web:")
                url = f"https://{host}/.well-known/did.json"
                return dict(HttpClient().request("GET", url).json())
        except ConnectorError as exc:
            if exc.retryable:
                raise
            logger.info("cannot read the DID document of %s: %s", did, exc)
        return {}


# ---------------------------------------------------------------------------------------------
# Images (app.bsky.embed.images)

MAX_IMAGES = 4  # the lexicon's maxLength for the images of one post
MAX_IMAGE_BYTES = 2_000_000  # the lexicon's maxSize for one image blob
IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WebP"}


class MediaRejectedError(ConnectorError):
    """An attachment Bluesky would refuse, caught before anything was uploaded."""


def check_images(media: Sequence[MediaFile]) -> None:
    """Refuse, with the reason, what Bluesky would refuse, before uploading anything."""
    if len(media) > MAX_IMAGES:
        raise MediaRejectedError(
            f"a Bluesky post holds at most {MAX_IMAGES} images ({len(media)} attached)"
        )
    for file in media:
        mime_type = file.mime_type.lower()
        if mime_type not in IMAGE_TYPES:
            raise MediaRejectedError(
                f"{file.filename}: {file.mime_type or 'a file without a type'} cannot be posted "
                f"on Bluesky (it takes {', '.join(IMAGE_TYPES.values())} images)"
            )
        if len(file.data) > MAX_IMAGE_BYTES:
            raise MediaRejectedError(
                f"{file.filename}: {len(file.data):,} bytes, over Bluesky's limit of "
                f"{MAX_IMAGE_BYTES:,} bytes per image"
            )
        if sniffed_image_type(file.data) != mime_type:
            raise MediaRejectedError(
                f"{file.filename}: the file is not a {IMAGE_TYPES[mime_type]} image "
                "(empty, damaged, or of another type)"
            )


def _image_alts(embed: Any) -> list[str]:
    """The alt texts of a post's images, in order (none when it embeds no images)."""
    if not isinstance(embed, dict) or embed.get("$type") != "app.bsky.embed.images":
        return []
    return [str(image.get("alt", "")) for image in embed.get("images") or []]


# ---------------------------------------------------------------------------------------------
# Firehose frames


@dataclass(frozen=True)
class RecordOp:
    """One record created, updated or deleted in a commit."""

    action: str
    repo: str
    collection: str
    rkey: str
    cid: str | None
    record: dict[str, Any] | None

    @property
    def uri(self) -> str:
        return f"at://{self.repo}/{self.collection}/{self.rkey}"


@dataclass(frozen=True)
class FirehoseEvent:
    seq: int | None
    kind: str  # "#commit", "#identity", "#account", "#info", "#sync" ...
    repo: str = ""
    time: str = ""
    ops: tuple[RecordOp, ...] = ()
    body: dict[str, Any] = field(default_factory=dict)


class MalformedFrameError(ValueError):
    pass


class StreamError(ConnectorError):
    """The firehose answered with an error frame (FutureCursor, ConsumerTooSlow...)."""


def decode_frame(frame: bytes) -> FirehoseEvent:
    """One websocket message: a DAG-CBOR header then a DAG-CBOR body (CAR blocks for commits)."""
    try:
        header, body = libipld.decode_dag_cbor_multi(frame)
    except (ValueError, TypeError) as exc:
        raise MalformedFrameError(f"not two DAG-CBOR objects: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise MalformedFrameError("header or body is not a map")
    if header.get("op") == -1:
        raise StreamError(f"{body.get('error', 'error')}: {body.get('message', '')}")
    kind = str(header.get("t", ""))
    seq = body.get("seq")
    if seq is not None and not isinstance(seq, int):
        raise MalformedFrameError(f"seq is not an integer: {seq!r}")
    if kind != "#commit":
        return FirehoseEvent(seq=seq, kind=kind, repo=str(body.get("did", "")), body=body)
    return FirehoseEvent(
        seq=seq,
        kind=kind,
        repo=str(body.get("repo", "")),
        time=str(body.get("time", "")),
        ops=_commit_ops(body),
    )


def _commit_ops(body: dict[str, Any]) -> tuple[RecordOp, ...]:
    repo = body.get("repo")
    ops = body.get("ops")
    if not isinstance(repo, str) or not isinstance(ops, list):
        raise MalformedFrameError("commit without repo or ops")
    blocks: dict[bytes, Any] = {}
    if body.get("blocks"):
        try:
            _car_header, blocks = libipld.decode_car(body["blocks"])
        except (ValueError, TypeError) as exc:
            raise MalformedFrameError(f"unreadable CAR blocks: {exc}") from exc
    decoded = []
    for op in ops:
        path = str(op.get("path", ""))
        collection, _slash, rkey = path.partition("/")
        if not collection or not rkey:
            raise MalformedFrameError(f"bad op path {path!r}")
        cid = op.get("cid")  # raw CID bytes; the CAR's blocks are keyed by the same bytes
        record = blocks.get(cid) if isinstance(cid, bytes) else None
        cid_text = _cid_text(cid)
        decoded.append(
            RecordOp(
                action=str(op.get("action", "")),
                repo=repo,
                collection=collection,
                rkey=rkey,
                cid=cid_text,
                record=record if isinstance(record, dict) else None,
            )
        )
    return tuple(decoded)


def _cid_text(cid: Any) -> str | None:
    if isinstance(cid, bytes):
        try:
            return str(libipld.encode_cid(cid))
        except ValueError as exc:
            raise MalformedFrameError(f"bad CID in op: {exc}") from exc
    return str(cid) if cid else None


def subscribe_url(firehose: str, cursor: int | None) -> str:
    base = firehose.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
    query = f"?{urlencode({'cursor': cursor})}" if cursor is not None else ""
    return f"{base}/xrpc/com.atproto.sync.subscribeRepos{query}"


def open_stream(firehose: str, cursor: int | None, *, timeout: float = 10.0) -> ClientConnection:
    try:
        return connect(
            subscribe_url(firehose, cursor),
            open_timeout=timeout,
            max_size=4 * 1024 * 1024,
            compression=None,
        )
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        raise TransientNetworkError(f"cannot open the firehose at {firehose}: {exc}") from exc


def read_frames(stream: ClientConnection, *, idle: float) -> Iterator[bytes]:
    """Binary frames until the stream stays quiet for ``idle`` seconds."""
    while True:
        try:
            message = stream.recv(timeout=idle)
        except TimeoutError:
            return
        except ConnectionClosed as exc:
            raise TransientNetworkError(f"the firehose closed: {exc}") from exc
        if isinstance(message, bytes):
            yield message


def log_malformed(frame: bytes, error: Exception) -> None:
    """Keep the whole payload in the log so the frame can be studied, then move on."""
    logger.warning(
        "skipped a malformed firehose frame (%s); payload base64=%s",
        error,
        base64.b64encode(frame).decode(),
    )


# ---------------------------------------------------------------------------------------------
# What the firehose means for one brand


@dataclass(frozen=True)
class EngagementEvent:
    """A like, repost, reply or quote of a brand post; or (``undone``) its deletion."""

    remote_id: str
    kind: str
    subject_remote_id: str = ""
    actor_remote_id: str = ""
    created_at: datetime | None = None
    undone: bool = False


@dataclass(frozen=True)
class BlueskyPage(FetchPage):
    engagements: list[EngagementEvent] = field(default_factory=list)


def _parse_time(value: Any, fallback: str = "") -> datetime:
    for candidate in (value, fallback):
        if isinstance(candidate, str) and candidate:
            try:
                parsed = datetime.fromisoformat(candidate.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _already_delivered(notification: dict[str, Any], since: str, seen: set[str]) -> bool:
    """At or under the high-water mark. ``indexedAt`` is the AppView's own UTC timestamp, one
    format throughout, so its strings order as the times do."""
    indexed_at = str(notification.get("indexedAt", ""))
    return indexed_at < since or (indexed_at == since and _notification_key(notification) in seen)


def _notification_key(notification: dict[str, Any]) -> str:
    return f"{notification.get('reason')} {notification.get('uri')}"


def _reposter_dids(page: dict[str, Any]) -> list[str]:
    profiles = [p for p in page.get("repostedBy") or [] if isinstance(p, dict)]
    return [str(profile["did"]) for profile in profiles if profile.get("did")]


def _quoter_dids(page: dict[str, Any]) -> list[str]:
    posts = [p for p in page.get("posts") or [] if isinstance(p, dict)]
    authors = [post.get("author") for post in posts]
    return [str(a["did"]) for a in authors if isinstance(a, dict) and a.get("did")]


def _high_water(found: list[dict[str, Any]], since: str, seen: list[str]) -> dict[str, Any]:
    """The mark after delivering ``found`` (newest first) on top of ``since``/``seen``."""
    if not found:
        return {"since": since, "seen": seen}
    newest = str(found[0].get("indexedAt", ""))
    at_newest = [_notification_key(n) for n in found if n.get("indexedAt") == newest]
    if newest == since:
        at_newest = list(dict.fromkeys([*seen, *at_newest]))
    return {"since": newest, "seen": at_newest}


def _record_key(entry: dict[str, Any]) -> str:
    """The record key of a listed record ("" when its URI is not one)."""
    return str(entry.get("uri", "")).rsplit("/", 1)[-1] if entry.get("uri") else ""


def chat_remote_id(convo_id: str, message_id: str) -> str:
    """Chat messages are no records: their id is unique within a conversation."""
    return f"chat/{convo_id}/{message_id}"


def _chat_refusal(error: ConnectorError) -> ConnectorError:
    """The chat service's own reason (MessagesDisabled, NotFollowedBySender...), readable."""
    try:
        body = json.loads(error.body) if error.body else {}
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    detail = ": ".join(str(part) for part in (body.get("error"), body.get("message")) if part)
    refused = ConnectorError(f"Bluesky chat refused ({detail or error})")
    refused.status_code, refused.body = error.status_code, error.body
    return refused


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now_text() -> str:
    return _time_text(datetime.now(UTC))


def _reply_parent(record: dict[str, Any]) -> str:
    reply = record.get("reply")
    return _ref_uri(reply.get("parent")) if isinstance(reply, dict) else ""


def _ref_uri(ref: Any) -> str:
    return str(ref.get("uri", "")) if isinstance(ref, dict) else ""


def _quoted_uri(embed: Any) -> str:
    if not isinstance(embed, dict):
        return ""
    if embed.get("$type") == "app.bsky.embed.record":
        return _ref_uri(embed.get("record"))
    if embed.get("$type") == "app.bsky.embed.recordWithMedia":
        inner = embed.get("record")
        return _ref_uri(inner.get("record")) if isinstance(inner, dict) else ""
    return ""


class BrandFilter:
    """Turns firehose events into inbound items and engagements for one brand DID.

    Besides what names the brand, it keeps the threads it already delivered posts of
    (``watch``): a customer answering their own mention of the brand carries no trace of
    the brand, yet belongs to the conversation.
    """

    MAX_WATCHED = 100_000

    def __init__(self, brand_did: str, brand_handle: str, directory: Directory) -> None:
        self.did = brand_did
        self.handle = brand_handle
        self.prefix = f"at://{brand_did}/"
        self.directory = directory
        self.watched: dict[str, None] = {}  # insertion-ordered, so the oldest go first
        directory.remember(brand_did, brand_handle)

    def watch(self, uris: Iterable[str]) -> None:
        for uri in uris:
            self.watched[uri] = None
        excess = max(0, len(self.watched) - self.MAX_WATCHED)
        for oldest in list(itertools.islice(self.watched, excess)):
            del self.watched[oldest]

    def match(self, event: FirehoseEvent) -> tuple[list[InboundItem], list[EngagementEvent]]:
        if event.kind == "#identity" and event.body.get("handle"):
            self.directory.remember(event.repo, str(event.body["handle"]))
        items: list[InboundItem] = []
        engagements: list[EngagementEvent] = []
        for op in event.ops:
            if op.action == "delete":
                if op.collection in {POST, REPOST, LIKE}:
                    engagements.append(EngagementEvent(op.uri, "", undone=True))
                continue
            if op.action != "create" or op.record is None:
                continue
            if op.collection == POST:
                self._post(op, event, items, engagements)
            elif op.collection in {REPOST, LIKE}:
                self._reaction(op, event, items, engagements)
        return items, engagements

    def _post(
        self,
        op: RecordOp,
        event: FirehoseEvent,
        items: list[InboundItem],
        engagements: list[EngagementEvent],
    ) -> None:
        record = op.record or {}
        reply = record.get("reply")
        if not isinstance(reply, dict):
            reply = {}
        parent, root = _ref_uri(reply.get("parent")), _ref_uri(reply.get("root"))
        quoted = _quoted_uri(record.get("embed"))
        mentioned = self._mentions_brand(record)
        own = op.repo == self.did
        in_thread = parent in self.watched or root in self.watched
        if not (own or mentioned or in_thread or self._is_brand(parent, root, quoted)):
            return
        self.watch([op.uri, root or op.uri])
        created = _parse_time(record.get("createdAt"), event.time)
        if not own:
            engagements += self.post_engagements(op.uri, record, op.repo, created)
        items.append(
            self.post_item(
                op.uri,
                record,
                self._author(op.repo),
                created,
                raw={"uri": op.uri, "cid": op.cid, "seq": event.seq, "record": _jsonable(record)},
            )
        )

    def post_item(
        self,
        uri: str,
        record: dict[str, Any],
        author: InboundAuthor,
        created: datetime,
        *,
        raw: dict[str, Any],
    ) -> InboundItem:
        """A post record as an inbound item (a reply, a quote or a plain post)."""
        parent = _reply_parent(record)
        quoted = _quoted_uri(record.get("embed"))
        return InboundItem(
            remote_id=uri,
            kind=PostKind.REPLY if parent else PostKind.QUOTE if quoted else PostKind.POST,
            author=author,
            text=str(record.get("text", "")),
            created_at=created,
            in_reply_to=parent or None,
            mentions=self._mention_handles(record),
            lang=_first_lang(record),
            raw=raw,
        )

    def post_engagements(
        self, uri: str, record: dict[str, Any], actor: str, created: datetime
    ) -> list[EngagementEvent]:
        """A customer's reply to or quote of a brand post counts on that post."""
        parent = _reply_parent(record)
        quoted = _quoted_uri(record.get("embed"))
        counted = [("reply", parent), ("quote", quoted)]
        return [
            EngagementEvent(uri, kind, subject, actor, created)
            for kind, subject in counted
            if self._is_brand(subject)
        ]

    def _reaction(
        self,
        op: RecordOp,
        event: FirehoseEvent,
        items: list[InboundItem],
        engagements: list[EngagementEvent],
    ) -> None:
        record = op.record or {}
        subject = _ref_uri(record.get("subject"))
        if not self._is_brand(subject) or op.repo == self.did:
            return
        created = _parse_time(record.get("createdAt"), event.time)
        kind = "repost" if op.collection == REPOST else "like"
        engagements.append(EngagementEvent(op.uri, kind, subject, op.repo, created))
        if kind == "repost":
            items.append(
                InboundItem(
                    remote_id=op.uri,
                    kind=PostKind.REPOST,
                    author=self._author(op.repo),
                    text="",
                    created_at=created,
                    raw={
                        "uri": op.uri,
                        "subject": subject,
                        "seq": event.seq,
                        # The repost it was seen through, when the client says so (the cascade).
                        "via": _ref_uri(record.get("via")),
                    },
                )
            )

    def _is_brand(self, *uris: str) -> bool:
        return any(uri.startswith(self.prefix) for uri in uris)

    def _mentions_brand(self, record: dict[str, Any]) -> bool:
        return any(did == self.did for did, _text in _mention_facets(record))

    def _mention_handles(self, record: dict[str, Any]) -> tuple[str, ...]:
        """Handles as routing matches them: the brand's by DID, others as written in the text."""
        handles = []
        for did, text in _mention_facets(record):
            handle = self.handle if did == self.did else text.lstrip("@")
            if did != self.did and handle.lower() == self.handle.lower():
                continue  # the text says the brand's handle but the link points elsewhere
            handles.append(handle)
        return tuple(dict.fromkeys(h for h in handles if h))

    def _author(self, did: str) -> InboundAuthor:
        return self.author(did, self.directory.handle_for(did))

    def author(self, did: str, handle: str, name: str = "") -> InboundAuthor:
        if did != self.did and handle.lower() == self.handle.lower():
            # A DID document can claim any handle; only the brand's DID may post as the brand.
            handle = did
        return InboundAuthor(remote_id=did, handle=handle, name=name or handle)


def _mention_facets(record: dict[str, Any]) -> Iterator[tuple[str, str]]:
    text = str(record.get("text", ""))
    for facet in record.get("facets") or []:
        if not isinstance(facet, dict):
            continue
        for feature in facet.get("features") or []:
            if isinstance(feature, dict) and feature.get("$type", "").endswith("#mention"):
                yield str(feature.get("did", "")), facet_text(text, facet)


def _first_lang(record: dict[str, Any]) -> str | None:
    langs = record.get("langs")
    return str(langs[0]) if isinstance(langs, list) and langs else None


def _jsonable(value: Any) -> Any:
    """Records as JSON (raw keeps them): bytes become base64, CIDs are already strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    return value


# ---------------------------------------------------------------------------------------------
# The connector


class BlueskyConnector(Connector):
    key: ClassVar[str] = "bluesky"
    display_name: ClassVar[str] = "Bluesky"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.INBOX,
            Capability.REPLY,
            Capability.PUBLISH,
            Capability.METRICS,
            Capability.IMAGES,
            Capability.PRIVATE_MESSAGES,
        }
    )
    limits: ClassVar[Limits] = Limits(max_text_length=300, max_media=MAX_IMAGES)

    def __init__(self, account: AccountContext, *, http: HttpClient | None = None) -> None:
        super().__init__(account)
        settings = account.settings
        self.credentials = dict(account.credentials)
        service = str(settings.get("service") or DEFAULT_SERVICE).rstrip("/")
        # An account connected through OAuth signs every call to its PDS with its DPoP key.
        self.dpop = DpopSigner(self.credentials["dpop_key"]) if self.uses_oauth else None
        if self.dpop is not None and http is None:
            http = atproto_oauth.signed_http(self.dpop, public_only=False, base_url=service)
        self.service = Xrpc(service, http, dpop=self.dpop)
        self.firehose = str(settings.get("firehose") or DEFAULT_FIREHOSE)
        self.directory = Directory(self.service, str(settings.get("plc") or DEFAULT_PLC))
        self._filter: BrandFilter | None = None
        self._hosts: dict[str, Xrpc] = {}

    def text_length(self, text: str) -> int:
        return grapheme_length(text)

    # -- session -----------------------------------------------------------------------------

    @property
    def did(self) -> str:
        if not self.credentials.get("did"):
            self.create_session()
        return str(self.credentials["did"])

    def own_author(self) -> InboundAuthor:
        return InboundAuthor(
            remote_id=self.did, handle=self.account.handle, name=self.account.handle
        )

    @property
    def uses_oauth(self) -> bool:
        return self.credentials.get("auth") == "oauth"

    def create_session(self) -> dict[str, Any]:
        """Log in with the app password; a refused password means the account must reconnect."""
        if self.uses_oauth:
            raise CredentialsExpiredError("the Bluesky authorization ended: connect again")
        password = self.credentials.get("app_password")
        if not password:
            raise CredentialsExpiredError("no app password is stored for this account")
        try:
            session = self.service.procedure(
                "com.atproto.server.createSession",
                {"identifier": self.account.handle, "password": password},
            )
        except ConnectorError as exc:
            if exc.retryable:
                raise
            raise CredentialsExpiredError(
                f"Bluesky refused the app password ({xrpc_error_code(exc) or exc.status_code})"
            ) from exc
        self._store_session(session)
        return session

    def check_session(self) -> None:
        """Prove the stored session (or the app password behind it) still works."""
        self._authed(
            lambda token: self.service.query("com.atproto.server.getSession", {}, token=token)
        )

    def _refresh_session(self) -> None:
        if self.dpop is not None:
            self._refresh_oauth(self.dpop)
            return
        refresh = str(self.credentials.get("refresh_jwt", ""))
        if not refresh:
            self.create_session()
            return
        try:
            session = self.service.procedure("com.atproto.server.refreshSession", token=refresh)
        except ConnectorError as exc:
            if exc.retryable:
                raise
            self.create_session()  # the refresh token expired or was revoked: log in again
            return
        self._store_session(session)

    def _refresh_oauth(self, signer: DpopSigner) -> None:
        """Rotate the OAuth tokens; a refused refresh token means the account must reconnect.

        Another process may have rotated them since this one read them: its tokens are used
        then, since sending the old refresh token again would end the session.
        """
        http = atproto_oauth.signed_http(signer, public_only=False)
        held = self.credentials.get("refresh_token")

        def renew(stored: dict[str, Any]) -> dict[str, Any]:
            if stored.get("refresh_token") != held:
                return stored
            return atproto_oauth.refresh(stored, http, signer)

        if self.account.renew_credentials is not None:
            self.credentials = self.account.renew_credentials(renew)
            return
        self.credentials = renew(self.credentials)
        if self.account.save_credentials is not None:
            self.account.save_credentials(dict(self.credentials))

    def _access_token(self) -> str:
        return str(self.credentials["access_token" if self.uses_oauth else "access_jwt"])

    def _store_session(self, session: dict[str, Any]) -> None:
        self.credentials.update(
            did=session["did"],
            access_jwt=session["accessJwt"],
            refresh_jwt=session["refreshJwt"],
        )
        self.directory.remember(str(session["did"]), self.account.handle)
        if self.account.save_credentials is not None:
            self.account.save_credentials(dict(self.credentials))

    def _authed(self, call: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """Run an authenticated call, refreshing the session once if the server says it ended."""
        if self.uses_oauth:
            if atproto_oauth.expires_soon(self.credentials):
                self._refresh_session()
        elif not self.credentials.get("access_jwt"):
            self.create_session()
        try:
            return call(self._access_token())
        except ConnectorError as exc:
            expired = isinstance(exc, CredentialsExpiredError) or (
                xrpc_error_code(exc) in SESSION_ERRORS
            )
            if not expired:
                raise
        self._refresh_session()
        return call(self._access_token())

    # -- writes ------------------------------------------------------------------------------

    def reply(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        if not post.in_reply_to:
            raise ConnectorError("a reply needs the post it answers")
        parent = self.get_record(post.in_reply_to)
        parent_ref = {"uri": parent["uri"], "cid": parent["cid"]}
        parent_reply = parent["value"].get("reply") or {}
        root_ref = parent_reply.get("root") or parent_ref
        return self._create_post(
            post.text,
            reply={"root": root_ref, "parent": parent_ref},
            media=post.media,
            retry_key=idempotency_key,
        )

    def publish(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        return self._create_post(post.text, reply=None, media=post.media, retry_key=idempotency_key)

    def delete(self, remote_id: str) -> None:
        uri = AtUri.parse(remote_id)
        if uri.repo != self.did:
            raise ConnectorError("only the account's own records can be deleted")
        self._authed(
            lambda token: self.service.procedure(
                "com.atproto.repo.deleteRecord",
                {"repo": self.did, "collection": uri.collection, "rkey": uri.rkey},
                token=token,
            )
        )

    def get_record(self, remote_id: str) -> dict[str, Any]:
        """A record with its CID, read from the PDS that hosts it."""
        uri = AtUri.parse(remote_id)
        return self._host_of(uri.repo).query(
            "com.atproto.repo.getRecord",
            {"repo": uri.repo, "collection": uri.collection, "rkey": uri.rkey},
        )

    def _host_of(self, did: str) -> Xrpc:
        if did == self.did:
            return self.service
        endpoint = self.directory.pds_for(did).rstrip("/")
        if endpoint == self.service.base_url:
            return self.service
        if endpoint not in self._hosts:
            self._hosts[endpoint] = Xrpc(endpoint)
        return self._hosts[endpoint]

    def _create_post(
        self,
        text: str,
        *,
        reply: dict[str, Any] | None,
        media: Sequence[MediaFile] = (),
        retry_key: str,
    ) -> PublishedRef:
        check_images(media)
        # A retry after a timeout must not post twice: the network's own record of recent
        # posts is the proof of whether the first attempt landed.
        if existing := self._recent_identical_post(text, reply, [file.alt for file in media]):
            logger.info("send %s already on Bluesky as %s", retry_key, existing.remote_id)
            return existing
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        if facets := build_facets(text, self.directory.did_for):
            record["facets"] = facets
        if reply:
            record["reply"] = reply
        if media:
            record["embed"] = {
                "$type": "app.bsky.embed.images",
                "images": [{"image": self.upload_blob(file), "alt": file.alt} for file in media],
            }
        created = self._authed(
            lambda token: self.service.procedure(
                "com.atproto.repo.createRecord",
                {"repo": self.did, "collection": POST, "record": record},
                token=token,
            )
        )
        uri = str(created["uri"])
        return PublishedRef(
            remote_id=uri,
            created_at=_parse_time(record["createdAt"]),
            url=post_url(self.account.handle, uri),
        )

    def upload_blob(self, file: MediaFile) -> dict[str, Any]:
        """Upload a file to the account's PDS; the blob reference a record embeds.

        The PDS deletes a blob no record references within minutes, so a failed post leaves
        nothing behind.
        """
        uploaded = self._authed(
            lambda token: self.service.upload(
                "com.atproto.repo.uploadBlob", file.data, file.mime_type.lower(), token=token
            )
        )
        return dict(uploaded["blob"])

    def _recent_identical_post(
        self, text: str, reply: dict[str, Any] | None, alts: list[str]
    ) -> PublishedRef | None:
        listed = self.service.query(
            "com.atproto.repo.listRecords", {"repo": self.did, "collection": POST, "limit": 25}
        )
        since = datetime.now(UTC) - RETRY_WINDOW
        parent = _ref_uri((reply or {}).get("parent"))
        for entry in listed.get("records", []):
            value = entry.get("value") or {}
            created = _parse_time(value.get("createdAt"))
            same_parent = _ref_uri((value.get("reply") or {}).get("parent")) == parent
            same_images = _image_alts(value.get("embed")) == alts
            if created >= since and value.get("text") == text and same_parent and same_images:
                uri = str(entry["uri"])
                return PublishedRef(uri, created, post_url(self.account.handle, uri))
        return None

    # -- reading -----------------------------------------------------------------------------

    @property
    def brand_filter(self) -> BrandFilter:
        if self._filter is None:
            self._filter = BrandFilter(self.did, self.account.handle, self.directory)
        return self._filter

    def fetch(
        self, cursor: dict[str, Any] | None, *, limit: int = 500, idle: float = 1.0
    ) -> BlueskyPage:
        """What happened since ``cursor``: from the AppView's notifications when the account's
        server has one, else from the firehose until it is quiet for ``idle`` seconds."""
        if self.reads_notifications(cursor):
            return self.fetch_notifications(cursor, limit=limit)
        seq = cursor.get("seq") if cursor else None
        with open_stream(self.firehose, seq) as stream:
            return self.read(stream, seq, limit=limit, idle=idle)

    def reads_notifications(self, cursor: dict[str, Any] | None) -> bool:
        """Whether this account is read through the AppView (decided once, kept in the cursor)."""
        source = (cursor or {}).get("source")
        if source in {FIREHOSE, NOTIFICATIONS}:
            return bool(source == NOTIFICATIONS)
        try:
            self._authed(
                lambda token: self.service.query(LIST_NOTIFICATIONS, {"limit": 1}, token=token)
            )
        except ConnectorError as exc:
            if exc.retryable or isinstance(exc, CredentialsExpiredError):
                raise
            # A PDS without an AppView answers 400 "No service configured for ...".
            logger.info("%s serves no notifications (%s): reading the firehose", self, exc)
            return False
        return True

    # -- reading through the AppView ----------------------------------------------------------

    def boosters(self, remote_id: str, *, most: int = 2000) -> set[str] | None:
        """Who reposts a brand post now (DIDs), from the AppView, whose notifications say
        nothing when a repost is deleted. None past ``most``, or on a PDS without an AppView
        (its accounts read the firehose, which reports the deletion itself)."""
        return self._list_authors(GET_REPOSTED_BY, remote_id, most, _reposter_dids)

    def quoters(self, remote_id: str, *, most: int = 2000) -> set[str] | None:
        """Who quotes a brand post now (DIDs), listed by the AppView like ``boosters``."""
        return self._list_authors(GET_QUOTES, remote_id, most, _quoter_dids)

    def _list_authors(
        self,
        nsid: str,
        remote_id: str,
        most: int,
        dids_of: Callable[[dict[str, Any]], list[str]],
    ) -> set[str] | None:
        dids: set[str] = set()
        params: dict[str, Any] = {"uri": remote_id, "limit": AUTHORS_PAGE}
        while True:
            try:
                page = self._authed_query(nsid, params)
            except ConnectorError as exc:
                if exc.retryable or exc.status_code != 400:
                    raise
                return None
            found = dids_of(page)
            dids.update(found)
            if not page.get("cursor") or not found:
                return dids
            if len(dids) >= most:
                return None
            params = {**params, "cursor": page["cursor"]}

    def fetch_notifications(
        self, cursor: dict[str, Any] | None, *, limit: int = 500
    ) -> BlueskyPage:
        """Notifications newer than the cursor's high-water mark, oldest first, then messages.

        ``listNotifications`` pages from the newest down. The cursor keeps the newest
        ``indexedAt`` delivered (``since``) and the notifications delivered at that instant
        (``seen``), so a poll reads down to there and stops. When more arrived than one poll
        reads, the rest is a ``gap`` (the listing's own page cursor, stable over time) that the
        next polls finish before moving ``since``: nothing is skipped, nothing delivered twice.
        """
        state = dict(cursor or {})
        pages = max(1, min(MAX_NOTIFICATION_PAGES, limit // NOTIFICATION_PAGE_SIZE))
        since, seen = state.get("since"), list(state.get("seen") or [])
        gap = state.get("gap")
        following: dict[str, Any] = {"source": NOTIFICATIONS, "since": since, "seen": seen}
        if since is None:  # the first read: the latest page is recent enough history
            found, _rest = self._walk_notifications(None, None, set(), pages=1)
            following.update(_high_water(found, "", []))
        elif isinstance(gap, dict):
            found, rest = self._walk_notifications(gap["cursor"], since, set(seen), pages=pages)
            if rest is None:
                following.update(since=gap["since"], seen=gap["seen"])
            else:
                following["gap"] = {**gap, "cursor": rest}
        else:
            found, rest = self._walk_notifications(None, since, set(seen), pages=pages)
            mark = _high_water(found, since, seen)
            if rest is None:
                following.update(mark)
            else:
                following["gap"] = {"cursor": rest, **mark}
        items, engagements, skipped = self._notification_items(reversed(found))
        replies, following["threads"] = self._read_thread_replies(state.get("threads"), items)
        own, following["own"] = self._read_own_posts(state.get("own"))
        messages, following["chat"] = self._read_chat(state.get("chat"))
        return BlueskyPage(
            own + items + replies + messages,
            following,
            has_more="gap" in following,
            skipped=skipped,
            engagements=engagements,
        )

    def _walk_notifications(
        self, start: str | None, since: str | None, seen: set[str], *, pages: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Notifications from ``start`` down to the ``since`` mark (newest first), and the page
        cursor to go on from when ``pages`` pages did not reach it (else None)."""
        found: list[dict[str, Any]] = []
        page_cursor = start
        for _page in range(pages):
            params: dict[str, Any] = {
                "limit": NOTIFICATION_PAGE_SIZE,
                "reasons": list(NOTIFICATION_REASONS),
            }
            if page_cursor:
                params["cursor"] = page_cursor
            answer = self._list_notifications(params)
            batch = answer.get("notifications") or []
            for notification in batch:
                if since is not None and _already_delivered(notification, since, seen):
                    return found, None
                found.append(notification)
            page_cursor = answer.get("cursor")
            if not batch or not page_cursor:
                return found, None
        return found, page_cursor

    def _read_thread_replies(
        self, state: Any, delivered: list[InboundItem]
    ) -> tuple[list[InboundItem], dict[str, int]]:
        """Replies deeper in the threads the brand is in, which notify the brand of nothing: a
        customer adding to their own mention, someone answering the customer under it.

        Each customer post delivered is watched with its reply count; a count that grew (read
        25 posts per call) means new replies under it, read with ``getPostThread``. Replies under
        the brand's own posts are left to notifications (the AppView notifies ancestors' authors).
        """
        counts = {str(k): int(v) for k, v in state.items()} if isinstance(state, dict) else {}
        for item in delivered:
            if item.kind != PostKind.REPOST and item.author.remote_id != self.did:
                counts.setdefault(item.remote_id, 0)  # whatever is under it is new
        counts = dict(list(counts.items())[-WATCHED_THREAD_POSTS:])
        grown = self._posts_with_new_replies(counts)
        known = set(counts) | {item.remote_id for item in delivered}
        items: list[InboundItem] = []
        for uri in grown:
            answer = self._authed_query(
                "app.bsky.feed.getPostThread",
                {"uri": uri, "depth": THREAD_DEPTH, "parentHeight": 0},
            )
            self._thread_items(answer.get("thread"), 0, counts, known, items)
        return items, dict(list(counts.items())[-WATCHED_THREAD_POSTS:])

    def _posts_with_new_replies(self, counts: dict[str, int]) -> list[str]:
        """The watched posts whose reply count grew; deleted ones stop being watched."""
        grown: list[str] = []
        uris = list(counts)
        for start in range(0, len(uris), GET_POSTS_BATCH):
            batch = uris[start : start + GET_POSTS_BATCH]
            answer = self._authed_query("app.bsky.feed.getPosts", {"uris": batch})
            found = {str(post.get("uri")): post for post in answer.get("posts") or []}
            for uri in batch:
                if uri not in found:
                    del counts[uri]
                elif int(found[uri].get("replyCount") or 0) > counts[uri]:
                    grown.append(uri)
        return grown

    def _thread_items(
        self,
        node: Any,
        level: int,
        counts: dict[str, int],
        known: set[str],
        items: list[InboundItem],
    ) -> None:
        """The customer replies of a thread view, parents first, watched from now on."""
        if not isinstance(node, dict) or node.get("$type") != THREAD_VIEW:
            return  # a deleted or blocked post
        try:
            post = node["post"]
            uri, profile = str(post["uri"]), post["author"]
            did, handle = str(profile["did"]), str(profile["handle"])
            if did == self.did:
                return  # the brand's replies, and what answers them, come as notifications
            # The count is only settled when the replies under it were part of the answer.
            counts[uri] = int(post.get("replyCount") or 0) if level < THREAD_DEPTH else 0
            if uri not in known:
                known.add(uri)
                self.directory.remember(did, handle)
                record = post.get("record") or {}
                created = _parse_time(record.get("createdAt"), str(post.get("indexedAt", "")))
                author = self.brand_filter.author(
                    did, handle, str(profile.get("displayName") or "")
                )
                raw = {"uri": uri, "cid": post.get("cid"), "reason": "thread", "record": record}
                items.append(self.brand_filter.post_item(uri, record, author, created, raw=raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.warning("skipped a malformed thread post (%r); payload=%s", exc, node)
            return
        for reply in node.get("replies") or []:
            self._thread_items(reply, level + 1, counts, known, items)

    def _read_own_posts(self, state: Any) -> tuple[list[InboundItem], dict[str, Any]]:
        """The brand's posts sent from elsewhere: nobody is notified of their own posts.

        Read from the brand's repository, newest first, down to the newest record key already
        delivered (record keys are timestamps: they sort as the posts were written).
        """
        last = state.get("rkey") if isinstance(state, dict) else None
        found: list[dict[str, Any]] = []
        page_cursor = None
        for _page in range(MAX_NOTIFICATION_PAGES):
            # A first read takes the latest few posts only: older ones are history.
            params: dict[str, Any] = {
                "repo": self.did,
                "collection": POST,
                "limit": NOTIFICATION_PAGE_SIZE if last is not None else FIRST_OWN_POSTS,
            }
            if page_cursor:
                params["cursor"] = page_cursor
            listed = self.service.query("com.atproto.repo.listRecords", params)
            records = listed.get("records") or []
            fresh = [r for r in records if last is None or _record_key(r) > last]
            found += fresh
            page_cursor = listed.get("cursor")
            if last is None or len(fresh) < len(records) or not page_cursor:
                break
        items = []
        for entry in reversed(found):
            try:
                value = entry["value"]
                created = _parse_time(value.get("createdAt"))
                raw = {"uri": entry["uri"], "cid": entry.get("cid"), "record": value}
                own = self.own_author()
                items.append(
                    self.brand_filter.post_item(entry["uri"], value, own, created, raw=raw)
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                logger.warning("skipped a malformed record (%r); payload=%s", exc, entry)
        newest = _record_key(found[0]) if found else (last or "")
        return items, {"rkey": newest}

    def _authed_query(self, nsid: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._authed(lambda token: self.service.query(nsid, params, token=token))

    def _list_notifications(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._authed(
            lambda token: self.service.query(LIST_NOTIFICATIONS, params, token=token)
        )

    def _notification_items(
        self, notifications: Iterable[dict[str, Any]]
    ) -> tuple[list[InboundItem], list[EngagementEvent], int]:
        items: list[InboundItem] = []
        engagements: list[EngagementEvent] = []
        skipped = 0
        for notification in notifications:
            try:
                self._notification(notification, items, engagements)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                logger.warning(
                    "skipped a malformed notification (%r); payload=%s",
                    exc,
                    json.dumps(notification, default=str),
                )
                skipped += 1
        return items, engagements, skipped

    def _notification(
        self,
        notification: dict[str, Any],
        items: list[InboundItem],
        engagements: list[EngagementEvent],
    ) -> None:
        reason = str(notification["reason"])
        uri = str(notification["uri"])
        profile = notification["author"]
        did, handle = str(profile["did"]), str(profile["handle"])
        self.directory.remember(did, handle)
        author = self.brand_filter.author(did, handle, str(profile.get("displayName") or ""))
        record = notification.get("record") or {}
        created = _parse_time(record.get("createdAt"), str(notification["indexedAt"]))
        subject = str(notification.get("reasonSubject") or "")
        raw = {"uri": uri, "cid": notification.get("cid"), "reason": reason}
        if reason == "like":
            engagements.append(EngagementEvent(uri, "like", subject, did, created))
        elif reason == "repost":
            engagements.append(EngagementEvent(uri, "repost", subject, did, created))
            via = _ref_uri(record.get("via"))
            item = InboundItem(
                uri,
                PostKind.REPOST,
                author,
                "",
                created,
                raw={**raw, "subject": subject, "via": via},
            )
            items.append(item)
        elif reason in {"mention", "reply", "quote"}:
            engagements += self.brand_filter.post_engagements(uri, record, did, created)
            raw["record"] = record
            items.append(self.brand_filter.post_item(uri, record, author, created, raw=raw))

    # -- private messages (chat.bsky.convo) ---------------------------------------------------

    @property
    def chat_service(self) -> str:
        """The chat service the account's PDS forwards chat calls to; "" turns chat off."""
        return str(self.account.settings.get("chat", DEFAULT_CHAT) or "")

    @property
    def chat_proxy(self) -> dict[str, str]:
        if not self.chat_service:
            raise UnsupportedError("private messages are turned off for this Bluesky account")
        return {"atproto-proxy": self.chat_service}

    def _chat_query(self, nsid: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._authed(
            lambda token: self.service.query(nsid, params, token=token, headers=self.chat_proxy)
        )

    def _chat_procedure(self, nsid: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._authed(
            lambda token: self.service.procedure(nsid, body, token=token, headers=self.chat_proxy)
        )

    def send_private_message(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        """A message in the one-to-one conversation with ``post.recipient`` (a DID or handle)."""
        if not post.recipient:
            raise ConnectorError("a private message needs its recipient")
        if post.media:
            raise MediaRejectedError("Bluesky chat messages cannot carry images")
        if grapheme_length(post.text) > MAX_MESSAGE_GRAPHEMES:
            raise ConnectorError(
                f"a Bluesky chat message holds at most {MAX_MESSAGE_GRAPHEMES} characters"
            )
        recipient = post.recipient
        if not recipient.startswith("did:"):
            recipient = self.directory.did_for(recipient.lstrip("@").lower()) or ""
            if not recipient:
                raise ConnectorError(f"no Bluesky account is called {post.recipient}")
        try:
            convo = self._chat_query(
                "chat.bsky.convo.getConvoForMembers", {"members": [recipient]}
            )["convo"]
            convo_id = str(convo["id"])
            if existing := self._recent_identical_message(convo_id, post.text):
                logger.info("message %s already sent as %s", idempotency_key, existing.remote_id)
                return existing
            message: dict[str, Any] = {"text": post.text}
            if facets := build_facets(post.text, self.directory.did_for):
                message["facets"] = facets
            sent = self._chat_procedure(
                "chat.bsky.convo.sendMessage", {"convoId": convo_id, "message": message}
            )
        except ConnectorError as exc:
            if exc.retryable:
                raise
            raise _chat_refusal(exc) from exc
        return PublishedRef(chat_remote_id(convo_id, str(sent["id"])), _parse_time(sent["sentAt"]))

    def _recent_identical_message(self, convo_id: str, text: str) -> PublishedRef | None:
        """The same text sent by the brand in this conversation lately: a retried send."""
        recent = self._chat_query("chat.bsky.convo.getMessages", {"convoId": convo_id, "limit": 20})
        since = datetime.now(UTC) - RETRY_WINDOW
        for message in recent.get("messages", []):
            sent_at = _parse_time(message.get("sentAt"))
            own = (message.get("sender") or {}).get("did") == self.did
            if own and message.get("text") == text and sent_at >= since:
                return PublishedRef(chat_remote_id(convo_id, str(message["id"])), sent_at)
        return None

    def _read_chat(self, state: Any) -> tuple[list[InboundItem], dict[str, Any]]:
        """New messages from the chat log, and the chat cursor to keep.

        A chat service that refuses (an app password without access to messages, a server
        without chat) is left alone for an hour: posts keep being read meanwhile.
        """
        chat = dict(state) if isinstance(state, dict) else {}
        if not self.chat_service or chat.get("retry_after", "") > _now_text():
            return [], chat
        items: list[InboundItem] = []
        log_cursor = chat.get("cursor")
        for _page in range(MAX_CHAT_LOG_PAGES):
            try:
                answer = self._chat_query(
                    "chat.bsky.convo.getLog", {"cursor": log_cursor} if log_cursor else {}
                )
            except ConnectorError as exc:
                # Posts keep being read whatever the chat service does.
                logger.warning("%s: private messages are not read for now: %s", self, exc)
                delay = CHAT_OUTAGE_DELAY if exc.retryable else CHAT_RETRY_DELAY
                retry = datetime.now(UTC) + delay
                return items, {
                    "cursor": log_cursor,
                    "retry_after": _time_text(retry),
                    "error": str(_chat_refusal(exc)),
                }
            for entry in answer.get("logs") or []:
                if item := self._message_item(entry):
                    items.append(item)
            if not answer.get("cursor") or answer.get("cursor") == log_cursor:
                break
            log_cursor = str(answer["cursor"])
        return items, {"cursor": log_cursor} if log_cursor else {}

    def _message_item(self, entry: Any) -> InboundItem | None:
        """A new message of the chat log as an inbound item; other log entries are skipped."""
        try:
            if entry.get("$type") != LOG_CREATE_MESSAGE:
                return None
            message = entry["message"]
            if message.get("$type") != MESSAGE_VIEW:
                return None  # deleted before we read it
            sender = str(message["sender"]["did"])
            convo_id = str(entry["convoId"])
            raw: dict[str, Any] = {
                "convo_id": convo_id,
                "rev": entry.get("rev"),
                "message": message,
            }
            if sender == self.did:
                author = self.own_author()
            else:
                author = self.brand_filter.author(sender, self.directory.handle_for(sender))
                raw["recipient"] = self.account.handle
            return InboundItem(
                remote_id=chat_remote_id(convo_id, str(message["id"])),
                kind=PostKind.PRIVATE_MESSAGE,
                author=author,
                text=str(message.get("text", "")),
                created_at=_parse_time(message.get("sentAt")),
                raw=raw,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            logger.warning("skipped a malformed chat log entry (%r); payload=%s", exc, entry)
            return None

    def read(
        self,
        stream: ClientConnection,
        seq: int | None,
        *,
        limit: int = 500,
        idle: float = 1.0,
        max_seconds: float = 30.0,
    ) -> BlueskyPage:
        """Read one page from an open stream: ``limit`` events, a quiet spell, or a time cap."""
        items: list[InboundItem] = []
        engagements: list[EngagementEvent] = []
        skipped = events = 0
        deadline = time.monotonic() + max_seconds
        for frame in read_frames(stream, idle=idle):
            try:
                event = decode_frame(frame)
            except MalformedFrameError as exc:
                log_malformed(frame, exc)
                skipped += 1
                continue
            if event.seq is not None:
                if seq is not None and event.seq <= seq:
                    continue  # already delivered before a reconnect
                seq = event.seq
            try:
                found, engaged = self.brand_filter.match(event)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log_malformed(frame, exc)  # a record shaped unlike its lexicon
                skipped += 1
                continue
            items += found
            engagements += engaged
            events += 1
            if events >= limit or time.monotonic() > deadline:
                break
        next_cursor = {"seq": seq, "source": FIREHOSE} if seq is not None else {}
        return BlueskyPage(
            items,
            next_cursor,
            has_more=events >= limit,
            skipped=skipped,
            engagements=engagements,
        )


# ---------------------------------------------------------------------------------------------
# Connecting through atproto OAuth (the protocol itself is in connectors/atproto_oauth.py)


@dataclass(frozen=True)
class OAuthIdentity:
    """An account as its DID document says: the DID, the handle it claims back, its PDS."""

    did: str
    handle: str
    pds: str


def resolve_identity(handle: str, *, service: str, plc: str) -> OAuthIdentity:
    """Handle -> DID (through ``service``) -> DID document (through ``plc``) -> PDS.

    The document must claim the handle back, or anyone could name someone else's account.
    Addresses come from what an admin typed and from documents on the network: public only.
    """
    xrpc = Xrpc(service, HttpClient(base_url=service.rstrip("/"), public_only=True))
    directory = Directory(xrpc, plc, http=HttpClient(base_url=plc.rstrip("/"), public_only=True))
    did = directory.did_for(handle)
    if not did:
        raise ConnectorError(f"no Bluesky account is called {handle}")
    if directory.handle_for(did).lower() != handle:
        raise ConnectorError(f"the DID document of {did} does not claim the handle {handle}")
    return OAuthIdentity(did=did, handle=handle, pds=directory.pds_for(did).rstrip("/"))


def begin_oauth(
    identity: OAuthIdentity, client: atproto_oauth.OAuthClient
) -> tuple[str, atproto_oauth.PendingAuthorization]:
    """Find the PDS's authorization server and push the request: where the browser goes."""
    signer = DpopSigner()  # the session's key, kept with its tokens from now on
    http = atproto_oauth.signed_http(signer, public_only=True)
    server = atproto_oauth.discover(identity.pds, http)
    return atproto_oauth.start(
        client,
        server,
        did=identity.did,
        handle=identity.handle,
        pds=identity.pds,
        http=http,
        signer=signer,
    )


def finish_oauth(
    pending: atproto_oauth.PendingAuthorization, *, code: str, issuer: str
) -> dict[str, Any]:
    """The credentials of an OAuth account: DPoP-bound tokens and the key they are bound to."""
    signer = DpopSigner(pending.dpop_key)
    http = atproto_oauth.signed_http(signer, public_only=True)
    return atproto_oauth.exchange_code(pending, code, issuer, http, signer)
