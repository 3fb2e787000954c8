"""The long-running readers (`relais stream`): one Bluesky firehose connection per account.

Each page read from the stream is accepted with its cursor in one transaction
(``do_accept_bluesky_page``), so a restart resumes after the last stored event, without loss
or duplicates. An outage backs off and reconnects from the stored cursor; an expired or revoked
credential marks the account "reconnect needed" and stops its consumer.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Iterable
from contextlib import ExitStack

from django.db import close_old_connections, connections

from relais.connectors import queries
from relais.connectors.actions import (
    LEASE_SECONDS,
    bluesky_connector_for,
    do_accept_bluesky_page,
    do_mark_reconnect_needed,
    release_lease,
    renew_lease,
    take_lease,
)
from relais.connectors.base import CredentialsExpiredError, TransientNetworkError
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.bluesky import BlueskyPage, StreamError, open_stream

logger = logging.getLogger(__name__)

PAGE_IDLE_SECONDS = 0.02  # a page closes after this much quiet: bounds the delay to the inbox
PAGE_LIMIT = 1000
MAX_BACKOFF_SECONDS = 60.0


def consume_account(
    account_id: int, stop: threading.Event, *, ready: threading.Event | None = None
) -> None:
    """Follow one account's firehose until ``stop`` is set or the account stops being active."""
    try:
        _consume(account_id, stop, ready)
    finally:
        connections.close_all()  # this thread's own database connections


def _consume(account_id: int, stop: threading.Event, ready: threading.Event | None) -> None:
    failures = 0
    while not stop.is_set():
        close_old_connections()
        account = ConnectedAccount.objects.get(pk=account_id)
        if account.status != AccountStatus.ACTIVE:
            logger.info("%r is %s: its consumer stops", account, account.status)
            return
        try:
            _follow(account, stop, ready)
            failures = 0
        except CredentialsExpiredError as exc:
            do_mark_reconnect_needed(account, exc)
            return
        except (TransientNetworkError, StreamError) as exc:
            failures += 1
            wait = _backoff(failures)
            logger.warning("firehose of %r failed (%s); reconnecting in %.1fs", account, exc, wait)
            stop.wait(wait)
        except Exception:
            # A long-running consumer never dies quietly: the error is logged with its trace,
            # kept on the account for admins, and the stream resumes from the stored cursor.
            failures += 1
            logger.exception("consumer of %r failed; restarting from the stored cursor", account)
            ConnectedAccount.objects.filter(pk=account_id).update(
                last_error=traceback.format_exc(limit=3)[-2000:]
            )
            stop.wait(_backoff(failures))


def _backoff(failures: int) -> float:
    # Full jitter keeps many consumers from reconnecting in lockstep after a shared outage.
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures))


def _follow(
    account: ConnectedAccount, stop: threading.Event, ready: threading.Event | None
) -> None:
    if not take_lease(account.pk):
        raise AccountBusyError(f"another reader holds {account!r}")
    try:
        with AccountStream(account) as stream:
            if ready is not None:
                ready.set()
            renewed = time.monotonic()
            while not stop.is_set():
                stream.pump(idle=PAGE_IDLE_SECONDS, max_seconds=1.0)
                if time.monotonic() - renewed > LEASE_SECONDS / 3:
                    if not renew_lease(account.pk):
                        return  # disconnected or marked "reconnect needed" elsewhere
                    renewed = time.monotonic()
    finally:
        release_lease(account.pk)


class AccountBusyError(TransientNetworkError):
    """A poll task is reading this account right now: try again shortly."""


class AccountStream:
    """An open firehose for one account; each ``pump`` accepts one page with its cursor."""

    def __init__(self, account: ConnectedAccount) -> None:
        self.account = account
        self.connector = bluesky_connector_for(account)
        # The stream itself needs no login: check it so a revoked credential shows now.
        self.connector.check_session()
        self.connector.brand_filter.watch(queries.watched_threads(account))
        self.seq: int | None = (account.cursor or {}).get("seq")
        self._resources = ExitStack()
        self.stream = self._resources.enter_context(open_stream(self.connector.firehose, self.seq))

    def pump(self, *, idle: float, max_seconds: float) -> BlueskyPage:
        page = self.connector.read(
            self.stream, self.seq, limit=PAGE_LIMIT, idle=idle, max_seconds=max_seconds
        )
        if page.items or page.engagements or page.cursor.get("seq") != self.seq:
            do_accept_bluesky_page(self.account, page)
            self.seq = page.cursor.get("seq", self.seq)
        return page

    def close(self) -> None:
        self._resources.close()

    def __enter__(self) -> AccountStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def streamed_accounts(networks: Iterable[str]) -> list[tuple[int, str]]:
    """(id, network) of the active accounts a long-running reader follows."""
    active = ConnectedAccount.objects.filter(
        network__in=list(networks), status=AccountStatus.ACTIVE
    ).values_list("pk", "network", "cursor")
    return [
        (account_id, network)
        for account_id, network, cursor in active
        # A Bluesky account on an AppView is read from its notifications by the beat's poll.
        if not (network == "bluesky" and (cursor or {}).get("source") == "notifications")
    ]


def follow_all(stop: threading.Event, *, rescan_seconds: float = 30.0) -> None:
    """Keep one reader thread per active account of a streamed network until ``stop`` is set.

    Bluesky accounts follow their firehose; Mastodon accounts their server's streams
    (``mastodon_stream.py``). Accounts connected (or reconnected) while this runs are picked up
    at the next rescan.
    """
    from relais.connectors.mastodon_stream import consume_mastodon_account

    readers = {"bluesky": consume_account, "mastodon": consume_mastodon_account}
    threads: dict[int, threading.Thread] = {}
    while not stop.is_set():
        close_old_connections()
        for account_id, network in streamed_accounts(readers):
            if account_id not in threads or not threads[account_id].is_alive():
                threads[account_id] = threading.Thread(
                    target=readers[network],
                    args=(account_id, stop),
                    name=f"{network}-{account_id}",
                    daemon=True,
                )
                threads[account_id].start()
        stop.wait(rescan_seconds)
    for thread in threads.values():
        thread.join(timeout=5)
    connections.close_all()
