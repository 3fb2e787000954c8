import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from relais.accounts.models import Workspace
from relais.core.errors import RelaisError
from relais.pipeline.actions import do_process_batch
from relais.pipeline.models import PendingBatch
from relais.sandbox.actions import do_start_feed, do_tick_feed
from relais.sandbox.dataset import DATASETS
from relais.sandbox.models import FeedState, SandboxFeed


class Command(BaseCommand):
    help = "Drive the sandbox network: `replay` real posts into a workspace, or list `datasets`."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("datasets", help="list the shipped datasets")
        replay = sub.add_parser("replay", help="replay datasets into a workspace")
        replay.add_argument("--workspace", required=True, help="workspace short name (slug)")
        replay.add_argument("--speed", type=float, default=60.0, help="history seconds per second")
        replay.add_argument("--max-gap", type=float, default=20.0, help="longest pause, seconds")
        replay.add_argument("--dataset", action="append", choices=sorted(DATASETS), default=None)
        replay.add_argument("--restart", action="store_true", help="start from the first row")
        replay.add_argument(
            "--follow",
            action="store_true",
            help="drive the replay from this process until it ends (no worker needed)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "datasets":
            for name, info in sorted(DATASETS.items()):
                self.stdout.write(f"{name}: {info.title} [{info.language}] — {info.licence}")
            return
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['workspace']!r}")
        feeds = []
        for dataset in options["dataset"] or sorted(DATASETS):
            try:
                feeds.append(
                    do_start_feed(
                        workspace,
                        dataset,
                        speed=options["speed"],
                        max_gap=options["max_gap"],
                        restart=options["restart"],
                    )
                )
            except RelaisError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(
                f"replaying {dataset} into {workspace.slug} at {options['speed']:g}x speed"
            )
        if options["follow"]:
            self._follow([f.pk for f in feeds])

    def _follow(self, feed_ids: list[int]) -> None:
        """Tick and store in this process, for scripts and machines without a worker."""
        while SandboxFeed.objects.filter(pk__in=feed_ids, state=FeedState.RUNNING).exists():
            accepted = sum((r.accepted if (r := do_tick_feed(pk)) else 0) for pk in feed_ids)
            for batch_id in PendingBatch.objects.values_list("pk", flat=True):
                do_process_batch(batch_id)
            if accepted:
                self.stdout.write(f"{accepted} posts")
            else:
                time.sleep(0.5)
