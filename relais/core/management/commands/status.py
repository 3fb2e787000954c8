import json
from typing import Any

from django.core.management.base import BaseCommand

from relais.accounts.models import Workspace
from relais.pipeline.actions import pipeline_lag
from relais.sandbox.models import SandboxFeed
from relais.web.queries import workspace_counts


class Command(BaseCommand):
    help = "Per workspace: posts, conversations, messages and the pipeline's lag."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        workspaces = [_status(w) for w in Workspace.objects.order_by("slug")]
        if options["json"]:
            self.stdout.write(json.dumps({"workspaces": workspaces}))
            return
        for w in workspaces:
            self.stdout.write(
                f"{w['slug']}: {w['posts']} posts, {w['conversations']} conversations, "
                f"{w['messages']} messages; {w['lag']['pending_batches']} batches waiting "
                f"(oldest {w['lag']['oldest_pending_seconds']} s)"
            )


def _status(workspace: Workspace) -> dict[str, Any]:
    counts = workspace_counts(workspace.pk)
    return {
        "slug": workspace.slug,
        "name": workspace.name,
        "posts": counts["posts"],
        "conversations": counts["conversations"],
        "messages": counts["messages"],
        "conversations_by_status": counts["by_status"],
        "lag": pipeline_lag(workspace.pk),
        "sandbox_feeds": [
            {"dataset": f.dataset, "state": f.state, "emitted": f.emitted, "skipped": f.skipped}
            for f in SandboxFeed.objects.in_workspace(workspace.pk).order_by("dataset")
        ],
    }
