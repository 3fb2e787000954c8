"""Sending alert notices out: signed webhooks through the HTTP choke point, e-mail and chat
through Apprise. Each send is one attempt; retries are scheduled by the caller with backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from datetime import timedelta
from typing import Any

import apprise
import httpx

from relais.connectors.base import ConnectorError
from relais.connectors.client import HttpClient
from relais.listening.models import Alert, AlertChannel, ChannelKind

SIGNATURE_HEADER = "X-Relais-Signature"
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)

# Tests replace this with an httpx.MockTransport; None means the real network.
webhook_transport: httpx.BaseTransport | None = None


class DeliveryError(Exception):
    pass


def sign(secret: str, body: bytes) -> str:
    """What the receiver recomputes: HMAC-SHA256 of the exact body with the workspace secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with full jitter, capped at an hour."""
    ceiling = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)
    return timedelta(seconds=random.uniform(ceiling.total_seconds() / 2, ceiling.total_seconds()))


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
    """One attempt; raises DeliveryError with a reason fit to show on the channel."""
    if channel.kind == ChannelKind.WEBHOOK:
        _send_webhook(channel.target, payload, secret)
    else:
        _send_apprise(channel.target, payload)


def _send_webhook(url: str, payload: dict[str, Any], secret: str) -> None:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    client = HttpClient(max_attempts=1, transport=webhook_transport)
    try:
        client.request(
            "POST",
            url,
            content=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)},
        )
    except ConnectorError as error:
        raise DeliveryError(str(error)) from error
    except httpx.HTTPError as error:  # an invalid URL, for one
        raise DeliveryError(f"{error.__class__.__name__}: {error}") from error
    finally:
        client.close()


def _send_apprise(url: str, payload: dict[str, Any]) -> None:
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryError("Apprise does not understand this URL")
    title, body = notice_text(payload)
    if not notifier.notify(title=title, body=body):
        raise DeliveryError("Apprise could not deliver the notice")


def valid_apprise_url(url: str) -> bool:
    return bool(apprise.Apprise().add(url))
