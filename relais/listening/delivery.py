"""Sending alert notices out: signed webhooks through the HTTP choke point, e-mail and chat
through Apprise. Each send is one attempt; retries are scheduled by the caller with backoff.

Apprise opens its own connections (requests, smtplib), out of reach of the connect-time guard of
our HTTP client (`netguard.PublicOnlyTransport`). Checking its URL before the send is not enough:
a name can resolve to a public address for the check and to 127.0.0.1 for the connection (DNS
rebinding). So while Apprise sends, every name resolved in that context (Apprise copies the
context into its worker threads) is checked where it is resolved, and the connection is made to
the very answers checked: check and connection share one resolution.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import apprise

from relais.connectors import netguard, webhooks_out
from relais.connectors.credentials import UnreadableCredentialsError
from relais.connectors.netguard import UnsafeDestinationError
from relais.connectors.webhooks_out import DeliveryError
from relais.listening.addresses import check_apprise_destination, mask_url
from relais.listening.models import Alert, AlertChannel, ChannelKind

MAX_ATTEMPTS = 8


def notice_payload(alert: Alert, event: str, alert_url: str) -> dict[str, Any]:
    return {
        "event": f"alert.{event}",
        "alert": {
            "id": alert.pk,
            "workspace": alert.workspace_id,
            "query": {"id": alert.query_id, "name": alert.query.name, "text": alert.query.text},
            "metric": alert.metric,
            "status": alert.status,
            "started_at": alert.started_at.isoformat(),
            "detected_at": alert.detected_at.isoformat(),
            "ended_at": alert.ended_at.isoformat() if alert.ended_at else None,
            "observed": alert.observed,
            "expected": alert.expected,
            "peak": alert.peak,
            "reasons": alert.explanation.get("reasons", []),
            "terms": alert.explanation.get("terms", []),
            "url": alert_url,
        },
    }


def notice_text(payload: dict[str, Any]) -> tuple[str, str]:
    """A title and body for e-mail and chat (operators' channel; English like the payload keys)."""
    alert = payload["alert"]
    verb = "ended" if payload["event"] == "alert.closed" else "started"
    title = f"Relais alert {verb}: {alert['query']['name']} ({alert['metric']})"
    lines = [
        f"Since {alert['started_at']}: {alert['observed']} observed against"
        f" {alert['expected']:.2f} expected (peak {alert['peak']}).",
    ]
    if alert["reasons"]:
        lines.append("Reasons: " + ", ".join(f"{r} ({n})" for r, n in alert["reasons"]))
    if alert["terms"]:
        lines.append("Terms: " + ", ".join(f"{t} ({n})" for t, n in alert["terms"]))
    if alert["url"]:
        lines.append(alert["url"])
    return title, "\n".join(lines)


def send(channel: AlertChannel, payload: dict[str, Any], secret: str) -> None:
    """One attempt; raises DeliveryError with a reason fit to show on the channel.

    The reason never holds the channel's URL: its path and credentials are replaced by the
    masked address, since the reason is stored and shown.
    """
    try:
        url = channel.target
    except UnreadableCredentialsError:
        raise DeliveryError(
            "the address cannot be read (the server's secret key changed): add the channel again"
        ) from None
    try:
        if channel.kind == ChannelKind.WEBHOOK:
            webhooks_out.post_signed(url, payload, secret)
        else:
            _send_apprise(url, payload)
    except DeliveryError as error:
        raise DeliveryError(str(error).replace(url, mask_url(url))) from None


def _send_apprise(url: str, payload: dict[str, Any]) -> None:
    try:  # again at send time: the name may resolve elsewhere now
        check_apprise_destination(url)
    except UnsafeDestinationError as error:
        raise DeliveryError(str(error)) from None
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryError("Apprise does not understand this URL")
    title, body = notice_text(payload)
    send = _ApprisePass()
    with _public_names_only(send):
        delivered = notifier.notify(title=title, body=body)
    if send.refusals:  # Apprise reports a failed connection as False: say why
        raise DeliveryError(send.refusals[0])
    if not delivered:
        raise DeliveryError("Apprise could not deliver the notice")


@dataclass
class _ApprisePass:
    """One Apprise send; collects the reasons names were refused, from any of its threads."""

    refusals: list[str] = field(default_factory=list)


_current_pass: contextvars.ContextVar[_ApprisePass | None] = contextvars.ContextVar(
    "relais_apprise_pass", default=None
)
_install_lock = threading.Lock()

GetAddrInfo = Callable[..., list[Any]]


def _checking(resolve: GetAddrInfo) -> GetAddrInfo:
    """`resolve` (socket.getaddrinfo), refusing private answers during an Apprise send."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        answers = resolve(host, port, *args, **kwargs)
        current = _current_pass.get()
        if current is not None:
            addresses = [
                ipaddress.ip_address(str(answer[4][0]).split("%")[0]) for answer in answers
            ]
            try:
                netguard.refuse_private(str(host), addresses)
            except UnsafeDestinationError as error:
                current.refusals.append(str(error))
                # What every client library expects of a name it cannot use.
                raise socket.gaierror(socket.EAI_NONAME, str(error)) from None
        return answers

    getaddrinfo.relais_checks_apprise = True  # type: ignore[attr-defined]
    return getaddrinfo


@contextmanager
def _public_names_only(send: _ApprisePass) -> Iterator[None]:
    # Installed over whatever resolver is in place (once: other code is unaffected, the check
    # applies only in a send's context), and left in place so that a worker Apprise stopped
    # waiting for stays checked.
    with _install_lock:
        if not getattr(socket.getaddrinfo, "relais_checks_apprise", False):
            socket.getaddrinfo = _checking(socket.getaddrinfo)
    token = _current_pass.set(send)
    try:
        yield
    finally:
        _current_pass.reset(token)


def valid_apprise_url(url: str) -> bool:
    return bool(apprise.Apprise().add(url))
