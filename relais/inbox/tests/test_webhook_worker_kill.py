"""A real worker killed while a receiver holds an event: nothing is lost, order is kept.

The receiver (a real local HTTP server) accepts the first event and holds the second one without
answering; the worker waiting for that answer is killed with SIGKILL. The endpoint's lease runs
out, the beat's sweep runs on a fresh worker, and the receiver then gets the held event again,
with the same id, followed by the rest: a redelivery, never a loss.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from config.celery import app
from relais.conftest import make_item
from relais.core import clock
from relais.inbox import actions, webhooks
from relais.inbox.models import Conversation, WebhookDelivery, WebhookEndpoint
from relais.inbox.tests.receiver import CrmReceiver
from relais.pipeline.actions import do_ingest_items
from relais.tests.live_server import celery_worker_env, start_celery_worker

REDIS_URL = os.environ.get("RELAIS_TEST_REDIS_URL", "")

pytestmark = [
    pytest.mark.scaleout,
    pytest.mark.skipif(not REDIS_URL, reason="set RELAIS_TEST_REDIS_URL to run on Redis"),
]


def send(task: str, queue: str, *args: Any) -> None:
    with app.connection_for_write(REDIS_URL) as broker:
        app.send_task(task, args=args, queue=queue, connection=broker)


def wait_for(
    condition: Callable[[], bool],
    seconds: float,
    what: str,
    worker: subprocess.Popen[bytes],
    log: Path,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.poll() is not None:
            pytest.fail("the worker died: " + log.read_text())
        time.sleep(0.1)
    pytest.fail(f"{what} not seen in time: " + log.read_text())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("brand_account")
def test_a_worker_killed_mid_delivery_loses_nothing(owner, agent, workspace, settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker-kill test runs on PostgreSQL")
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    receiver = CrmReceiver()
    try:
        endpoint, receiver.secret = actions.do_create_webhook_endpoint(
            owner, workspace, receiver.url, list(webhooks.EVENT_TYPES)
        )
        # Tasks run eagerly in this process after each commit: hold the lease meanwhile so
        # that they leave the events queued for the worker.
        held = WebhookEndpoint.objects.filter(pk=endpoint.pk)
        held.update(lease_until=clock.now() + timedelta(minutes=5))
        do_ingest_items(workspace.pk, "sandbox", [make_item("free:1", "@free panne")])
        conversation = Conversation.objects.in_workspace(workspace.pk).get()
        actions.do_change_status(agent, conversation, "pending")
        actions.do_set_tags(agent, conversation, "fibre")
        assert receiver.attempts == []
        held.update(lease_until=None)
        receiver.hold_on = "conversation.created"

        queue = f"webhooks-{uuid.uuid4().hex[:8]}"
        env = celery_worker_env(queue, REDIS_URL, RELAIS_ALLOW_PRIVATE_DESTINATIONS="1")
        logs = [tmp_path / "doomed.log", tmp_path / "fresh.log"]
        doomed = start_celery_worker("doomed", env, logs[0])
        try:
            send("relais.inbox.deliver_webhooks", queue, endpoint.pk)
            wait_for(receiver.holding.is_set, 60, "the held event", doomed, logs[0])
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=30)
        finally:
            if doomed.poll() is None:
                doomed.kill()
                doomed.wait()
        receiver.release.set()

        endpoint.refresh_from_db()
        assert endpoint.lease_until is not None  # the dead worker's lease
        assert receiver.types() == ["contact.created"]
        held_id = receiver.attempts[-1]
        assert not WebhookDelivery.objects.get(event_id=held_id).delivered_at
        # Time passes: the lease runs out, and the beat's sweep finds the endpoint due again.
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            lease_until=clock.now() - timedelta(seconds=1)
        )
        fresh = start_celery_worker("fresh", env, logs[1])
        try:
            send("relais.inbox.deliver_due_webhooks", queue)
            wait_for(lambda: len(receiver.accepted) == 4, 60, "every event", fresh, logs[1])
        finally:
            fresh.terminate()
            fresh.wait(timeout=30)
    finally:
        receiver.close()

    assert receiver.types() == [
        "contact.created",
        "conversation.created",
        "conversation.status_changed",
        "conversation.tagged",
    ]
    assert receiver.accepted[1]["id"] == held_id  # redelivered under the same id
    assert receiver.attempts.count(held_id) == 2
    assert not WebhookDelivery.objects.filter(delivered_at__isnull=True).exists()
