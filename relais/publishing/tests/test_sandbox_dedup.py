"""The sandbox keeps one post per idempotency key even when two senders race (PostgreSQL)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from relais.connectors.base import OutboundPost
from relais.connectors.registry import connector_for
from relais.sandbox.models import SandboxOutbound


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_with_one_key_make_one_post(brand_account):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent inserts are tested on PostgreSQL")

    def send(_attempt: int) -> str:
        try:
            sent = connector_for(brand_account).publish(
                OutboundPost(text="Only once"), idempotency_key="same-key"
            )
            return sent.remote_id
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        remote_ids = set(pool.map(send, range(16)))
    assert len(remote_ids) == 1
    assert SandboxOutbound.objects.count() == 1
