"""Two real Celery workers on Redis and PostgreSQL share one replay: every post is stored once."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from relais.accounts.models import Workspace
from relais.inbox.models import Conversation, Message
from relais.pipeline.actions import do_ingest_items, do_route_orphans
from relais.pipeline.models import PendingBatch, Post
from relais.sandbox.actions import do_connect_sandbox_account, do_start_feed
from relais.sandbox.models import FeedState, SandboxFeed
from relais.sandbox.server import dataset_rows
from relais.tests.live_server import celery_worker_env, start_celery_worker

REDIS_URL = os.environ.get("RELAIS_TEST_REDIS_URL", "")
ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.scaleout,
    pytest.mark.skipif(not REDIS_URL, reason="set RELAIS_TEST_REDIS_URL to run on Redis"),
]


def worker_env(queue: str) -> dict[str, str]:
    return celery_worker_env(queue, REDIS_URL, RELAIS_SANDBOX_TICK_SECONDS="0.5")


@pytest.mark.django_db(transaction=True)
def test_two_workers_process_one_replay_and_store_every_post_once(make_workspace, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the scale-out test runs on PostgreSQL")
    rows = dataset_rows("twcs").rows
    shared, reference = make_workspace("Shared"), make_workspace("Reference")
    for workspace in (shared, reference):
        for handle in ("AppleSupport", "AmazonHelp", "Uber_Support", "SpotifyCares", "sprintcare"):
            do_connect_sandbox_account(workspace, "twcs", handle, [], actor=None)
    feed = do_start_feed(shared, "twcs", speed=10_000_000, max_gap=0.0001)

    queue = f"scaleout-{uuid.uuid4().hex[:8]}"
    env = worker_env(queue)
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    # The first worker also runs the beat, which ticks the replay, as in a real deployment.
    workers = [
        start_celery_worker("w1", env, logs[0], beat_schedule=tmp_path / "beat-schedule"),
        start_celery_worker("w2", env, logs[1]),
    ]
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            feed.refresh_from_db()
            if feed.state == FeedState.FINISHED and not PendingBatch.objects.exists():
                break
            if any(w.poll() is not None for w in workers):
                pytest.fail("a worker died: " + logs[0].read_text() + logs[1].read_text())
            time.sleep(0.5)
        else:
            pytest.fail(f"replay not done in time: {feed.emitted} emitted")
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)

    batches_per_worker = [log.read_text().count("process_batch") for log in logs]
    assert all(count > 0 for count in batches_per_worker), batches_per_worker
    stored = Post.objects.in_workspace(shared.pk)
    assert stored.count() == len(rows) == SandboxFeed.objects.get(pk=feed.pk).emitted
    assert stored.values("remote_id").distinct().count() == len(rows)

    # The same posts ingested by one process in order give the same inbox.
    do_route_orphans(shared.pk, grace=timedelta(0))
    from relais.connectors.networks.sandbox import _item_from_row

    items = [_item_from_row(row, row.time) for row in rows]
    for start in range(0, len(items), 500):
        do_ingest_items(reference.pk, "sandbox", items[start : start + 500])
    do_route_orphans(reference.pk, grace=timedelta(0))
    for model in (Conversation, Message):
        assert (
            model.objects.in_workspace(shared.pk).count()
            == model.objects.in_workspace(reference.pk).count()
        ), model.__name__
    assert Workspace.objects.count() == 2
