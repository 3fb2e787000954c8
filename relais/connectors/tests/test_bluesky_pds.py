"""The Bluesky connector against the real reference PDS (``pytest -m bluesky``)."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import libipld
import pytest

from relais.accounts.models import User, Workspace
from relais.connectors.actions import (
    bluesky_connector_for,
    do_connect_bluesky_account,
    do_poll_bluesky_account,
)
from relais.connectors.base import ConnectorError, MediaFile, OutboundPost
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.bluesky import (
    AtUri,
    MediaRejectedError,
    Xrpc,
    build_facets,
    xrpc_error_code,
)
from relais.connectors.streams import AccountStream, consume_account, follow_all
from relais.connectors.tasks import poll_bluesky_all
from relais.connectors.tests.bluesky_testbed import Testbed
from relais.core.errors import ValidationFailedError
from relais.inbox.actions import do_send_reply
from relais.inbox.models import Conversation
from relais.pipeline.models import Post

pytestmark = [
    pytest.mark.bluesky,
    pytest.mark.timeout(1200),
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "pds-test-password-1"  # an account on a throwaway local server


def pump_until(stream: AccountStream, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Read the firehose (the consumer's own step, in this thread) until ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stream.pump(idle=0.2, max_seconds=1.0)
        if result := condition():
            return result
    raise AssertionError("condition not met in time")


class Customer:
    """The customer's side, written straight to the PDS like the Bluesky app would."""

    def __init__(self, pds: Testbed, handle: str) -> None:
        self.session = pds.create_account(handle, PASSWORD)
        self.xrpc = Xrpc(pds.pds)

    def create(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        created_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return self.xrpc.procedure(
            "com.atproto.repo.createRecord",
            {
                "repo": self.session["did"],
                "collection": collection,
                "record": {"$type": collection, "createdAt": created_at, **record},
            },
            token=self.session["accessJwt"],
        )

    def post(self, text: str) -> dict[str, Any]:
        def resolve(handle: str) -> str | None:
            found = self.xrpc.query("com.atproto.identity.resolveHandle", {"handle": handle})
            return str(found["did"])

        return self.create(
            "app.bsky.feed.post", {"text": text, "facets": build_facets(text, resolve)}
        )


@pytest.fixture
def brand(pds: Testbed, workspace: Workspace, owner: User) -> ConnectedAccount:
    handle = f"brand{time.monotonic_ns() % 10**8}.test"
    pds.create_account(handle, PASSWORD)
    return do_connect_bluesky_account(
        workspace,
        handle,
        PASSWORD,
        actor=owner,
        service=pds.pds,
        firehose=pds.firehose,
        plc=pds.plc,
    )


@pytest.fixture
def stream(brand: ConnectedAccount) -> Iterator[AccountStream]:
    with AccountStream(brand) as opened:
        yield opened


def test_a_mention_reaches_the_inbox_and_the_reply_lands_in_the_customers_thread(
    pds: Testbed, brand: ConnectedAccount, agent: User, stream: AccountStream
) -> None:
    customer = Customer(pds, f"customer{time.monotonic_ns() % 10**8}.test")

    mention = customer.post(f"@{brand.handle} my order never arrived, can you help?")

    conversation = pump_until(
        stream,
        lambda: (
            Conversation.objects.in_workspace(brand.workspace_id)
            .filter(account=brand, thread_key=mention["uri"])
            .first()
        ),
    )
    assert conversation.preview.endswith("can you help?")
    assert conversation.customer.handle == customer.session["handle"]

    seen_before = current_seq(brand)
    sent = do_send_reply(
        agent, conversation, "Sorry! Send us your order number 📦", idempotency_key="k1"
    )

    uri = AtUri.parse(sent.remote_id)
    on_pds = Xrpc(pds.pds).query(
        "com.atproto.repo.getRecord",
        {"repo": uri.repo, "collection": uri.collection, "rkey": uri.rkey},
    )
    reply = on_pds["value"]["reply"]
    assert reply["root"] == {"uri": mention["uri"], "cid": mention["cid"]}
    assert reply["parent"] == {"uri": mention["uri"], "cid": mention["cid"]}
    assert on_pds["value"]["text"] == "Sorry! Send us your order number 📦"
    # The reply comes back on the firehose and is recognized as the one already stored.
    pump_until(stream, lambda: current_seq(brand) > seen_before)
    assert Post.objects.filter(remote_id=sent.remote_id).count() == 1
    assert conversation.messages.count() == 2

    again = do_send_reply(
        agent, conversation, "Sorry! Send us your order number 📦", idempotency_key="k1"
    )
    assert again.pk == sent.pk


def current_seq(account: ConnectedAccount) -> int:
    account.refresh_from_db()
    return int((account.cursor or {}).get("seq", 0))


def test_a_customer_reply_in_the_brand_thread_joins_the_conversation(
    pds: Testbed, brand: ConnectedAccount, stream: AccountStream
) -> None:
    customer = Customer(pds, f"follower{time.monotonic_ns() % 10**8}.test")
    mention = customer.post(f"hello @{brand.handle}")
    conversation = pump_until(
        stream,
        lambda: Conversation.objects.filter(account=brand, thread_key=mention["uri"]).first(),
    )
    ref = {"uri": mention["uri"], "cid": mention["cid"]}
    customer.create(
        "app.bsky.feed.post", {"text": "anyone there?", "reply": {"root": ref, "parent": ref}}
    )

    pump_until(stream, lambda: conversation.messages.count() == 2)


def test_a_repost_of_a_brand_post_is_counted(
    pds: Testbed, brand: ConnectedAccount, stream: AccountStream
) -> None:
    customer = Customer(pds, f"fan{time.monotonic_ns() % 10**8}.test")
    published = bluesky_connector_for(brand).publish(
        OutboundPost(text="New plans are out #fibre https://example.com/plans"),
        idempotency_key="p1",
    )
    announcement = pump_until(
        stream, lambda: Post.objects.filter(remote_id=published.remote_id).first()
    )
    record = bluesky_connector_for(brand).get_record(published.remote_id)
    assert [f["features"][0]["$type"] for f in record["value"]["facets"]] == [
        "app.bsky.richtext.facet#tag",
        "app.bsky.richtext.facet#link",
    ]
    subject = {"uri": published.remote_id, "cid": record["cid"]}

    repost = customer.create("app.bsky.feed.repost", {"subject": subject})
    customer.create("app.bsky.feed.like", {"subject": subject})

    def counted() -> bool:
        announcement.refresh_from_db()
        return announcement.metrics.get("reposts") == 1 and announcement.metrics.get("likes") == 1

    pump_until(stream, counted)
    assert Post.objects.get(remote_id=repost["uri"]).kind == "repost"

    uri = AtUri.parse(repost["uri"])
    customer.xrpc.procedure(
        "com.atproto.repo.deleteRecord",
        {"repo": uri.repo, "collection": uri.collection, "rkey": uri.rkey},
        token=customer.session["accessJwt"],
    )
    pump_until(
        stream, lambda: announcement.refresh_from_db() or announcement.metrics["reposts"] == 0
    )


def test_the_brand_deletes_its_post(pds: Testbed, brand: ConnectedAccount) -> None:
    connector = bluesky_connector_for(brand)
    published = connector.publish(OutboundPost(text="Oops, wrong link"), idempotency_key="d1")

    connector.delete(published.remote_id)

    with pytest.raises(ConnectorError) as missing:
        connector.get_record(published.remote_id)
    assert xrpc_error_code(missing.value) == "RecordNotFound"


def test_polling_resumes_from_the_stored_cursor_without_duplicates(
    pds: Testbed, brand: ConnectedAccount
) -> None:
    customer = Customer(pds, f"poller{time.monotonic_ns() % 10**8}.test")
    first = customer.post(f"@{brand.handle} first")  # new accounts on a PDS start at seq 0

    assert do_poll_bluesky_account(brand.pk).accepted == 1
    after_first = current_seq(brand)
    assert (brand.cursor or {})[
        "source"
    ] == "firehose"  # this PDS has no AppView: it serves no notifications
    second = customer.post(f"@{brand.handle} second")
    poll_bluesky_all.delay()  # what the beat runs every 10 s
    assert do_poll_bluesky_account(brand.pk).accepted == 0  # nothing new, nothing again

    stored = Post.objects.filter(remote_id__in=[first["uri"], second["uri"]])
    assert stored.count() == 2
    assert Conversation.objects.filter(account=brand).count() == 2
    assert current_seq(brand) > after_first


def test_a_wrong_app_password_is_refused(pds: Testbed, workspace: Workspace, owner: User) -> None:
    pds.create_account("wrongpass.test", PASSWORD)
    with pytest.raises(ValidationFailedError):
        do_connect_bluesky_account(
            workspace, "wrongpass.test", "nope", actor=owner, service=pds.pds, plc=pds.plc
        )


def test_a_revoked_app_password_moves_the_account_to_reconnect_needed(
    pds: Testbed, brand: ConnectedAccount
) -> None:
    from relais.connectors.credentials import decrypt_credentials, encrypt_credentials

    credentials = decrypt_credentials(brand.credentials)
    credentials.update(access_jwt="revoked", refresh_jwt="revoked", app_password="changed")
    ConnectedAccount.objects.filter(pk=brand.pk).update(
        credentials=encrypt_credentials(credentials)
    )

    consumer = threading.Thread(target=consume_account, args=(brand.pk, threading.Event()))
    consumer.start()
    consumer.join(30)

    assert not consumer.is_alive()  # it stopped by itself
    brand.refresh_from_db()
    assert brand.status == AccountStatus.RECONNECT_NEEDED
    assert "app password" in brand.last_error
    assert do_poll_bluesky_account(brand.pk).accepted == 0


def test_the_long_running_consumer_delivers_mentions(pds: Testbed, brand: ConnectedAccount) -> None:
    customer = Customer(pds, f"streamer{time.monotonic_ns() % 10**8}.test")
    stop = threading.Event()
    follower = threading.Thread(target=follow_all, args=(stop,), kwargs={"rescan_seconds": 0.5})
    follower.start()
    try:
        # Only the PDS is touched while the consumer runs: the in-memory test database
        # cannot share tables between threads that write and read at once.
        mention = customer.post(f"@{brand.handle} are you there?")
        time.sleep(3)
    finally:
        stop.set()
        follower.join(15)

    assert not follower.is_alive()
    assert Conversation.objects.filter(account=brand, thread_key=mention["uri"]).exists()


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG file of one colour (any image viewer opens it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def blob_cid(data: bytes) -> str:
    """The CID a PDS gives a blob: CIDv1, raw codec, SHA-256 (computed here independently)."""
    return str(libipld.encode_cid(bytes([1, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()))


def test_a_post_with_an_image_embeds_the_uploaded_blob(
    pds: Testbed, brand: ConnectedAccount
) -> None:
    connector = bluesky_connector_for(brand)
    image = png(64, 48, (200, 30, 30))

    published = connector.publish(
        OutboundPost(
            text="Our new colour 🎨",
            media=(MediaFile("red.png", "image/png", image, alt="A red rectangle"),),
        ),
        idempotency_key="img1",
    )

    record = connector.get_record(published.remote_id)["value"]
    assert record["text"] == "Our new colour 🎨"
    assert record["embed"]["$type"] == "app.bsky.embed.images"
    [embedded] = record["embed"]["images"]
    assert embedded["alt"] == "A red rectangle"
    assert embedded["image"]["mimeType"] == "image/png"
    assert embedded["image"]["size"] == len(image)
    assert embedded["image"]["ref"]["$link"] == blob_cid(image)
    served = httpx.get(
        f"{pds.pds}/xrpc/com.atproto.sync.getBlob",
        params={"did": connector.did, "cid": blob_cid(image)},
        timeout=30,
    )
    assert served.content == image

    again = connector.publish(
        OutboundPost(
            text="Our new colour 🎨",
            media=(MediaFile("red.png", "image/png", image, alt="A red rectangle"),),
        ),
        idempotency_key="img1",
    )
    assert again.remote_id == published.remote_id  # a retry finds the first attempt


def test_a_reply_carries_several_images_in_order(pds: Testbed, brand: ConnectedAccount) -> None:
    customer = Customer(pds, f"photo{time.monotonic_ns() % 10**8}.test")
    question = customer.post(f"@{brand.handle} which colours do you have?")
    connector = bluesky_connector_for(brand)
    images = [png(8, 8, (0, 0, 255)), png(8, 8, (0, 160, 0))]

    sent = connector.reply(
        OutboundPost(
            text="These two:",
            in_reply_to=question["uri"],
            media=(
                MediaFile("blue.png", "image/png", images[0], alt="Blue"),
                MediaFile("green.png", "image/png", images[1], alt="Green"),
            ),
        ),
        idempotency_key="img2",
    )

    record = connector.get_record(sent.remote_id)["value"]
    assert record["reply"]["parent"] == {"uri": question["uri"], "cid": question["cid"]}
    embedded = record["embed"]["images"]
    assert [e["alt"] for e in embedded] == ["Blue", "Green"]
    assert [e["image"]["ref"]["$link"] for e in embedded] == [blob_cid(i) for i in images]


def test_an_image_bluesky_would_refuse_is_refused_before_anything_is_sent(
    pds: Testbed, brand: ConnectedAccount
) -> None:
    connector = bluesky_connector_for(brand)
    listed = {"repo": connector.did, "collection": "app.bsky.feed.post"}
    before = Xrpc(pds.pds).query("com.atproto.repo.listRecords", listed)["records"]

    with pytest.raises(MediaRejectedError, match="over Bluesky's limit of 2,000,000 bytes"):
        connector.publish(
            OutboundPost(
                text="huge",
                media=(
                    MediaFile("huge.png", "image/png", png(1, 1, (0, 0, 0)) + bytes(2_000_000)),
                ),
            ),
            idempotency_key="img3",
        )
    with pytest.raises(MediaRejectedError, match="not a PNG image"):
        connector.publish(
            OutboundPost(text="fake", media=(MediaFile("fake.png", "image/png", b"GIF89a..."),)),
            idempotency_key="img4",
        )

    assert Xrpc(pds.pds).query("com.atproto.repo.listRecords", listed)["records"] == before
