"""Refusing to send requests to private addresses on behalf of a workspace (SSRF guard).

Workspace members type URLs that the server then calls: alert and CRM webhooks, chat
notifications. Without a guard, such a URL could reach the deployment's own database, cloud
metadata service or intranet. Two checks:

- ``check_destination(url)`` when the URL is saved, for a clear message in the form;
- ``PublicOnlyTransport`` at connect time, which checks the address actually connected to, so a
  name that resolved to a public address when saved and to 127.0.0.1 later (DNS rebinding) is
  still refused.

Deployments whose receivers live on their own network set RELAIS_ALLOW_PRIVATE_DESTINATIONS=1.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from relais.connectors.base import ConnectorError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeDestinationError(ConnectorError):
    """The URL points at an address a workspace may not make the server call."""


def private_destinations_allowed() -> bool:
    return bool(settings.RELAIS["ALLOW_PRIVATE_DESTINATIONS"])


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeDestinationError(
            _("The host %(host)s does not resolve.") % {"host": host}
        ) from error
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def refuse_private(host: str, addresses: Iterable[Address]) -> None:
    if private_destinations_allowed():
        return
    for address in addresses:
        if not is_public(address):
            raise UnsafeDestinationError(
                _("%(host)s is a private address (%(address)s): Relais only calls public ones.")
                % {"host": host, "address": address}
            )


def check_destination(url: str) -> None:
    """Refuse a URL that is not http(s) or whose host resolves to a non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestinationError(_("Give an http:// or https:// address."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise UnsafeDestinationError(_("The port of this address is not a number.")) from error
    refuse_private(parts.hostname, resolve(parts.hostname, port))


class PublicOnlyBackend(httpcore.SyncBackend):
    """Resolves the host itself and connects only to public addresses, to the one it checked."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve(host, port)
        refuse_private(host, addresses)
        # TLS still verifies the certificate against `host`: httpcore passes the origin's name
        # to start_tls, not the address connected to.
        return super().connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)


class PublicOnlyTransport(httpx.HTTPTransport):
    """httpx's transport with the connection pool built on ``PublicOnlyBackend``, no proxies."""

    def __init__(self) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool in __init__ without a backend parameter; replace it with the same
        # pool over the guarded backend (httpx 0.28 reads only `_pool` afterwards).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=PublicOnlyBackend(),
        )
