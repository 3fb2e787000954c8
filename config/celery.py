"""The Celery application: the same task code runs on the filesystem broker and on Redis."""

import os

from celery import Celery

from relais.core.broker import use_atomic_filesystem_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
use_atomic_filesystem_transport()

app = Celery("relais")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_periodic_work(sender: Celery, **_kwargs: object) -> None:
    from django.conf import settings

    sender.add_periodic_task(
        settings.RELAIS["SANDBOX_TICK_SECONDS"], sender.signature("relais.sandbox.tick_all")
    )
    sender.add_periodic_task(
        settings.RELAIS["PIPELINE_SWEEP_SECONDS"], sender.signature("relais.pipeline.sweep")
    )
    sender.add_periodic_task(5.0, sender.signature("relais.publishing.publish_due"))
    sender.add_periodic_task(600.0, sender.signature("relais.publishing.check_boosts"))
    sender.add_periodic_task(60.0, sender.signature("relais.listening.evaluate_alerts"))
    sender.add_periodic_task(10.0, sender.signature("relais.connectors.poll_bluesky_all"))
    sender.add_periodic_task(
        settings.RELAIS["POLL_SECONDS"], sender.signature("relais.connectors.poll_accounts")
    )
    sender.add_periodic_task(
        60.0, sender.signature("relais.connectors.process_stranded_webhook_events")
    )
    sender.add_periodic_task(15.0, sender.signature("relais.inbox.deliver_due_webhooks"))
    sender.add_periodic_task(60.0, sender.signature("relais.inbox.announce_sla_breaches"))
