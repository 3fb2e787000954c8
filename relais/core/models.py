"""Workspace-scoped base model and the live-event outbox."""

from typing import Any, ClassVar, Self

from django.db import models


class WorkspaceQuerySet(models.QuerySet):
    def in_workspace(self, workspace_id: int) -> Self:
        return self.filter(workspace_id=workspace_id)


class WorkspaceOwned(models.Model):
    """Every brand-owned row carries its workspace; queries go through ``in_workspace``."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")

    objects: ClassVar[Any] = WorkspaceQuerySet.as_manager()

    class Meta:
        abstract = True


class LiveEvent(WorkspaceOwned):
    """An event for open browsers, written in the same transaction as the change it describes.

    Browsers follow the table through server-sent events, so an event is only seen once its
    change is committed, by any web process, with no message server needed.
    """

    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "id"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"
