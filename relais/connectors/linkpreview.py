"""What a web page says about itself (OpenGraph), for the composer's link previews.

The address comes from what a workspace member typed, so the page is read like any other
workspace-given URL: through ``HttpClient(public_only=True)``'s guard (never a private address,
redirects included), with a short time budget and a size cap: only the first ``MAX_BYTES`` are
read, and reading stops at ``TIME_BUDGET`` seconds even if the server drips bytes slowly.
The HTML is parsed by the standard library's tolerant parser and only a few ``<meta>`` values
and the ``<title>`` are kept, each cut to a length; an image address is kept only if http(s).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
from django.utils.translation import gettext as _

from relais.connectors.base import ConnectorError
from relais.connectors.client import HttpClient
from relais.connectors.netguard import PublicOnlyTransport

MAX_BYTES = 256 * 1024  # OpenGraph tags live in <head>, well within this
TIME_BUDGET = 5.0  # seconds for the whole read, whatever the server's pace
TIMEOUT = httpx.Timeout(4.0, connect=3.0)
LIMITS = {"title": 300, "description": 1000, "image_url": 2000, "site_name": 200}
USER_AGENT = "RelaisLinkPreview/1.0 (+https://relais.example/link-preview)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([\w-]+)", re.IGNORECASE)


class LinkPreviewError(ConnectorError):
    """The page gave no preview; the message says why, for the composer."""


@dataclass(frozen=True)
class PagePreview:
    url: str  # where the page was found, after redirects
    title: str
    description: str
    image_url: str
    site_name: str


class CappedStream(httpx.SyncByteStream):
    """A response body cut at ``limit`` bytes or when the time budget runs out."""

    def __init__(self, inner: httpx.SyncByteStream, limit: int, deadline: float) -> None:
        self.inner = inner
        self.limit = limit
        self.deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        left = self.limit
        for chunk in self.inner:
            yield chunk[:left]
            left -= len(chunk)
            if left <= 0 or time.monotonic() > self.deadline:
                break

    def close(self) -> None:
        self.inner.close()


class CappedTransport(httpx.BaseTransport):
    """The public-only transport, with every body cut (``CappedStream``) and non-HTML skipped."""

    def __init__(self, inner: httpx.BaseTransport, limit: int, budget: float) -> None:
        self.inner = inner
        self.limit = limit
        self.budget = budget

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not _is_html(response.headers.get("content-type", "")):
            response.close()  # a video or an archive: nothing of it is read
            return httpx.Response(response.status_code, headers=response.headers, content=b"")
        assert isinstance(response.stream, httpx.SyncByteStream)
        deadline = time.monotonic() + self.budget
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=CappedStream(response.stream, self.limit, deadline),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()


def _is_html(content_type: str) -> bool:
    return content_type.split(";", maxsplit=1)[0].strip().lower() in HTML_TYPES


def preview_client() -> HttpClient:
    """One attempt, short timeouts, public addresses only (the guard of ``public_only=True``)."""
    transport = CappedTransport(PublicOnlyTransport(), MAX_BYTES, TIME_BUDGET)
    return HttpClient(
        headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"},
        max_attempts=1,
        timeout=TIMEOUT,
        transport=transport,
    )


def fetch_preview(url: str, client: HttpClient | None = None) -> PagePreview:
    """The page's title, description, image and site name, or ``LinkPreviewError``."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise LinkPreviewError(_("Give an http:// or https:// address."))
    owned = client is None
    client = client or preview_client()
    try:
        response = client.request("GET", url, follow_redirects=True)
    except LinkPreviewError:
        raise
    except ConnectorError as error:
        raise LinkPreviewError(str(error) or type(error).__name__) from error
    finally:
        if owned:
            client.close()
    if not _is_html(response.headers.get("content-type", "")):
        raise LinkPreviewError(_("This address is not a web page."))
    found = read_meta(_decode(response))
    final_url = str(response.url)
    preview = PagePreview(
        url=final_url,
        title=_cut(
            found.get("og:title") or found.get("twitter:title") or found.get("title"), "title"
        ),
        description=_cut(
            found.get("og:description")
            or found.get("twitter:description")
            or found.get("description"),
            "description",
        ),
        image_url=_image(final_url, found.get("og:image") or found.get("twitter:image")),
        site_name=_cut(found.get("og:site_name") or urlsplit(final_url).hostname, "site_name"),
    )
    if not (preview.title or preview.description or preview.image_url):
        raise LinkPreviewError(_("This page gives no title, description or image."))
    return preview


def _decode(response: httpx.Response) -> str:
    body = response.content
    encoding = response.charset_encoding
    if encoding is None and (declared := META_CHARSET.search(body[:4096])):
        encoding = declared.group(1).decode("ascii")
    try:
        return body.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _cut(value: str | None, field: str) -> str:
    text = " ".join((value or "").split())
    limit = LIMITS[field]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _image(page_url: str, value: str | None) -> str:
    if not value:
        return ""
    address = urljoin(page_url, value.strip())
    if urlsplit(address).scheme not in ("http", "https") or len(address) > LIMITS["image_url"]:
        return ""
    return address


class MetaReader(HTMLParser):
    """Collects ``<meta property|name=... content=...>`` and the ``<title>`` text of <head>."""

    WANTED = frozenset(
        {
            "og:title",
            "og:description",
            "og:image",
            "og:image:url",
            "og:site_name",
            "twitter:title",
            "twitter:description",
            "twitter:image",
            "description",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, str] = {}
        self.in_title = False
        self.title: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag == "body":
            self.done = True
        elif tag == "title":
            self.in_title = True
        elif tag == "meta":
            values = {name.lower(): value or "" for name, value in attrs}
            key = (values.get("property") or values.get("name") or "").strip().lower()
            key = "og:image" if key == "og:image:url" else key
            if key in self.WANTED and key not in self.found:
                self.found[key] = values.get("content", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag == "head":
            self.done = True

    def handle_data(self, data: str) -> None:
        if self.in_title and not self.done and sum(map(len, self.title)) < LIMITS["title"]:
            self.title.append(data)


def read_meta(html: str) -> dict[str, str]:
    """The wanted meta values and ``title``; broken or hostile markup gives what it can."""
    reader = MetaReader()
    try:
        reader.feed(html)
        reader.close()
    except (AssertionError, ValueError):  # the parser's own complaints about broken markup
        pass
    found = dict(reader.found)
    if reader.title:
        found["title"] = "".join(reader.title)
    return found
