"""Signed outgoing webhooks: how Relais tells a workspace's own systems that something happened.

Alert notices (listening) and CRM changes (inbox) go out the same way: a JSON body signed with
HMAC-SHA256 of the workspace's secret, one attempt per call through the HTTP choke point with
private addresses refused, retries scheduled by the caller with ``retry_delay``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from datetime import timedelta
from typing import Any

import httpx

from relais.connectors.base import ConnectorError
from relais.connectors.client import HttpClient

SIGNATURE_HEADER = "X-Relais-Signature"
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)

# Tests replace this with an httpx.MockTransport; None means the real network, guarded.
transport: httpx.BaseTransport | None = None


class DeliveryError(Exception):
    """One attempt failed; the message says why, fit to show on the failing endpoint."""


def sign(secret: str, body: bytes) -> str:
    """What the receiver recomputes: HMAC-SHA256 of the exact body with the workspace secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with full jitter, capped at an hour."""
    ceiling = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)
    return timedelta(seconds=random.uniform(ceiling.total_seconds() / 2, ceiling.total_seconds()))


def post_signed(url: str, payload: dict[str, Any], secret: str) -> None:
    """One signed POST; raises DeliveryError with the reason."""
    body = encode(payload)
    client = HttpClient(max_attempts=1, transport=transport, public_only=True)
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
