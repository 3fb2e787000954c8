"""The Bluesky inbox read through a real AppView's notifications (``pytest -m bluesky``).

The full dev network of ``@atproto/dev-env`` (PLC, PDS, AppView, moderation) runs on
PostgreSQL and Redis (``RELAIS_DEVNET_POSTGRES_URL``, ``RELAIS_DEVNET_REDIS_HOST``); these tests
are skipped, saying why, only when it cannot start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from relais.accounts.models import User, Workspace
from relais.connectors.actions import (
    bluesky_connector_for,
    do_connect_bluesky_account,
    do_poll_bluesky_account,
)
from relais.connectors.base import ConnectorError, OutboundPost, PostKind
from relais.connectors.models import ConnectedAccount
from relais.connectors.networks import bluesky
from relais.connectors.networks.bluesky import Xrpc, build_facets
from relais.connectors.tests import bluesky_testbed
from relais.core import clock
from relais.inbox.actions import do_send_reply
from relais.inbox.models import Conversation
from relais.pipeline.models import Post
from relais.publishing.actions import do_create_draft
from relais.publishing.inbound import do_check_boosts
from relais.publishing.models import Forward, Target
from relais.publishing.tests.test_inbound import published
from relais.tests.live_server import free_port

pytestmark = [
    pytest.mark.bluesky,
    pytest.mark.timeout(1200),
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("bluesky_dev_network"),  # one network per run, not one per worker
]

PASSWORD = "appview-test-password-1"  # an account on a throwaway local network


@pytest.fixture(scope="module")
def network() -> Iterator[bluesky_testbed.DevNetwork]:
    if missing := bluesky_testbed.node_tools_missing():
        pytest.skip(f"the Bluesky dev network needs Node and npm: {missing}")
    try:
        started = bluesky_testbed.start_network()
    except bluesky_testbed.NetworkUnavailableError as exc:
        pytest.skip(str(exc))
    yield started
    started.stop()


def unique(prefix: str) -> str:
    return f"{prefix}{time.monotonic_ns() % 10**8}.test"


class Person:
    """Someone on the network, writing straight to their PDS like the Bluesky app would."""

    def __init__(self, network: bluesky_testbed.DevNetwork, handle: str) -> None:
        self.session = network.create_account(handle, PASSWORD)
        self.did = str(self.session["did"])
        self.xrpc = Xrpc(network.pds)

    def create(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        created_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return self.xrpc.procedure(
            "com.atproto.repo.createRecord",
            {
                "repo": self.did,
                "collection": collection,
                "record": {"$type": collection, "createdAt": created_at, **record},
            },
            token=self.session["accessJwt"],
        )

    def delete(self, uri: str) -> None:
        _did, collection, rkey = uri.removeprefix("at://").split("/")
        self.xrpc.procedure(
            "com.atproto.repo.deleteRecord",
            {"repo": self.did, "collection": collection, "rkey": rkey},
            token=self.session["accessJwt"],
        )

    def post(self, text: str, **record: Any) -> dict[str, Any]:
        def resolve(handle: str) -> str | None:
            found = self.xrpc.query("com.atproto.identity.resolveHandle", {"handle": handle})
            return str(found["did"])

        facets = build_facets(text, resolve)
        return self.create("app.bsky.feed.post", {"text": text, "facets": facets, **record})

    def notifications(self) -> list[dict[str, Any]]:
        listed = self.xrpc.query(
            "app.bsky.notification.listNotifications",
            {"limit": 100},
            token=self.session["accessJwt"],
        )
        return list(listed["notifications"])


def wait_for(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    """The AppView indexes what the PDS emits a moment later: wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture
def brand_person(network: bluesky_testbed.DevNetwork) -> Person:
    return Person(network, unique("brand"))


@pytest.fixture
def brand(
    network: bluesky_testbed.DevNetwork, brand_person: Person, workspace: Workspace, owner: User
) -> ConnectedAccount:
    account = do_connect_bluesky_account(
        workspace,
        brand_person.session["handle"],
        PASSWORD,
        actor=owner,
        service=network.pds,
        plc=network.plc,
    )
    # No chat service runs here (its calls would go to api.bsky.chat): chat is covered by
    # test_bluesky_chat.py.
    account.settings = {**account.settings, "chat": ""}
    account.save(update_fields=["settings"])
    return account


