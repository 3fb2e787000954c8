"""Publishing and reading live events (see ``LiveEvent``)."""

from datetime import timedelta
from typing import Any

from relais.core import clock
from relais.core.models import LiveEvent

EVENT_RETENTION = timedelta(hours=1)


def publish_event(workspace_id: int, kind: str, payload: dict[str, Any] | None = None) -> None:
    """Record an event; it becomes visible to browsers when the surrounding transaction commits."""
    LiveEvent.objects.create(workspace_id=workspace_id, kind=kind, payload=payload or {})


def events_after(workspace_id: int, last_id: int, limit: int = 100) -> list[LiveEvent]:
    return list(
        LiveEvent.objects.in_workspace(workspace_id).filter(id__gt=last_id).order_by("id")[:limit]
    )


def latest_event_id(workspace_id: int) -> int:
    latest = (
        LiveEvent.objects.in_workspace(workspace_id).order_by("-id").values_list("id", flat=True)
    )
    return latest.first() or 0


def prune_events() -> int:
    deleted, _ = LiveEvent.objects.filter(created_at__lt=clock.now() - EVENT_RETENTION).delete()
    return deleted
