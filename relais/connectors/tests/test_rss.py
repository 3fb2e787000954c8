"""The RSS/Atom connector against a real local HTTP server serving feed files.

The server answers conditional GETs (ETag and Last-Modified, 304 when unchanged), and can be told
to fail first with a 500 or a 429 (with Retry-After), so backoff and resuming are exercised over
real HTTP.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from relais.accounts.models import Workspace
from relais.connectors.base import AccountContext, PostKind, TransientNetworkError
from relais.connectors.client import HttpClient
from relais.connectors.networks.rss import FeedPage, RssConnector
from relais.connectors.tests.feedserver import FIXTURES, LAST_MODIFIED, FeedServer
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.models import Post, Routing


def rss(feeds: FeedServer, path: str, sleeps: list[float] | None = None) -> RssConnector:
    http = HttpClient(sleep=(sleeps if sleeps is not None else []).append)
    account = AccountContext(workspace_id=1, handle="press", settings={"url": feeds.url(path)})
    return RssConnector(account, http=http)


def test_rss_entries_become_posts_once(feeds: FeedServer, workspace: Workspace) -> None:
    feeds.files["/feed.rss"] = "press.rss"

    page = rss(feeds, "/feed.rss").fetch(None)
    report = do_ingest_items(workspace.pk, "rss", page.items)

    assert [item.remote_id for item in page.items] == [
        "https://telecoms-weekly.example/2024/08/podcast-42",  # a link and no guid
        "https://telecoms-weekly.example/2024/08/response-times",
        "tw-2024-0815",  # listed twice in the feed, delivered once
    ]
    assert page.skipped == 1  # the entry with neither link, guid nor title
    outage = page.items[-1]
    assert outage.kind == PostKind.POST
    assert outage.author.name == "Jane Porter"
    assert outage.text == (
        "Acme fibre outage hits three regions\n\n"
        "Customers of Acme lost their connection on Monday night.\n\n"
        "The operator says service is fully restored & promises a refund."
    )
    assert outage.created_at == datetime(2024, 8, 20, 9, 30, tzinfo=UTC)
    assert outage.lang == "en"
    assert outage.raw["link"] == "https://telecoms-weekly.example/2024/08/acme-fibre-outage"
    assert page.items[0].author.name == "Telecoms Weekly"  # no author: the feed speaks
    assert report.created == 3
    assert set(Post.objects.in_workspace(workspace.pk).values_list("routing", flat=True)) == {
        Routing.NOT_ADDRESSED
    }  # news about the brand is for listening, not the inbox


def test_an_unchanged_feed_costs_a_304_and_a_changed_one_only_its_new_entries(
    feeds: FeedServer,
) -> None:
    feeds.files["/feed.rss"] = "press.rss"
    first = rss(feeds, "/feed.rss").fetch(None)
    cursor = json.loads(json.dumps(first.cursor))  # as the account stores it

    unchanged = rss(feeds, "/feed.rss").fetch(cursor)
    feeds.files["/feed.rss"] = "press_updated.rss"
    changed = rss(feeds, "/feed.rss").fetch(json.loads(json.dumps(unchanged.cursor)))

    sent = feeds.requests[1][2]
    assert sent["if-none-match"] == first.cursor["etag"]
    assert sent["if-modified-since"] == LAST_MODIFIED
    assert feeds.statuses("/feed.rss") == [200, 304, 200]
    assert unchanged.items == []
    assert unchanged.cursor == cursor
    assert [item.remote_id for item in changed.items] == ["tw-2024-0821"]
    assert changed.cursor["etag"] != first.cursor["etag"]


def test_atom_entries_are_read(feeds: FeedServer) -> None:
    feeds.files["/atom.xml"] = "blog.atom"

    page = rss(feeds, "/atom.xml").fetch(None)

    tarifs, maintenance = page.items
    assert maintenance.remote_id == "tag:blog.hebergeur.example,2024:maintenance-roubaix"
    assert maintenance.text == (
        "Maintenance du datacenter de Roubaix\n\n"
        "Une intervention est prévue dans la nuit de jeudi.\n"
        "Les services d'Acme ne seront pas coupés."
    )
    assert (maintenance.author.name, maintenance.author.remote_id) == (
        "Équipe technique",
        "tech@hebergeur.example",
    )
    assert maintenance.created_at == datetime(2024, 8, 20, 9, 0, tzinfo=UTC)  # published, +02:00
    assert maintenance.lang == "fr"
    assert tarifs.text == "Nouveaux tarifs au 1er septembre\n\nLes offres changent, voir le détail."
    assert tarifs.created_at == datetime(2024, 8, 19, 8, 0, tzinfo=UTC)  # only updated


@pytest.mark.parametrize("name", ["not_a_feed.html", "broken.xml"])
def test_a_malformed_feed_is_skipped_with_its_raw_body_logged(
    feeds: FeedServer, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    feeds.files["/feed"] = name

    with caplog.at_level(logging.WARNING):
        page = rss(feeds, "/feed").fetch({"seen": ["kept"]})
        again = rss(feeds, "/feed").fetch(page.cursor)

    assert isinstance(page, FeedPage)
    assert page.items == []
    assert page.skipped == 1
    assert "is malformed" in page.error
    assert (FIXTURES / name).read_bytes()[:60].decode() in caplog.text.replace("\\n", "\n")
    assert page.cursor["seen"][0] == "kept"
    assert again.error == page.error  # still reported when the server says "unchanged"
    assert feeds.statuses("/feed") == [200, 304]


def test_a_server_error_is_retried_with_backoff(feeds: FeedServer) -> None:
    feeds.files["/feed.rss"] = "press.rss"
    feeds.fail("/feed.rss", 500)
    sleeps: list[float] = []

    page = rss(feeds, "/feed.rss", sleeps).fetch(None)

    assert feeds.statuses("/feed.rss") == [500, 200]
    assert len(sleeps) == 1
    assert len(page.items) == 3


def test_429_waits_as_long_as_the_server_asks(feeds: FeedServer) -> None:
    feeds.files["/feed.rss"] = "press.rss"
    feeds.fail("/feed.rss", 429, {"Retry-After": "7"})
    sleeps: list[float] = []

    page = rss(feeds, "/feed.rss", sleeps).fetch(None)

    assert sleeps == [7.0]
    assert feeds.statuses("/feed.rss") == [429, 200]
    assert len(page.items) == 3


def test_an_outage_raises_and_the_cursor_resumes_after_it(feeds: FeedServer) -> None:
    feeds.files["/feed.rss"] = "press.rss"
    first = rss(feeds, "/feed.rss").fetch(None)
    feeds.files["/feed.rss"] = "press_updated.rss"
    for _attempt in range(4):
        feeds.fail("/feed.rss", 503)

    with pytest.raises(TransientNetworkError, match="answered 503"):
        rss(feeds, "/feed.rss").fetch(first.cursor)
    resumed = rss(feeds, "/feed.rss").fetch(first.cursor)

    assert [item.remote_id for item in resumed.items] == ["tw-2024-0821"]


def test_a_long_feed_is_delivered_in_pages(feeds: FeedServer) -> None:
    feeds.files["/feed.rss"] = "press_updated.rss"
    delivered: list[str] = []
    cursor: dict[str, Any] | None = None
    for _page in range(5):
        page = rss(feeds, "/feed.rss").fetch(cursor, limit=2)
        delivered += [item.remote_id for item in page.items]
        cursor = page.cursor
        if not page.has_more:
            break

    assert sorted(delivered) == [
        "https://telecoms-weekly.example/2024/08/podcast-42",
        "https://telecoms-weekly.example/2024/08/response-times",
        "tw-2024-0815",
        "tw-2024-0821",
    ]
    assert cursor is not None
    assert "etag" in cursor  # kept only once every entry was delivered
    assert rss(feeds, "/feed.rss").fetch(cursor).items == []