def test_mentions_replies_quotes_reposts_and_likes_arrive_once_through_notifications(
    network: bluesky_testbed.DevNetwork, brand: ConnectedAccount, brand_person: Person
) -> None:
    customer = Person(network, unique("customer"))
    announcement = bluesky_connector_for(brand).publish(
        OutboundPost(text="New plans are out"), idempotency_key="a1"
    )
    announced = bluesky_connector_for(brand).get_record(announcement.remote_id)
    subject = {"uri": announcement.remote_id, "cid": announced["cid"]}
    # Nobody is notified of their own posts: the brand's are read from its repository.
    assert do_poll_bluesky_account(brand.pk).accepted == 1
    assert Post.objects.get(remote_id=announcement.remote_id).direction == "outbound"
    brand.refresh_from_db()
    assert (brand.cursor or {})["source"] == "notifications"

    mention = customer.post(f"@{brand.handle} my order never arrived")
    reply = customer.post("Is fibre available in Lyon?", reply={"root": subject, "parent": subject})
    quote = customer.post("Finally!", embed={"$type": "app.bsky.embed.record", "record": subject})
    repost = customer.create("app.bsky.feed.repost", {"subject": subject})
    customer.create("app.bsky.feed.like", {"subject": subject})
    wait_for(lambda: len(brand_person.notifications()) >= 5)

    assert do_poll_bluesky_account(brand.pk).accepted == 4
    kinds = dict(
        Post.objects.filter(
            remote_id__in=[mention["uri"], reply["uri"], quote["uri"], repost["uri"]]
        ).values_list("remote_id", "kind")
    )
    assert kinds == {
        mention["uri"]: PostKind.POST,
        reply["uri"]: PostKind.REPLY,
        quote["uri"]: PostKind.QUOTE,
        repost["uri"]: PostKind.REPOST,
    }
    conversation = Conversation.objects.get(account=brand, thread_key=mention["uri"])
    assert conversation.customer.handle == customer.session["handle"]

    stored = Post.objects.get(remote_id=announcement.remote_id)
    assert stored.metrics == {"likes": 1, "reposts": 1, "replies": 1, "quotes": 1}

    assert do_poll_bluesky_account(brand.pk).accepted == 0  # nothing new, nothing again
    later = customer.post(f"@{brand.handle} any news?")
    wait_for(lambda: len(brand_person.notifications()) >= 6)
    assert do_poll_bluesky_account(brand.pk).accepted == 1
    assert Post.objects.filter(remote_id=later["uri"]).exists()


def published_just_now(
    brand: ConnectedAccount, owner: User, text: str
) -> tuple[Target, dict[str, str]]:
    """A brand post published through the composer's target, and its strong ref to forward."""
    draft = do_create_draft(owner, brand.workspace_id, text, [brand.pk])
    announcement = bluesky_connector_for(brand).publish(
        OutboundPost(text=text), idempotency_key=text
    )
    target = published(owner, draft, announcement.remote_id)
    Target.objects.filter(pk=target.pk).update(published_at=clock.now())
    announced = bluesky_connector_for(brand).get_record(announcement.remote_id)
    return target, {"uri": announcement.remote_id, "cid": announced["cid"]}


def test_a_deleted_repost_is_withdrawn_from_the_cascade(
    network: bluesky_testbed.DevNetwork, brand: ConnectedAccount, owner: User
) -> None:
    """The AppView sends no notification when a repost is deleted: the beat's check asks it
    who still reposts our recent posts (``getRepostedBy``)."""
    target, subject = published_just_now(brand, owner, "Spring offer")
    fans = [Person(network, unique("fan")) for _ in range(2)]
    reposts = [fan.create("app.bsky.feed.repost", {"subject": subject}) for fan in fans]
    reposters = bluesky_connector_for(brand).boosters
    wait_for(lambda: len(reposters(subject["uri"]) or ()) == 2)
    do_poll_bluesky_account(brand.pk)
    assert Forward.objects.filter(target=target, withdrawn_at=None).count() == 2

    assert do_check_boosts(target.pk) == 0  # both still repost
    fans[0].delete(reposts[0]["uri"])
    wait_for(lambda: reposters(subject["uri"]) == {fans[1].did})

    assert do_check_boosts(target.pk) == 1
    standing = Forward.objects.filter(target=target, withdrawn_at=None)
    assert list(standing.values_list("forwarder_id", flat=True)) == [fans[1].did]


def test_a_deleted_quote_is_withdrawn_but_a_quoter_who_still_reposts_stays(
    network: bluesky_testbed.DevNetwork, brand: ConnectedAccount, owner: User
) -> None:
    """Deleted quotes are not notified either: the check asks ``getQuotes`` too, and one
    listing naming a forwarder is enough to keep their forward standing."""
    target, subject = published_just_now(brand, owner, "Winter offer")
    quoting = {"$type": "app.bsky.embed.record", "record": subject}
    leaver, stayer = Person(network, unique("leaver")), Person(network, unique("stayer"))
    quote = leaver.post("Look at this", embed=quoting)
    stayer.post("Me too", embed=quoting)
    stayer.create("app.bsky.feed.repost", {"subject": subject})
    quoters = bluesky_connector_for(brand).quoters
    wait_for(lambda: len(quoters(subject["uri"]) or ()) == 2)
    do_poll_bluesky_account(brand.pk)
    assert Forward.objects.filter(target=target, withdrawn_at=None).count() == 2

    assert do_check_boosts(target.pk) == 0
    leaver.delete(quote["uri"])
    wait_for(lambda: quoters(subject["uri"]) == {stayer.did})

    assert do_check_boosts(target.pk) == 1
    standing = Forward.objects.filter(target=target, withdrawn_at=None)
    assert list(standing.values_list("forwarder_id", flat=True)) == [stayer.did]


