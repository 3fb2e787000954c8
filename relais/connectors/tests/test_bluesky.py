"""The Bluesky connector's pure parts, on payloads recorded from the reference PDS."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import libipld
import pytest

from relais.connectors.base import (
    AccountContext,
    Capability,
    ConnectorError,
    CredentialsExpiredError,
    MediaFile,
    OutboundPost,
    PostKind,
)
from relais.connectors.client import HttpClient
from relais.connectors.networks.bluesky import (
    AtUri,
    BlueskyConnector,
    BrandFilter,
    Directory,
    FirehoseEvent,
    MalformedFrameError,
    MediaRejectedError,
    RecordOp,
    StreamError,
    Xrpc,
    build_facets,
    check_images,
    decode_frame,
    facet_text,
    grapheme_length,
    xrpc_error_code,
)

FIXTURES = Path(__file__).parent / "fixtures" / "bluesky"


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "responses.json").read_text()))


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    lines = (FIXTURES / "firehose_frames.jsonl").read_text().splitlines()
    return [base64.b64decode(json.loads(line)) for line in lines]


# -- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("é", 1),
        ("e\u0301", 1),  # e + combining accent: one grapheme, two code points
        ("👩‍👩‍👧", 1),  # a family: five code points joined
        ("🇫🇷🇧🇪", 2),  # two flags, four regional indicators
        ("", 0),
    ],
)
def test_graphemes_are_counted_as_the_network_counts_them(text: str, expected: int) -> None:
    assert grapheme_length(text) == expected


def test_the_connector_limits_a_post_to_300_graphemes() -> None:
    connector = BlueskyConnector(AccountContext(workspace_id=1, handle="brand.test"))

    assert connector.limits.max_text_length == 300
    assert connector.text_length("👩‍👩‍👧" * 300) == 300
    assert len("👩‍👩‍👧" * 300) == 1500


def test_facets_carry_utf8_byte_offsets(recorded: dict[str, Any]) -> None:
    text = recorded["getRecord"]["body"]["value"]["text"]
    dids = recorded["dids"]

    facets = build_facets(text, {"brand.test": dids["brand"]}.get)

    assert [facet_text(text, f) for f in facets] == [
        "@brand.test",
        "https://example.com/status?x=1",
        "#panne",
        "#Fibre",
    ]
    assert facets[0]["index"] == {"byteStart": 4, "byteEnd": 15}  # "Hé " is 4 bytes
    assert facets[0]["features"] == [
        {"$type": "app.bsky.richtext.facet#mention", "did": dids["brand"]}
    ]
    assert facets[2]["features"] == [{"$type": "app.bsky.richtext.facet#tag", "tag": "panne"}]
    # The PDS stored exactly what we built.
    assert recorded["getRecord"]["body"]["value"]["facets"] == facets


def test_an_unknown_handle_stays_plain_text() -> None:
    assert build_facets("hi @nobody.test", lambda _handle: None) == []


def test_links_lose_trailing_punctuation_and_tags_their_sign() -> None:
    text = "see (https://example.com/a_(b)) and https://x.org/p. #ok, #123 #tag!"

    facets = build_facets(text, lambda _handle: None)

    assert [facet_text(text, f) for f in facets] == [
        "https://example.com/a_(b)",
        "https://x.org/p",
        "#ok",
        "#tag",
    ]


# -- firehose -----------------------------------------------------------------------------------


def _brand_filter(recorded: dict[str, Any]) -> BrandFilter:
    directory = Directory(Xrpc("http://127.0.0.1:9"), "http://127.0.0.1:9")
    directory.remember(recorded["dids"]["customer"], "customer.test")
    return BrandFilter(recorded["dids"]["brand"], "brand.test", directory)


def _items_and_engagements(recorded: dict[str, Any], frames: list[bytes]) -> tuple[list, list]:
    brand_filter = _brand_filter(recorded)
    items, engagements = [], []
    for frame in frames:
        found, engaged = brand_filter.match(decode_frame(frame))
        items += found
        engagements += engaged
    return items, engagements


def test_recorded_frames_decode_with_increasing_seq(frames: list[bytes]) -> None:
    events = [decode_frame(frame) for frame in frames]
    seqs = [e.seq for e in events if e.seq is not None]

    assert seqs == sorted(seqs)
    assert {"#commit", "#identity", "#account"} <= {e.kind for e in events}


def test_the_brand_filter_keeps_what_concerns_the_brand(
    recorded: dict[str, Any], frames: list[bytes]
) -> None:
    items, engagements = _items_and_engagements(recorded, frames)
    by_uri = {item.remote_id: item for item in items}

    mention = by_uri[recorded["mention"]["uri"]]
    assert mention.kind == PostKind.POST
    assert mention.author.handle == "customer.test"
    assert mention.author.remote_id == recorded["dids"]["customer"]
    assert mention.mentions == ("brand.test",)
    assert mention.lang == "fr"
    assert mention.raw["cid"] == recorded["mention"]["cid"]

    reply = by_uri[recorded["brand_reply"]["uri"]]
    assert reply.kind == PostKind.REPLY
    assert reply.in_reply_to == recorded["mention"]["uri"]
    assert reply.author.handle == "brand.test"

    kinds = sorted(item.kind.value for item in items)
    assert kinds == ["post", "post", "quote", "reply", "repost"]
    assert sorted(e.kind for e in engagements) == ["like", "quote", "repost"]
    assert {e.subject_remote_id for e in engagements} == {recorded["announcement"]["uri"]}


def test_a_malformed_frame_is_refused_cleanly(frames: list[bytes]) -> None:
    with pytest.raises(MalformedFrameError):
        decode_frame(frames[0][:-7])
    with pytest.raises(MalformedFrameError):
        decode_frame(b"\xff\x00garbage")


def test_an_error_frame_raises_a_stream_error() -> None:
    frame = libipld.encode_dag_cbor({"op": -1}) + libipld.encode_dag_cbor(
        {"error": "FutureCursor", "message": "Cursor in the future."}
    )

    with pytest.raises(StreamError, match="FutureCursor"):
        decode_frame(frame)


def test_the_reader_logs_and_skips_malformed_frames(
    recorded: dict[str, Any], frames: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    class Stream:
        def __init__(self, messages: list[bytes]) -> None:
            self.messages = messages

        def recv(self, timeout: float) -> bytes:
            if not self.messages:
                raise TimeoutError
            return self.messages.pop(0)

    connector = _connector(recorded)
    connector._filter = _brand_filter(recorded)
    broken = b"\xa2bopx"

    with caplog.at_level(logging.WARNING):
        page = connector.read(Stream([broken, *frames]), None, idle=0.01)  # type: ignore[arg-type]

    assert page.skipped == 1
    assert len(page.items) == 5
    assert page.cursor == {"seq": decode_frame(frames[-1]).seq, "source": "firehose"}
    assert base64.b64encode(broken).decode() in caplog.text


# -- XRPC errors --------------------------------------------------------------------------------


def _connector(
    recorded: dict[str, Any], answers: dict[str, list[tuple[int, dict]]] | None = None
) -> BlueskyConnector:
    """A connector whose HTTP answers are replayed from recorded PDS responses."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.rsplit(".", 1)[-1]  # getSession, createRecord...
        calls.append(nsid)
        status, body = (answers or {}).get(nsid, [(500, {})]).pop(0)
        return httpx.Response(status, json=body)

    http = HttpClient(
        base_url="http://pds.test", transport=httpx.MockTransport(handler), sleep=lambda _s: None
    )
    context = AccountContext(
        workspace_id=1,
        handle="brand.test",
        settings={"service": "http://pds.test"},
        credentials={"app_password": "app-pass", "did": recorded["dids"]["brand"]},
    )
    connector = BlueskyConnector(context, http=http)
    connector.calls = calls  # type: ignore[attr-defined]
    return connector


