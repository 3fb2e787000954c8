"""The one HTTP choke point for connectors: timeouts, retries with backoff, error mapping.

Every outbound request of every network goes through ``HttpClient.request`` so that a 429 or a 5xx
is retried the same way everywhere (honouring Retry-After), and so that an expired credential
always surfaces as ``CredentialsExpiredError`` rather than as a generic failure.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from relais.connectors.base import (
    ConnectorError,
    CredentialsExpiredError,
    RateLimitedError,
    TransientNetworkError,
)
from relais.connectors.netguard import PublicOnlyTransport

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
STREAM_READ_TIMEOUT = 90.0  # servers send heartbeats well within this
MAX_RETRY_AFTER = 120.0  # never sleep longer than this inside a task; give up and retry later


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpClient:
    def __init__(
        self,
        *,
        base_url: str = "",
        headers: dict[str, str] | None = None,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        public_only: bool = False,
    ) -> None:
        """`public_only` for URLs a workspace typed (webhooks): private addresses are refused."""
        if public_only and transport is None:
            transport = PublicOnlyTransport()
        self._client = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                error: ConnectorError = TransientNetworkError(f"{method} {url} timed out")
                error.__cause__ = exc
                wait = self._backoff(attempt)
            except httpx.TransportError as exc:
                error = TransientNetworkError(f"{method} {url} failed: {exc.__class__.__name__}")
                error.__cause__ = exc
                wait = self._backoff(attempt)
            else:
                if response.status_code < 400:
                    return response
                error = self._error_for(method, url, response)
                if not error.retryable:
                    raise error
                retry_after = (
                    error.retry_after if isinstance(error, TransientNetworkError) else None
                )
                wait = retry_after if retry_after is not None else self._backoff(attempt)
            if attempt == self.max_attempts or wait > MAX_RETRY_AFTER:
                raise error
            logger.info("retrying %s %s in %.1fs after: %s", method, url, wait, error)
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def stream_lines(
        self, method: str, url: str, *, read_timeout: float = STREAM_READ_TIMEOUT, **kwargs: Any
    ) -> Iterator[Iterator[str]]:
        """A long-lived response read line by line (server-sent events), errors mapped as above.

        One attempt: a stream's reader reconnects with its own backoff and resumes from its
        cursor. The read timeout bounds the silence tolerated between lines (heartbeats).
        """
        timeout = httpx.Timeout(DEFAULT_TIMEOUT.connect or 5.0, read=read_timeout)
        try:
            with self._client.stream(method, url, timeout=timeout, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error_for(method, url, response)
                yield response.iter_lines()
        except httpx.TimeoutException as exc:
            raise TransientNetworkError(f"{method} {url}: the stream went silent") from exc
        except httpx.TransportError as exc:
            raise TransientNetworkError(f"{method} {url} failed: {exc.__class__.__name__}") from exc

    def _backoff(self, attempt: int) -> float:
        # Full jitter keeps many workers from retrying in lockstep against one server.
        return random.uniform(0, self.backoff_base * 2 ** (attempt - 1))

    @classmethod
    def _error_for(cls, method: str, url: str, response: httpx.Response) -> ConnectorError:
        error = cls._classify(method, url, response)
        error.status_code = response.status_code
        error.body = response.text[:2000]
        return error

    @staticmethod
    def _classify(method: str, url: str, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        summary = f"{method} {url} answered {status}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return RateLimitedError(summary, retry_after)
        if status in RETRYABLE_STATUSES:
            return TransientNetworkError(summary, retry_after)
        if status in {401, 403}:
            return CredentialsExpiredError(summary)
        return ConnectorError(summary)
