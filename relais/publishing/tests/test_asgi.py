"""The tracked-link fast path in front of Django: same redirect, same clicks, the rest untouched."""

import asyncio

import httpx
import pytest
from django.core.asgi import get_asgi_application
from django.db import connections

from relais.publishing import actions, links
from relais.publishing.asgi import with_link_redirects
from relais.publishing.models import LinkClick

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
pytestmark = pytest.mark.django_db(transaction=True)


def get(path: str, host: str = "127.0.0.1", agent: str = BROWSER) -> httpx.Response:
    application = with_link_redirects(get_asgi_application())

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=application, client=("203.0.113.5", 4000))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            return await client.get(path, headers={"User-Agent": agent})

    return asyncio.run(call())


@pytest.fixture(autouse=True)
def _request_connections_closed():
    """Each request's connection closed at its end, as with CONN_MAX_AGE 0: none stays open in
    an executor thread, which would keep PostgreSQL from dropping the test database."""
    database = connections.settings["default"]
    kept = database["CONN_MAX_AGE"]
    database["CONN_MAX_AGE"] = 0
    yield
    database["CONN_MAX_AGE"] = kept


@pytest.fixture
def link(agent, workspace):
    return actions.do_create_link(
        agent, workspace.pk, "https://shop.example/pc?ref=1", utm_source="bluesky"
    )


def test_the_redirect_carries_utm_the_forwarder_and_the_security_headers(link):
    response = get(f"/l/{link.code}?via=camille")
    assert response.status_code == 302
    assert response.headers["location"] == (
        "https://shop.example/pc?ref=1&utm_source=bluesky&utm_medium=social&via=camille"
    )
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "private, no-store"
    get(f"/l/{link.code}")  # the same visitor again today
    get(f"/l/{link.code}", agent="Twitterbot/1.0")
    links.recorder.flush()
    click = LinkClick.objects.get(link=link)
    assert click.forwarder == "camille"
    assert "203.0.113" not in click.visitor


def test_what_the_fast_path_is_unsure_of_goes_to_django(link):
    assert get("/l/unknown-code").status_code == 404
    assert get(f"/l/{link.code}", host="evil.example").status_code == 400
    assert get(f"/l/{link.code}/offer/").status_code == 404  # Django's landing view: no offer
    assert get("/accounts/login/").status_code == 200
