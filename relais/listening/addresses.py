"""Alert channel addresses: shown masked, and refused when they point at private networks.

Channel URLs carry secrets (passwords in ``mailtos://``, tokens in chat and webhook URLs), so the
interface only ever shows a scheme and a host. Saving a channel whose notices the server would
send to its own network (the database, a metadata service, the intranet) is refused, as for
every URL a workspace types (``relais.connectors.netguard``).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from relais.connectors import netguard
from relais.connectors.netguard import UnsafeDestinationError

# Apprise schemes that POST to any web address (the "s" variants over TLS).
HTTP_LIKE_APPRISE = {
    "json": "http",
    "jsons": "https",
    "xml": "http",
    "xmls": "https",
    "form": "http",
    "forms": "https",
}


def mask_url(url: str) -> str:
    """Scheme and host only: ``https://hooks.example.com/…``.

    Apprise puts tokens where a host would be (``tgram://BOT_TOKEN/CHAT``), so a host is shown
    only when it looks like one: a domain name or an address.
    """
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "…"
    if not parts.scheme:
        return "…"
    if not (_is_address(host) or "." in host or host == "localhost"):
        host = ""
    shown = f"{parts.scheme}://{host}" if host else f"{parts.scheme}://"
    return shown + "/…" if url.rstrip("/") != shown else shown


def check_webhook_destination(url: str) -> None:
    """Refuse a webhook URL that is not http(s) or points at a private address."""
    netguard.check_destination(url)


def check_apprise_destination(url: str) -> None:
    """Refuse an Apprise URL that would make the server call a private address.

    The web-hook kinds (json://, xml://, form://) are checked like webhooks, their name resolved;
    other kinds go to their service's own host unless an address is given, which is checked.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as error:
        raise UnsafeDestinationError(_("The port of this address is not a number.")) from error
    scheme = parts.scheme.lower()
    if scheme in HTTP_LIKE_APPRISE:
        web_scheme = HTTP_LIKE_APPRISE[scheme]
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc += f":{port}"
        netguard.check_destination(f"{web_scheme}://{netloc}/")
    elif _is_address(host):
        netguard.refuse_private(host, [ipaddress.ip_address(host)])
    elif host == "localhost" or host.endswith(".localhost"):
        netguard.refuse_private(host, [ipaddress.ip_address("127.0.0.1")])


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