def _answer(recorded: dict[str, Any], name: str) -> tuple[int, dict]:
    return recorded[name]["status"], recorded[name]["body"]


def test_a_refused_app_password_means_reconnect(recorded: dict[str, Any]) -> None:
    connector = _connector(
        recorded, {"createSession": [_answer(recorded, "createSession_wrong_password")]}
    )

    with pytest.raises(CredentialsExpiredError, match="app password"):
        connector.create_session()


def test_an_invalid_token_refreshes_then_logs_in_again(recorded: dict[str, Any]) -> None:
    saved: list[dict] = []
    connector = _connector(
        recorded,
        {
            "getSession": [_answer(recorded, "createRecord_bad_token"), (200, {"did": "x"})],
            "refreshSession": [_answer(recorded, "refreshSession_with_access_token")],
            "createSession": [_answer(recorded, "createSession")],
        },
    )
    connector.credentials.update(access_jwt="old", refresh_jwt="old")
    connector.account = AccountContext(
        workspace_id=1, handle="brand.test", save_credentials=saved.append
    )

    connector.check_session()

    assert connector.calls == ["getSession", "refreshSession", "createSession", "getSession"]  # type: ignore[attr-defined]
    assert saved[-1]["access_jwt"] == "<jwt>"  # the recorded (scrubbed) new session
    assert saved[-1]["app_password"] == "app-pass"