def test_a_burst_larger_than_one_poll_is_read_over_several_polls_without_loss_or_repeat(
    network: bluesky_testbed.DevNetwork,
    brand: ConnectedAccount,
    brand_person: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = Person(network, unique("burst"))
    connector = bluesky_connector_for(brand)
    cursor = connector.fetch(None).cursor  # starts after the (empty) history
    sent = [customer.post(f"@{brand.handle} message {n}")["uri"] for n in range(7)]
    wait_for(lambda: len(brand_person.notifications()) >= 7)
    # Pages of 2 and one page per poll: the burst needs a gap carried over several polls.
    monkeypatch.setattr(bluesky, "NOTIFICATION_PAGE_SIZE", 2)

    delivered: list[str] = []
    polls = 0
    while True:
        page = connector.fetch(cursor, limit=1)
        delivered += [item.remote_id for item in page.items]
        cursor, polls = page.cursor, polls + 1
        if not page.has_more:
            break
    after_burst = customer.post(f"@{brand.handle} one more")["uri"]
    wait_for(lambda: len(brand_person.notifications()) >= 8)
    final = connector.fetch(cursor, limit=1)

    assert polls > 1
    assert sorted(delivered) == sorted(sent)
    assert len(delivered) == len(set(delivered))
    assert [item.remote_id for item in final.items] == [after_burst]
    assert "gap" not in final.cursor


def test_replies_deeper_in_a_customers_thread_join_its_conversation(
    network: bluesky_testbed.DevNetwork, brand: ConnectedAccount, brand_person: Person
) -> None:
    customer = Person(network, unique("thread"))
    neighbour = Person(network, unique("neighbour"))
    assert do_poll_bluesky_account(brand.pk).accepted == 0
    mention = customer.post(f"@{brand.handle} my parcel is lost")
    wait_for(brand_person.notifications)
    assert do_poll_bluesky_account(brand.pk).accepted == 1

    # Neither reply names the brand nor answers one of its posts: the AppView notifies it of
    # nothing, yet both belong to the customer's conversation.
    root = {"uri": mention["uri"], "cid": mention["cid"]}
    follow_up = customer.post("It was order 4412", reply={"root": root, "parent": root})
    parent = {"uri": follow_up["uri"], "cid": follow_up["cid"]}
    answer = neighbour.post("Same here since Monday", reply={"root": root, "parent": parent})

    def thread_indexed() -> bool:
        thread = customer.xrpc.query(
            "app.bsky.feed.getPostThread",
            {"uri": mention["uri"], "depth": 5},
            token=customer.session["accessJwt"],
        )["thread"]
        replies = thread.get("replies") or []
        return bool(replies and replies[0].get("replies"))

    wait_for(thread_indexed)
    assert len(brand_person.notifications()) == 1

    assert do_poll_bluesky_account(brand.pk).accepted == 2
    conversation = Conversation.objects.get(account=brand, thread_key=mention["uri"])
    in_conversation = set(conversation.messages.values_list("post__remote_id", flat=True))
    assert in_conversation == {mention["uri"], follow_up["uri"], answer["uri"]}
    assert Post.objects.get(remote_id=answer["uri"]).in_reply_to_remote_id == follow_up["uri"]
    assert do_poll_bluesky_account(brand.pk).accepted == 0  # nothing new, nothing again

    # A later reply under a watched post is found once the AppView has counted it.
    later = customer.post("Found it, thanks", reply={"root": root, "parent": parent})
    wait_for(lambda: do_poll_bluesky_account(brand.pk).accepted == 1)
    assert conversation.messages.filter(post__remote_id=later["uri"]).exists()


# -- private messages ---------------------------------------------------------------------------
# Bluesky's chat service is not open source and the dev network has none: the real PDS forwards
# chat calls to a local service that checks each one against the lexicons of the installed
# @atproto/api (see bluesky_testbed.ChatService). These tests prove the requests, the PDS's
# forwarding and the parsing; not the behaviour of Bluesky's own chat server.


@pytest.fixture(scope="module")
def lexicons() -> Iterator[bluesky_testbed.LexiconChecker]:
    checker = bluesky_testbed.LexiconChecker()
    yield checker
    checker.close()


@pytest.fixture
def chat(lexicons: bluesky_testbed.LexiconChecker) -> Iterator[bluesky_testbed.ChatService]:
    service = bluesky_testbed.ChatService(lexicons)
    yield service
    service.stop()
    assert service.violations == []  # every call matched the lexicon and carried a fit token


@pytest.fixture
def chatting_brand(
    brand: ConnectedAccount, brand_person: Person, chat: bluesky_testbed.ChatService
) -> ConnectedAccount:
    brand.settings = {**brand.settings, "chat": chat.service_id}
    brand.save(update_fields=["settings"])
    chat.handles[brand_person.did] = brand.handle
    return brand


def test_a_private_message_reaches_the_inbox_and_the_answer_goes_back_once(
    network: bluesky_testbed.DevNetwork,
    chatting_brand: ConnectedAccount,
    brand_person: Person,
    chat: bluesky_testbed.ChatService,
    agent: User,
) -> None:
    customer = Person(network, unique("dm"))
    chat.handles[customer.did] = customer.session["handle"]
    asked = chat.send(customer.did, brand_person.did, "Hello, where is my parcel? 📦")

    assert do_poll_bluesky_account(chatting_brand.pk).accepted == 1
    conversation = Conversation.objects.get(account=chatting_brand, thread_key=f"dm:{customer.did}")
    assert conversation.preview == "Hello, where is my parcel? 📦"
    assert conversation.customer.handle == customer.session["handle"]
    question = Post.objects.get(remote_id=f"chat/convo1/{asked['id']}")
    assert question.kind == PostKind.PRIVATE_MESSAGE

    sent = do_send_reply(
        agent, conversation, "It left our depot today", idempotency_key="dm1", private=True
    )
    [(convo_id, members)] = chat.convos.items()
    assert sorted(members) == sorted([customer.did, brand_person.did])
    answer = chat.messages[convo_id][-1]
    assert answer["text"] == "It left our depot today"
    assert answer["sender"] == {"did": brand_person.did}
    assert sent.remote_id == f"chat/{convo_id}/{answer['id']}"

    # The answer comes back in the chat log and is recognized as the one already stored.
    assert do_poll_bluesky_account(chatting_brand.pk).accepted == 1
    assert Post.objects.filter(remote_id=sent.remote_id).count() == 1
    assert conversation.messages.count() == 2

    # A retry (say, after a timeout) finds the message instead of sending it twice.
    again = bluesky_connector_for(chatting_brand).send_private_message(
        OutboundPost("It left our depot today", recipient=customer.did), idempotency_key="dm1"
    )
    assert again.remote_id == sent.remote_id
    assert len(chat.messages[convo_id]) == 2
    called = {nsid for nsid, _caller in chat.calls}
    assert called == {
        "chat.bsky.convo.getLog",
        "chat.bsky.convo.getConvoForMembers",
        "chat.bsky.convo.getMessages",
        "chat.bsky.convo.sendMessage",
    }
    assert {caller for _nsid, caller in chat.calls} == {brand_person.did}


def test_a_refused_message_says_why(
    network: bluesky_testbed.DevNetwork,
    chatting_brand: ConnectedAccount,
    chat: bluesky_testbed.ChatService,
) -> None:
    customer = Person(network, unique("closed"))
    chat.refusals["chat.bsky.convo.getConvoForMembers"] = (
        400,
        {"error": "MessagesDisabled", "message": "recipient has disabled incoming messages"},
    )

    with pytest.raises(ConnectorError, match="MessagesDisabled"):
        bluesky_connector_for(chatting_brand).send_private_message(
            OutboundPost("Hello", recipient=customer.did), idempotency_key="dm2"
        )
    assert chat.messages == {}


def test_posts_keep_arriving_when_the_chat_service_is_unreachable(
    network: bluesky_testbed.DevNetwork, brand: ConnectedAccount, brand_person: Person
) -> None:
    gone = f"did:web:localhost%3A{free_port()}#bsky_chat"  # nothing listens there
    brand.settings = {**brand.settings, "chat": gone}
    brand.save(update_fields=["settings"])
    customer = Person(network, unique("still"))
    mention = customer.post(f"@{brand.handle} hello?")
    wait_for(brand_person.notifications)

    assert do_poll_bluesky_account(brand.pk).accepted == 1
    assert Post.objects.filter(remote_id=mention["uri"]).exists()
    brand.refresh_from_db()
    assert "retry_after" in (brand.cursor or {})["chat"]
    assert "Bluesky chat refused" in (brand.cursor or {})["chat"]["error"]
