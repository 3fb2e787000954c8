"""Link previews read from a real local web server: OpenGraph, limits, hostile pages, the guard."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from pytest_django.fixtures import Settings

from relais.connectors import linkpreview
from relais.connectors.linkpreview import LinkPreviewError, fetch_preview
from relais.tests.http_server import LocalHttpServer, respond

PAGE = b"""<!doctype html><html><head>
<title>Refurbished laptops</title>
<meta property="og:title" content="Spring sale &amp; more">
<meta property="og:description" content="  ThinkPads   from 399 EUR ">
<meta property="og:image" content="/img/x1.jpg">
<meta property="og:site_name" content="Shop">
</head><body><meta property="og:title" content="ignored: in the body"></body></html>"""

HOSTILE = (
    b"<html><head><title>Half<script>alert(1)</script> a title"
    b'<meta property="og:image" content="javascript:alert(1)">'
    b'<meta property="og:description" content="' + b"x" * 5000 + b'">'
    b"<meta <<<< property=og:title content=broken <!-- unclosed"
)


PAGES = {
    "/page": ("text/html; charset=utf-8", PAGE),
    "/hostile": ("text/html", HOSTILE),
    "/huge": ("text/html", b"<html><head>" + b" " * 2_000_000 + PAGE),
    "/latin1": (
        "text/html",
        '<meta charset="iso-8859-1"><title>Été à prix doux</title>'.encode("latin-1"),
    ),
    "/video": ("video/mp4", b"\x00" * 100_000),
    "/bare": ("text/html", b"<html><body>nothing to say</body></html>"),
}


class Site(LocalHttpServer):
    """A brand's web site: pages, a redirect, and one that drips its bytes for a minute."""

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/moved":
            respond(handler, 302, headers={"Location": "/page"})
        elif handler.path == "/drip":
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                handler.send_response(200)
                handler.send_header("Content-Type", "text/html")
                handler.end_headers()
                handler.wfile.write(b"<html><head><title>Slow</title>")
                for _second in range(60):  # far longer than the time budget
                    handler.wfile.write(b" " * 10)
                    handler.wfile.flush()
                    time.sleep(0.1)
        else:
            kind, body = PAGES[handler.path]
            respond(handler, 200, body, {"Content-Type": kind})


@pytest.fixture
def site() -> Iterator[str]:
    server = Site()
    yield server.base_url
    server.close()


@pytest.fixture
def private_allowed(settings: Settings) -> None:
    """The test server is on 127.0.0.1; deployments allow that only when they say so."""
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}


@pytest.mark.usefixtures("private_allowed")
def test_opengraph_values_are_read_from_the_head_and_redirects_followed(site: str) -> None:
    preview = fetch_preview(f"{site}/moved")
    assert preview.url == f"{site}/page"
    assert preview.title == "Spring sale & more"
    assert preview.description == "ThinkPads from 399 EUR"
    assert preview.image_url == f"{site}/img/x1.jpg"
    assert preview.site_name == "Shop"


@pytest.mark.usefixtures("private_allowed")
def test_hostile_html_gives_bounded_plain_values(site: str) -> None:
    preview = fetch_preview(f"{site}/hostile")
    assert preview.image_url == ""  # javascript: is never kept
    assert len(preview.description) == linkpreview.LIMITS["description"]
    # An unclosed <title> runs to the end as text (as in a browser): kept as text, cut short.
    assert preview.title.startswith("Half")
    assert len(preview.title) <= linkpreview.LIMITS["title"]


@pytest.mark.usefixtures("private_allowed")
def test_only_the_first_bytes_are_read_and_a_drip_stops_at_the_time_budget(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(LinkPreviewError, match="no title"):
        fetch_preview(f"{site}/huge")  # its tags come after the size cap
    monkeypatch.setattr(linkpreview, "TIME_BUDGET", 0.5)
    assert fetch_preview(f"{site}/drip").title == "Slow"


@pytest.mark.usefixtures("private_allowed")
def test_charsets_and_pages_without_a_preview(site: str) -> None:
    assert fetch_preview(f"{site}/latin1").title == "Été à prix doux"
    with pytest.raises(LinkPreviewError, match="not a web page"):
        fetch_preview(f"{site}/video")
    with pytest.raises(LinkPreviewError, match="no title"):
        fetch_preview(f"{site}/bare")
    with pytest.raises(LinkPreviewError, match="http"):
        fetch_preview("file:///etc/passwd")


def test_a_private_address_is_never_fetched(site: str) -> None:
    with pytest.raises(LinkPreviewError, match="private address"):
        fetch_preview(f"{site}/page")
