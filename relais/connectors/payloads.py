"""Reading a network's JSON payloads defensively: what every connector does the same way.

A payload without a field the network documents as always present is malformed: it is logged
whole (so it can be studied) and skipped, and the rest of its page is kept.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from relais.connectors.base import ConnectorError

logger = logging.getLogger("relais.connectors")


class MalformedPayloadError(ValueError):
    """A payload without the fields the network documents as always present."""


def log_malformed(network: str, payload: Any, error: Exception) -> None:
    logger.warning(
        "skipped a malformed %s payload (%s); payload=%s",
        network,
        error,
        json.dumps(payload, sort_keys=True, default=str),
    )


def parse_iso_time(value: Any, name: str = "created_at") -> datetime:
    """An ISO 8601 time; one without a zone is UTC."""
    if not isinstance(value, str):
        raise MalformedPayloadError(f"{name} is {value!r}")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise MalformedPayloadError(f"{name} is {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def required(data: Any, key: str) -> Any:
    if not isinstance(data, dict) or data.get(key) in (None, ""):
        raise MalformedPayloadError(f"{key} is missing")
    return data[key]


def json_object(response: httpx.Response) -> dict[str, Any]:
    """An answer that must be a JSON object; anything else fails the call clearly (the path is
    named, never the query, which may carry a token)."""
    try:
        data = response.json()
    except ValueError as exc:
        raise ConnectorError(f"{response.request.url.path} answered something not JSON") from exc
    if not isinstance(data, dict):
        raise ConnectorError(
            f"{response.request.url.path} answered {type(data).__name__}, not an object"
        )
    return data