def test_the_xrpc_error_name_is_read_from_the_answer(recorded: dict[str, Any]) -> None:
    connector = _connector(recorded, {"getSession": [_answer(recorded, "createRecord_bad_token")]})
    connector.credentials["access_jwt"] = "old"
    connector.credentials.pop("app_password")

    with pytest.raises(CredentialsExpiredError):
        connector.check_session()


def test_server_errors_are_retried_then_reported(recorded: dict[str, Any]) -> None:
    connector = _connector(recorded, {"resolveHandle": [(503, {})] * 4})

    with pytest.raises(ConnectorError) as caught:
        connector.directory.did_for("someone.test")

    assert caught.value.retryable
    assert connector.calls == ["resolveHandle"] * 4  # type: ignore[attr-defined]


def test_an_unknown_handle_resolves_to_nothing(recorded: dict[str, Any]) -> None:
    connector = _connector(
        recorded, {"resolveHandle": [_answer(recorded, "resolveHandle_unknown")]}
    )

    assert connector.directory.did_for("nobody.test") is None
    assert xrpc_error_code(_error_from(recorded, "resolveHandle_unknown")) == "HandleNotFound"


def _error_from(recorded: dict[str, Any], name: str) -> ConnectorError:
    error = ConnectorError("x")
    error.body = json.dumps(recorded[name]["body"])
    return error


def test_a_retried_reply_finds_the_first_attempt_instead_of_posting_twice(
    recorded: dict[str, Any],
) -> None:
    mention = recorded["getRecord"]["body"]
    first = {
        "uri": recorded["brand_reply"]["uri"],
        "cid": recorded["brand_reply"]["cid"],
        "value": {
            "text": "On it!",
            "createdAt": "2099-01-01T00:00:00Z",
            "reply": {
                "root": {"uri": mention["uri"], "cid": mention["cid"]},
                "parent": {"uri": mention["uri"], "cid": mention["cid"]},
            },
        },
    }
    connector = _connector(
        recorded,
        {"getRecord": [(200, mention)], "listRecords": [(200, {"records": [first]})]},
    )
    connector.directory._endpoints[recorded["dids"]["customer"]] = "http://pds.test"

    sent = connector.reply(OutboundPost("On it!", in_reply_to=mention["uri"]), idempotency_key="k")

    assert sent.remote_id == recorded["brand_reply"]["uri"]
    assert "createRecord" not in connector.calls  # type: ignore[attr-defined]
    assert sent.url.endswith(AtUri.parse(sent.remote_id).rkey)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _commit_frame(seq: int, repo: str, path: str, record: dict[str, Any]) -> bytes:
    """A #commit frame carrying one record, shaped as the PDS sends them."""
    block = libipld.encode_dag_cbor(record)
    cid = bytes([1, 0x71, 0x12, 0x20]) + hashlib.sha256(block).digest()
    # {"roots": [cid], "version": 1} by hand: libipld cannot encode a CID link (tag 42).
    header = b"\xa2eroots\x81\xd8\x2a\x58\x25\x00" + cid + b"gversion\x01"
    car = _varint(len(header)) + header + _varint(len(cid) + len(block)) + cid + block
    body = {
        "seq": seq,
        "repo": repo,
        "time": "2026-11-26T06:00:00.000Z",
        "ops": [{"action": "create", "path": path, "cid": cid}],
        "blocks": car,
    }
    return libipld.encode_dag_cbor({"op": 1, "t": "#commit"}) + libipld.encode_dag_cbor(body)


