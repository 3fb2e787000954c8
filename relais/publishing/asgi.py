"""The tracked-link redirect answered in front of Django's middleware (ASGI).

Profiling ``/l/<code>`` (docs/benchmarks.md) showed the view itself costs microseconds: the time
goes to Django's ASGI handling, where each of the nine middleware runs its request and response
steps through ``sync_to_async``, about seventeen thread hand-offs per request. On a loaded
machine each hand-off waits for a core, which is what made the 95th percentile four times the
median. None of that middleware does anything for a bodiless redirect to another site, so this
wrapper answers ``GET /l/<code>`` itself on the event loop: the link comes from the process's
cache (the database is read in a thread only on a miss), the click is queued for the same batch
writer as the view's, and the security headers the middleware would add are sent as they would.

Anything else, and any request it is not sure about (an unknown code, a host Django would
refuse, HTTPS redirection or HSTS switched on), goes to Django unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host

from relais.core import clock
from relais.publishing import links

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Application = Callable[[Scope, Receive, Send], Awaitable[None]]

LINK_PATH = re.compile(r"/l/([A-Za-z0-9_-]{1,16})")
DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]  # what Django allows when DEBUG and none set


def with_link_redirects(django_application: Callable[..., Awaitable[None]]) -> Application:
    links.recorder.start()  # also replays the click journals a killed process left

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = LINK_PATH.fullmatch(scope["path"])
            if match and await _redirect(scope, send, match.group(1)):
                return
        await django_application(scope, receive, send)

    return application


async def _redirect(scope: Scope, send: Send, code: str) -> bool:
    """Send the redirect and return True, or return False and leave the request to Django."""
    headers = _headers(scope)
    if settings.SECURE_SSL_REDIRECT or settings.SECURE_HSTS_SECONDS:
        return False  # Django's SecurityMiddleware decides those redirections and headers
    if not _host_allowed(headers.get("host", "")):
        return False
    link = links.cached(code) or await sync_to_async(_resolve)(code)
    if link is None:
        return False  # Django answers the 404 page
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    forwarder = query.get(links.FORWARDER_PARAM, [""])[0]
    client = scope.get("client") or ("", 0)
    links.record_click(
        link, str(client[0]), headers.get("user-agent", ""), clock.now().date(), forwarder
    )
    response_headers = [
        (b"location", links.redirect_location(link, forwarder).encode("latin-1", "replace")),
        (b"cache-control", b"private, no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"0"),
        *_security_headers(),
    ]
    await send({"type": "http.response.start", "status": 302, "headers": response_headers})
    await send({"type": "http.response.body", "body": b""})
    return True


def _resolve(code: str) -> links.ResolvedLink | None:
    """A cache miss reads the database as a Django request would, connection released after."""
    try:
        return links.resolve(code)
    finally:
        close_old_connections()


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }


def _host_allowed(host: str) -> bool:
    """Django's own check (``HttpRequest.get_host``), so a refused host still gets its 400."""
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or (DEBUG_HOSTS if settings.DEBUG else [])
    return bool(domain) and validate_host(domain, allowed)


def _security_headers() -> list[tuple[bytes, bytes]]:
    """What SecurityMiddleware and XFrameOptionsMiddleware add to every answer."""
    found = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        found.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        found.append(
            (b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode())
        )
    found.append((b"x-frame-options", getattr(settings, "X_FRAME_OPTIONS", "DENY").encode()))
    return found
