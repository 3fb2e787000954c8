"""Bluesky (AT Protocol): XRPC for sessions and writes, the repo firehose for what happens.

Account settings: ``service`` (the brand's PDS, default https://bsky.social), ``firehose``
(``wss://`` host serving ``com.atproto.sync.subscribeRepos``: the relay, or the PDS itself),
``plc`` (the DID directory). Credentials: the handle's app password, and the session the PDS
issued for it (kept up to date through ``AccountContext.save_credentials``).

Without an AppView a PDS serves no notifications, threads or counts, so inbound items come from
the firehose filtered on the brand's DID: posts mentioning it, replying in its threads or quoting
it, reposts of its posts, and its own posts (sent from elsewhere); likes are reported as
engagements so their count is kept. Text is limited to 300 graphemes; rich-text facets carry
UTF-8 byte offsets.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import libipld
import regex
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

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
    OutboundPost,
    PostKind,
    PublishedRef,
    TransientNetworkError,
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
    """Calls to one XRPC host through ``HttpClient`` (timeouts, 429/5xx backoff, Retry-After)."""

    def __init__(self, base_url: str, http: HttpClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or HttpClient(base_url=self.base_url)

    def query(self, nsid: str, params: dict[str, Any], *, token: str = "") -> dict[str, Any]:
        response = self.http.request("GET", f"/xrpc/{nsid}", params=params, headers=_auth(token))
        return dict(response.json())

    def procedure(
        self, nsid: str, body: dict[str, Any] | None = None, *, token: str = ""
    ) -> dict[str, Any]:
        response = self.http.request("POST", f"/xrpc/{nsid}", json=body or {}, headers=_auth(token))
        return dict(response.json()) if response.content else {}


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
                if exc.retryable:
                    raise
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
            if self._is_brand(parent):
                engagements.append(EngagementEvent(op.uri, "reply", parent, op.repo, created))
            if self._is_brand(quoted):
                engagements.append(EngagementEvent(op.uri, "quote", quoted, op.repo, created))
        kind = PostKind.REPLY if parent else PostKind.QUOTE if quoted else PostKind.POST
        items.append(
            InboundItem(
                remote_id=op.uri,
                kind=kind,
                author=self._author(op.repo),
                text=str(record.get("text", "")),
                created_at=created,
                in_reply_to=parent or None,
                mentions=self._mention_handles(record),
                lang=_first_lang(record),
                raw={"uri": op.uri, "cid": op.cid, "seq": event.seq, "record": _jsonable(record)},
            )
        )

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
                    raw={"uri": op.uri, "subject": subject, "seq": event.seq},
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
        handle = self.directory.handle_for(did)
        if did != self.did and handle.lower() == self.handle.lower():
            # A DID document can claim any handle; only the brand's DID may post as the brand.
            handle = did
        return InboundAuthor(remote_id=did, handle=handle, name=handle)


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
        {Capability.INBOX, Capability.REPLY, Capability.PUBLISH, Capability.METRICS}
    )
    limits: ClassVar[Limits] = Limits(max_text_length=300)  # images are not sent yet

    def __init__(self, account: AccountContext, *, http: HttpClient | None = None) -> None:
        super().__init__(account)
        settings = account.settings
        self.service = Xrpc(str(settings.get("service") or DEFAULT_SERVICE), http)
        self.firehose = str(settings.get("firehose") or DEFAULT_FIREHOSE)
        self.directory = Directory(self.service, str(settings.get("plc") or DEFAULT_PLC))
        self.credentials = dict(account.credentials)
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

    def create_session(self) -> dict[str, Any]:
        """Log in with the app password; a refused password means the account must reconnect."""
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
        if not self.credentials.get("access_jwt"):
            self.create_session()
        try:
            return call(str(self.credentials["access_jwt"]))
        except ConnectorError as exc:
            expired = isinstance(exc, CredentialsExpiredError) or (
                xrpc_error_code(exc) in SESSION_ERRORS
            )
            if not expired:
                raise
        self._refresh_session()
        return call(str(self.credentials["access_jwt"]))

    # -- writes ------------------------------------------------------------------------------

    def reply(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        if not post.in_reply_to:
            raise ConnectorError("a reply needs the post it answers")
        parent = self.get_record(post.in_reply_to)
        parent_ref = {"uri": parent["uri"], "cid": parent["cid"]}
        parent_reply = parent["value"].get("reply") or {}
        root_ref = parent_reply.get("root") or parent_ref
        return self._create_post(
            post.text, reply={"root": root_ref, "parent": parent_ref}, retry_key=idempotency_key
        )

    def publish(self, post: OutboundPost, *, idempotency_key: str) -> PublishedRef:
        return self._create_post(post.text, reply=None, retry_key=idempotency_key)

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
        self, text: str, *, reply: dict[str, Any] | None, retry_key: str
    ) -> PublishedRef:
        # A retry after a timeout must not post twice: the network's own record of recent
        # posts is the proof of whether the first attempt landed.
        if existing := self._recent_identical_post(text, reply):
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

    def _recent_identical_post(
        self, text: str, reply: dict[str, Any] | None
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
            if created >= since and value.get("text") == text and same_parent:
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
        """Firehose events after ``cursor`` until the stream is quiet for ``idle`` seconds."""
        seq = cursor.get("seq") if cursor else None
        with open_stream(self.firehose, seq) as stream:
            return self.read(stream, seq, limit=limit, idle=idle)

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
        next_cursor = {"seq": seq} if seq is not None else {}
        return BlueskyPage(
            items,
            next_cursor,
            has_more=events >= limit,
            skipped=skipped,
            engagements=engagements,
        )