def test_a_record_unlike_its_lexicon_is_logged_and_skipped(
    recorded: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    brand = recorded["dids"]["brand"]
    customer = recorded["dids"]["customer"]
    mention = {"$type": "app.bsky.richtext.facet#mention", "did": brand}
    bad_facet = {"index": {"byteStart": "x", "byteEnd": 2}, "features": [mention]}
    good_facet = {"index": {"byteStart": 3, "byteEnd": 14}, "features": [mention]}
    post = {"$type": "app.bsky.feed.post", "createdAt": "2026-11-26T06:00:00Z"}
    frames = [
        _commit_frame(
            1, customer, "app.bsky.feed.post/a", {**post, "text": "x", "facets": [bad_facet]}
        ),
        _commit_frame(
            2,
            customer,
            "app.bsky.feed.post/b",
            {**post, "text": "hi @brand.test", "facets": [good_facet]},
        ),
    ]
    connector = _connector(recorded)
    connector._filter = _brand_filter(recorded)

    class Stream:
        def recv(self, timeout: float) -> bytes:
            if not frames:
                raise TimeoutError
            return frames.pop(0)

    with caplog.at_level(logging.WARNING):
        page = connector.read(Stream(), None, idle=0.01)  # type: ignore[arg-type]

    assert page.skipped == 1
    assert [item.remote_id for item in page.items] == [f"at://{customer}/app.bsky.feed.post/b"]
    assert page.items[0].mentions == ("brand.test",)
    assert page.cursor == {"seq": 2, "source": "firehose"}
    assert "payload base64=" in caplog.text


def test_nobody_but_the_brand_did_passes_for_the_brand(recorded: dict[str, Any]) -> None:
    impostor = "did:plc:impostor"
    brand_filter = _brand_filter(recorded)
    brand_filter.directory.remember(impostor, "brand.test")  # its DID document claims the handle
    fake_mention = {"$type": "app.bsky.richtext.facet#mention", "did": impostor}
    reply_ref = {"uri": recorded["announcement"]["uri"], "cid": recorded["announcement"]["cid"]}
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": "@brand.test hi",
        "facets": [{"index": {"byteStart": 0, "byteEnd": 11}, "features": [fake_mention]}],
        "reply": {"root": reply_ref, "parent": reply_ref},
        "createdAt": "2026-11-26T06:00:00Z",
    }

    items, _engagements = brand_filter.match(
        decode_frame(_commit_frame(3, impostor, "app.bsky.feed.post/c", record))
    )

    assert items[0].author.handle == impostor
    assert items[0].mentions == ()


# -- images -------------------------------------------------------------------------------------

PNG_START = b"\x89PNG\r\n\x1a\n" + bytes(16)


def test_the_connector_declares_images_and_private_messages() -> None:
    assert {Capability.IMAGES, Capability.PRIVATE_MESSAGES} <= BlueskyConnector.capabilities
    assert BlueskyConnector.limits.max_media == 4


