"""Sending alert notices out: signed webhooks through the HTTP choke point, e-mail and chat
through Apprise. Each send is one attempt; retries are scheduled by the caller with backoff."""

from __future__ import annotations

from typing import Any

import apprise

from relais.connectors import webhooks_out
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
    if not notifier.notify(title=title, body=body):
        raise DeliveryError("Apprise could not deliver the notice")


def valid_apprise_url(url: str) -> bool:
    return bool(apprise.Apprise().add(url))
