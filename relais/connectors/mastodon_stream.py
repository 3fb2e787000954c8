"""The long-running Mastodon reader: the server's streams wake up the cursor-driven fetch.

A stream event is only a signal. What it announces is read by ``do_poll_account`` from the stored
``min_id`` cursor, exactly as the beat's poll reads it, so an event missed while reconnecting, two
events for one notification, or a stream that never comes back lose and duplicate nothing: the
poll picks up whatever the stream did not announce. Signals arriving during a read are coalesced
into one more read. A server without the streaming API is left to the beat's poll.

Only the reader's own thread uses the database. Each listener thread is handed a connector built
before it starts and only reads the network: it opens no database connection, so none is left
to be closed from another thread when a listener outlives its reader (it waits on its stream
until the server speaks or the read times out).
"""

from __future__ import annotations

import logging
import random
import threading

from django.db import close_old_connections, connections

from relais.connectors.actions import do_mark_reconnect_needed, do_poll_account
from relais.connectors.base import ConnectorError, CredentialsExpiredError
from relais.connectors.models import AccountStatus, ConnectedAccount
from relais.connectors.networks.mastodon import MastodonConnector

logger = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 1.0  # another reader holds the account: read again once it is done
STATUS_CHECK_SECONDS = 30.0  # how soon a disconnected account's reader notices
MAX_BACKOFF_SECONDS = 60.0


class AccountReader:
    """One account: a listener thread per stream, and this thread reading when woken."""

    def __init__(self, account_id: int, stop: threading.Event) -> None:
        self.account_id = account_id
        self.stop = stop
        self.wake = threading.Event()
        self.refused: CredentialsExpiredError | None = None
        self.done = threading.Event()  # set when the reader must end (stop, refusal)

    def connector(self) -> MastodonConnector:
        from relais.connectors.registry import connector_for

        connector = connector_for(ConnectedAccount.objects.get(pk=self.account_id))
        assert isinstance(connector, MastodonConnector)
        return connector

    def run(self, ready: threading.Event | None = None) -> None:
        connector = self.connector()
        if not connector.streaming_offered():
            logger.info("%s offers no streaming API: its beat poll reads it", connector.instance)
            return
        for path, params in connector.streams():
            threading.Thread(
                target=self.listen,
                args=(self.connector(), path, params),  # built here: listeners use no database
                name=f"mastodon-{path}",
                daemon=True,
            ).start()
        self.wake.set()  # first read: whatever arrived since the stored cursor
        if ready is not None:
            ready.set()
        self.read_when_woken()
        if self.refused is not None:
            account = ConnectedAccount.objects.get(pk=self.account_id)
            do_mark_reconnect_needed(account, self.refused)

    def listen(self, connector: MastodonConnector, path: str, params: dict[str, str]) -> None:
        failures = 0
        while not self.done.is_set():
            try:
                connector.listen(path, params, self.signal)
                failures = 0
            except CredentialsExpiredError as exc:
                self.refused = exc
                self.done.set()
            except ConnectorError as exc:
                failures += 1
                wait = random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures))
                logger.warning("stream %s failed (%s); again in %.1fs", path, exc, wait)
                self.done.wait(wait)
            # Whatever happened while the stream was down, the cursor-driven read finds it.
            self.wake.set()

    def signal(self, event: str) -> None:
        self.wake.set()

    def read_when_woken(self) -> None:
        waited = 0.0
        while not (self.stop.is_set() or self.done.is_set()):
            if not self.wake.wait(timeout=1.0):
                waited += 1.0
                if waited >= STATUS_CHECK_SECONDS:
                    waited = 0.0
                    if not self.still_active():
                        break
                continue
            self.wake.clear()
            self.read_all()
        self.done.set()

    def still_active(self) -> bool:
        close_old_connections()
        return ConnectedAccount.objects.filter(
            pk=self.account_id, status=AccountStatus.ACTIVE
        ).exists()

    def read_all(self) -> None:
        while not (self.stop.is_set() or self.done.is_set()):
            close_old_connections()
            report = do_poll_account(self.account_id)
            if report.busy:
                if not self.still_active():
                    self.done.set()
                    return
                self.stop.wait(BUSY_RETRY_SECONDS)
                continue
            if not report.has_more:
                return


def consume_mastodon_account(
    account_id: int, stop: threading.Event, *, ready: threading.Event | None = None
) -> None:
    """Follow one Mastodon account's streams until ``stop`` is set or it stops being active."""
    try:
        AccountReader(account_id, stop).run(ready)
    except ConnectorError as exc:
        logger.warning("Mastodon account %s not followed: %s", account_id, exc)
    finally:
        if ready is not None:
            ready.set()  # whoever waits for the reader to be listening is not left waiting
        connections.close_all()