@pytest.mark.parametrize(
    ("mime_type", "data"),
    [
        ("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(16)),
        ("image/png", PNG_START),
        ("IMAGE/PNG", PNG_START),
        ("image/gif", b"GIF89a" + bytes(16)),
        ("image/webp", b"RIFF\x10\x00\x00\x00WEBPVP8 "),
    ],
)
def test_images_bluesky_takes_pass_the_check(mime_type: str, data: bytes) -> None:
    check_images([MediaFile("photo", mime_type, data, alt="a photo")])


@pytest.mark.parametrize(
    ("media", "reason"),
    [
        ([MediaFile(f"{n}.png", "image/png", PNG_START) for n in range(5)], "at most 4 images"),
        ([MediaFile("clip.mp4", "video/mp4", b"....ftyp")], "clip.mp4: video/mp4 cannot be"),
        ([MediaFile("x.heic", "", b"....")], "a file without a type"),
        ([MediaFile("big.png", "image/png", PNG_START + bytes(2_000_000))], "2,000,000 bytes"),
        ([MediaFile("empty.png", "image/png", b"")], "empty.png: the file is not a PNG image"),
        ([MediaFile("gif.jpg", "image/jpeg", b"GIF89a")], "not a JPEG image"),
        ([MediaFile("riff.webp", "image/webp", b"RIFF\x10\x00\x00\x00WAVE")], "not a WebP"),
    ],
)
def test_images_bluesky_would_refuse_are_refused_with_the_reason(
    media: list[MediaFile], reason: str
) -> None:
    with pytest.raises(MediaRejectedError, match=reason):
        check_images(media)


def test_a_private_message_with_an_image_is_refused_before_any_call(
    recorded: dict[str, Any],
) -> None:
    connector = _connector(recorded, {})
    message = OutboundPost(
        "see", recipient="did:plc:x", media=(MediaFile("a.png", "image/png", PNG_START),)
    )

    with pytest.raises(MediaRejectedError, match="cannot carry images"):
        connector.send_private_message(message, idempotency_key="k")
    assert connector.calls == []  # type: ignore[attr-defined]


# -- notifications ------------------------------------------------------------------------------


def _notification(reason: str, rkey: str, indexed_at: str) -> dict[str, Any]:
    customer = "did:plc:customer"
    record = {"$type": "app.bsky.feed.post", "text": f"{reason} {rkey}", "createdAt": indexed_at}
    return {
        "uri": f"at://{customer}/app.bsky.feed.post/{rkey}",
        "cid": "bafyreib2rxk3rh6kzwq",
        "author": {"did": customer, "handle": "customer.test"},
        "reason": reason,
        "record": record,
        "isRead": False,
        "indexedAt": indexed_at,
    }


def _no_new_replies(*polls: list[dict[str, Any]]) -> list[tuple[int, dict]]:
    """``getPosts`` answers saying nobody replied under the posts watched at each poll."""
    answers = []
    for notifications in polls:
        posts = [{**n, "replyCount": 0} for n in notifications]
        answers.append((200, {"posts": posts}))
    return answers


def _without_chat(connector: BlueskyConnector) -> None:
    connector.account = AccountContext(
        workspace_id=1, handle="brand.test", settings={"service": "http://pds.test", "chat": ""}
    )
    connector.credentials["access_jwt"] = "<jwt>"


def test_notifications_at_the_same_instant_as_the_mark_are_delivered_once(
    recorded: dict[str, Any],
) -> None:
    same = "2026-01-01T10:00:00.000Z"
    first = [_notification("mention", "b", same), _notification("mention", "a", same)]
    later = [_notification("reply", "c", same), *first]
    connector = _connector(
        recorded,
        {
            "listNotifications": [(200, {"notifications": first}), (200, {"notifications": later})],
            "listRecords": [(200, {"records": []}), (200, {"records": []})],
            "getPosts": _no_new_replies(first, later),
        },
    )
    _without_chat(connector)

    page = connector.fetch_notifications({"source": "notifications", "since": ""})
    again = connector.fetch_notifications(page.cursor)

    assert [item.text for item in page.items] == ["mention a", "mention b"]  # oldest first
    assert [item.text for item in again.items] == ["reply c"]
    assert again.cursor["since"] == same
    assert len(again.cursor["seen"]) == 3


def test_a_malformed_notification_is_logged_and_skipped(
    recorded: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    broken = _notification("mention", "x", "2026-01-01T10:00:01.000Z")
    del broken["author"]
    fine = _notification("quote", "y", "2026-01-01T10:00:00.000Z")
    connector = _connector(
        recorded,
        {
            "listNotifications": [(200, {"notifications": [broken, fine]})],
            "listRecords": [(200, {"records": []})],
            "getPosts": _no_new_replies([fine]),
        },
    )
    _without_chat(connector)

    with caplog.at_level(logging.WARNING):
        page = connector.fetch_notifications({"source": "notifications", "since": ""})

    assert [item.text for item in page.items] == ["quote y"]
    assert page.skipped == 1
    assert "skipped a malformed notification" in caplog.text
    assert page.cursor["since"] == "2026-01-01T10:00:01.000Z"  # it is not read again


def _thread_node(uri: str, did: str, text: str, reply_count: int, *replies: dict) -> dict:
    """A post of a thread view; its replies name it as parent (and root: unused here)."""
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-01-01T11:00:00Z"}
    for reply in replies:
        if "post" in reply:
            ref = {"uri": uri, "cid": "bafyreib2rxk3rh6kzwq"}
            reply["post"]["record"]["reply"] = {"root": ref, "parent": ref}
    return {
        "$type": "app.bsky.feed.defs#threadViewPost",
        "post": {
            "uri": uri,
            "cid": "bafyreib2rxk3rh6kzwq",
            "author": {"did": did, "handle": did.rsplit(":", 1)[-1] + ".test"},
            "record": record,
            "replyCount": reply_count,
            "indexedAt": "2026-01-01T11:00:00.000Z",
        },
        "replies": list(replies),
    }


def test_new_replies_under_watched_customer_posts_are_read_from_their_thread(
    recorded: dict[str, Any],
) -> None:
    brand = recorded["dids"]["brand"]
    mention, gone = (
        "at://did:plc:ann/app.bsky.feed.post/m1",
        "at://did:plc:ann/app.bsky.feed.post/g1",
    )
    follow_up, answer = (
        "at://did:plc:ann/app.bsky.feed.post/f1",
        "at://did:plc:bob/app.bsky.feed.post/a1",
    )
    thread = _thread_node(
        mention,
        "did:plc:ann",
        "my parcel is lost",
        3,
        _thread_node(
            follow_up,
            "did:plc:ann",
            "order 4412",
            1,
            _thread_node(answer, "did:plc:bob", "same", 0),
        ),
        # The brand's answer and what is under it are the notifications' business.
        _thread_node(
            f"at://{brand}/app.bsky.feed.post/b1",
            brand,
            "sorry!",
            1,
            _thread_node("at://did:plc:ann/app.bsky.feed.post/t1", "did:plc:ann", "thanks", 0),
        ),
        {"$type": "app.bsky.feed.defs#notFoundPost", "uri": "at://did:plc:x/p/1", "notFound": True},
    )
    connector = _connector(
        recorded,
        {
            "listNotifications": [(200, {"notifications": []})],
            "listRecords": [(200, {"records": []})],
            # The mention gained replies; the other watched post was deleted.
            "getPosts": [(200, {"posts": [{"uri": mention, "replyCount": 3}]})],
            "getPostThread": [(200, {"thread": thread})],
        },
    )
    _without_chat(connector)

    page = connector.fetch_notifications(
        {"source": "notifications", "since": "", "threads": {mention: 1, gone: 0}}
    )

    assert [item.remote_id for item in page.items] == [follow_up, answer]  # parents first
    assert page.items[1].in_reply_to == follow_up
    assert page.cursor["threads"] == {mention: 3, follow_up: 1, answer: 0}
    assert connector.calls.count("getPostThread") == 1  # type: ignore[attr-defined]


def test_a_repost_names_the_repost_it_was_seen_through(recorded: dict[str, Any]) -> None:
    brand_filter = _brand_filter(recorded)
    customer = recorded["dids"]["customer"]
    announcement = recorded["announcement"]
    earlier = "at://did:plc:someoneelse/app.bsky.feed.repost/3kabc"
    record = {
        "$type": "app.bsky.feed.repost",
        "subject": {"uri": announcement["uri"], "cid": announcement["cid"]},
        "via": {"uri": earlier, "cid": "bafyreiexample"},
        "createdAt": "2026-11-26T10:00:00.000Z",
    }
    op = RecordOp("create", customer, "app.bsky.feed.repost", "3kdef", None, record)
    event = FirehoseEvent(seq=99, kind="#commit", repo=customer, ops=(op,))

    items, _engagements = brand_filter.match(event)

    assert [(item.kind, item.raw["via"]) for item in items] == [(PostKind.REPOST, earlier)]
