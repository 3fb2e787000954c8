"""A real worker killed after the network accepted a post, before Relais recorded it: one post.

The worst moment is held open without any hook in the product: this test locks the audit table,
so the worker's recording transaction (which starts with its audit entry) waits after the sandbox
accepted the post. The worker is then killed with SIGKILL, the lease runs out, and two fresh
workers with the beat take the target again: the same idempotency key makes the sandbox return
the post it already has, so exactly one post exists.
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

import psycopg
import pytest
from django.db import connection

from config.celery import app
from relais.core import clock
from relais.publishing import actions
from relais.publishing.models import Target, TargetStatus
from relais.sandbox.models import SandboxOutbound
from relais.tests.live_server import celery_worker_env, start_celery_worker

REDIS_URL = os.environ.get("RELAIS_TEST_REDIS_URL", "")
ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.scaleout,
    pytest.mark.skipif(not REDIS_URL, reason="set RELAIS_TEST_REDIS_URL to run on Redis"),
]


def worker_env(queue: str) -> dict[str, str]:
    return celery_worker_env(queue, REDIS_URL)


def send_publish_due(queue: str) -> None:
    with app.connection_for_write(REDIS_URL) as broker:
        app.send_task("relais.publishing.publish_due", queue=queue, connection=broker)


def wait_for(
    condition: Callable[[], bool],
    seconds: float,
    what: str,
    workers: list[subprocess.Popen[bytes]],
    logs: list[Path],
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if any(w.poll() is not None for w in workers):
            pytest.fail("a worker died: " + "".join(log.read_text() for log in logs))
        time.sleep(0.1)
    pytest.fail(f"{what} not seen in time: " + "".join(log.read_text() for log in logs))


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_the_network_accepted_never_posts_twice(
    agent, workspace, owner, brand_account, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker-kill test runs on PostgreSQL")
    draft = actions.do_create_draft(agent, workspace.pk, "Last 20 laptops -40%", [brand_account.pk])
    actions.do_submit_for_approval(agent, draft)
    actions.do_approve(owner, draft)
    actions.do_schedule(agent, draft, clock.now() + timedelta(seconds=1))
    target = draft.targets.get()
    time.sleep(1.1)

    queue = f"publish-{uuid.uuid4().hex[:8]}"
    env = worker_env(queue)
    db = connection.settings_dict
    blocker = psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=False
    )
    blocker.execute("LOCK TABLE accounts_auditentry IN SHARE MODE")
    logs = [tmp_path / f"worker{n}.log" for n in (1, 2, 3)]
    doomed = start_celery_worker("doomed", env, logs[0])
    try:
        send_publish_due(queue)
        wait_for(SandboxOutbound.objects.exists, 60, "the sandbox post", [doomed], logs[:1])
        time.sleep(0.5)  # the worker is now waiting to write its record
        target.refresh_from_db()
        assert (target.status, target.remote_id) == (TargetStatus.SCHEDULED, "")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
    finally:
        blocker.rollback()
        blocker.close()
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()

    target.refresh_from_db()
    assert target.status == TargetStatus.SCHEDULED
    assert target.lease_until is not None
    Target.objects.filter(pk=target.pk).update(lease_until=clock.now() - timedelta(seconds=1))
    # Recovery: the beat's run and two explicit ones race for the target on two workers.
    workers = [
        start_celery_worker("w2", env, logs[1], beat_schedule=tmp_path / "beat-schedule"),
        start_celery_worker("w3", env, logs[2]),
    ]
    try:
        send_publish_due(queue)
        send_publish_due(queue)

        def published() -> bool:
            target.refresh_from_db()
            return target.status == TargetStatus.PUBLISHED

        wait_for(published, 90, "the recorded publication", workers, logs[1:])
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)

    [outbound] = SandboxOutbound.objects.all()
    assert outbound.remote_id == target.remote_id
    assert outbound.idempotency_key == target.idempotency_key
    assert target.attempts == 2
