"""Server-sent events: open pages learn of new posts and conversation changes within a second.

The stream reads the ``LiveEvent`` table, so it works with any number of web and worker
processes and no message server. A page asks for the events after the newest one when it was
rendered (``?since=``, from the ``live_since`` context variable); each connection ends after a
while and the browser reconnects with ``Last-Event-ID``: nothing still retained is missed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponseBase, StreamingHttpResponse

from relais.accounts.models import Membership
from relais.core.events import events_after, latest_event_id

POLL_SECONDS = 0.5
CONNECTION_SECONDS = 300
KEEPALIVE_SECONDS = 15


async def events(request: HttpRequest, workspace_slug: str) -> HttpResponseBase:
    user = await request.auser()
    if not user.is_authenticated:
        raise Http404
    membership = await Membership.objects.filter(
        user_id=user.pk, workspace__slug=workspace_slug
    ).afirst()
    if membership is None:
        raise Http404
    # A reconnecting browser says what it saw last; a first connection says when its page was
    # rendered (``since``), so a change made while the page loaded is not missed.
    resume = request.headers.get("Last-Event-ID", "") or request.GET.get("since", "")
    start = (
        int(resume)
        if resume.isdigit()
        else await sync_to_async(latest_event_id)(membership.workspace_id)
    )
    response = StreamingHttpResponse(
        _event_stream(membership.workspace_id, start), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def _event_stream(workspace_id: int, last_id: int) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    loop = asyncio.get_running_loop()
    started = last_beat = loop.time()
    while loop.time() - started < CONNECTION_SECONDS:
        batch = await sync_to_async(events_after)(workspace_id, last_id)
        for event in batch:
            last_id = event.pk
            yield f"id: {event.pk}\nevent: {event.kind}\ndata: {json.dumps(event.payload)}\n\n"
        if loop.time() - last_beat > KEEPALIVE_SECONDS:
            last_beat = loop.time()
            yield ": keepalive\n\n"
        await asyncio.sleep(POLL_SECONDS)
