import hashlib
import hmac
import json
from datetime import timedelta

import pytest

from relais.conftest import T0, make_item
from relais.core import clock
from relais.core.errors import ValidationFailedError
from relais.listening.actions import (
    do_create_channel,
    do_create_query,
    do_deliver_notices,
    do_evaluate_alerts,
    signing_key,
)
from relais.listening.models import Alert, AlertDelivery, AlertStatus, DeliveryStatus
from relais.listening.tests.receiver import Receiver
from relais.pipeline.actions import do_ingest_items

pytestmark = pytest.mark.django_db

SURGE = T0 + timedelta(hours=24)


@pytest.fixture
def history(workspace, owner):
    """A day of quiet mentions (one an hour), then twenty complaints in five minutes."""
    query = do_create_query(owner, workspace, name="Free", text="free OR freebox")
    quiet = [make_item(f"q{h}", f"free, hour {h}", minutes=60 * h) for h in range(24)]
    do_ingest_items(workspace.pk, "sandbox", quiet)
    return query


def surge(workspace, count=20):
    do_ingest_items(
        workspace.pk,
        "sandbox",
        [
            make_item(
                f"s{i}",
                "freebox en panne, coupure internet",
                handle=f"h{i}",
                minutes=24 * 60 + i * 0.2,
            )
            for i in range(count)
        ],
    )


@pytest.fixture
def at(monkeypatch):
    def set_now(moment):
        monkeypatch.setattr(clock, "now", lambda: moment)
        return moment

    return set_now


@pytest.fixture
def receiver(settings):
    """A local alert receiver; local addresses are allowed, as a deployment can allow them."""
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    server = Receiver()
    yield server
    server.close()


def test_one_alert_per_episode_closed_when_it_ends(workspace, history, at):
    surge(workspace)
    opened = []
    for minute in range(5, 20):
        opened += do_evaluate_alerts(workspace.pk, now=at(SURGE + timedelta(minutes=minute)))
    assert len(opened) == 1
    alert = Alert.objects.get()
    assert alert.status == AlertStatus.OPEN
    assert alert.started_at == SURGE
    assert alert.observed >= 12
    assert alert.expected < 1
    assert "panne" in dict(alert.explanation["terms"])
    assert len(alert.explanation["post_ids"]) == 5
    assert alert.explanation.get("also_unusual") in (None, ["negative_share"])
    for minute in range(20, 60, 5):
        do_evaluate_alerts(workspace.pk, now=at(SURGE + timedelta(minutes=minute)))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.CLOSED
    assert alert.ended_at is not None
    assert alert.ended_at > alert.started_at
    assert Alert.objects.count() == 1
    assert alert.explanation.get("also_unusual") in (None, ["negative_share"])  # kept on close


def test_quiet_history_raises_nothing(workspace, history, at):
    assert do_evaluate_alerts(workspace.pk, now=at(SURGE + timedelta(minutes=3))) == []


@pytest.mark.usefixtures("history")
def test_alerts_go_out_signed_to_webhooks(
    workspace, owner, at, receiver, django_capture_on_commit_callbacks
):
    do_create_channel(owner, workspace, name="Ops", kind="webhook", target=receiver.url())
    surge(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        do_evaluate_alerts(workspace.pk, now=at(SURGE + timedelta(minutes=5)))
    assert len(receiver.received) == 1
    body = receiver.received[0].body
    expected = hmac.new(signing_key(workspace.pk).encode(), body, hashlib.sha256).hexdigest()
    assert receiver.received[0].headers["x-relais-signature"] == "sha256=" + expected
    assert json.loads(body)["event"] == "alert.opened"
    assert AlertDelivery.objects.get().status == DeliveryStatus.SENT


@pytest.mark.usefixtures("history")
def test_a_failing_webhook_is_retried_with_backoff_and_shown(  # noqa: PLR0917
    workspace, owner, at, receiver, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level("INFO")  # what deployments log
    receiver.answer(500, 503)
    channel = do_create_channel(
        owner, workspace, name="Ops", kind="webhook", target=receiver.url("/hook/s3cret-token")
    )
    surge(workspace)
    now = at(SURGE + timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        do_evaluate_alerts(workspace.pk, now=now)
    notice = AlertDelivery.objects.get()
    channel.refresh_from_db()
    assert notice.status == DeliveryStatus.PENDING
    assert notice.attempts == 1
    assert channel.failing
    assert "500" in channel.last_error
    assert "s3cret-token" not in channel.last_error  # the stored reason shows the masked address
    assert notice.next_attempt_at > now
    assert do_deliver_notices(workspace.pk, now=now) == 0  # not due yet: nothing sent
    assert len(receiver.received) == 1
    later = now + timedelta(minutes=2)
    assert do_deliver_notices(workspace.pk, now=later) == 0  # the second answer is a 503
    assert do_deliver_notices(workspace.pk, now=later + timedelta(minutes=5)) == 1
    channel.refresh_from_db()
    assert not channel.failing
    assert len(receiver.received) == 3
    assert "s3cret-token" not in caplog.text  # never logged either


def test_a_channel_sends_at_most_once_per_interval(workspace, owner, at, receiver):
    channel = do_create_channel(owner, workspace, name="Ops", kind="webhook", target=receiver.url())
    query = do_create_query(owner, workspace, name="Q", text="free")
    now = at(T0)
    alerts = [
        Alert.objects.create(
            workspace=workspace,
            query=query,
            metric=metric,
            started_at=now,
            detected_at=now,
            observed=10,
            expected=1,
            peak=10,
        )
        for metric in ("volume", "negative_share")
    ]
    for alert in alerts:
        AlertDelivery.objects.create(
            workspace=workspace, alert=alert, channel=channel, event="opened", next_attempt_at=now
        )
    assert do_deliver_notices(workspace.pk, now=now) == 1
    assert AlertDelivery.objects.filter(status=DeliveryStatus.PENDING).get().next_attempt_at == (
        now + timedelta(minutes=5)
    )
    assert do_deliver_notices(workspace.pk, now=now + timedelta(minutes=5)) == 1
    assert len(receiver.received) == 2


def test_channel_addresses_are_checked(workspace, owner):
    with pytest.raises(ValidationFailedError):
        do_create_channel(owner, workspace, name="x", kind="webhook", target="ftp://nope")
    with pytest.raises(ValidationFailedError):
        do_create_channel(owner, workspace, name="x", kind="apprise", target="not a url")
    channel = do_create_channel(
        owner, workspace, name="Mail", kind="apprise", target="mailto://ops:pw@example.com"
    )
    assert channel.kind == "apprise"
