import asyncio
import re
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse

from relais.core.events import publish_event

pytestmark = pytest.mark.django_db


def live_url(page: str) -> str:
    match = re.search(r'sse-connect="([^"]+)"', page)
    assert match, "the page follows no live events"
    return match.group(1).replace("&amp;", "&")


def first_event(response: Any) -> str:
    """The stream's first event. The stream runs for minutes: an event that never comes fails
    the test after 20 s instead of holding it that long."""

    async def read() -> str:
        async for chunk in response.streaming_content:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            if text.startswith("id:"):
                return text
        return ""

    async def read_or_give_up() -> str:
        return await asyncio.wait_for(read(), timeout=20)

    return async_to_sync(read_or_give_up)()


def test_a_change_made_while_the_page_loads_still_reaches_it(agent_client: Any, workspace: Any):
    publish_event(workspace.pk, "post.new", {"old": True})  # before the page: not for it
    page = agent_client.get(reverse("stream", args=[workspace.slug])).content.decode()
    publish_event(workspace.pk, "conversation.changed", {"id": 6})  # before the stream opens

    event = first_event(agent_client.get(live_url(page)))

    assert "event: conversation.changed" in event
    assert '"id": 6' in event


def test_a_reconnecting_browser_resumes_after_the_last_event_it_saw(
    agent_client: Any, workspace: Any
):
    page = agent_client.get(reverse("stream", args=[workspace.slug])).content.decode()
    publish_event(workspace.pk, "post.new", {"n": 1})
    publish_event(workspace.pk, "post.new", {"n": 2})
    seen = re.search(r"id: (\d+)", first_event(agent_client.get(live_url(page))))
    assert seen

    again = agent_client.get(live_url(page), headers={"Last-Event-ID": seen.group(1)})

    assert '"n": 2' in first_event(again)
