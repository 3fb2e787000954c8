from typing import Any

from django.core.management.base import BaseCommand, CommandError

from relais.accounts.models import Workspace
from relais.pipeline.actions import do_reenrich_posts
from relais.pipeline.enrichers import current_enrichment


class Command(BaseCommand):
    help = "Enrich a workspace's stored posts again with the current models (after an upgrade)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workspace", required=True, help="workspace short name (slug)")
        parser.add_argument(
            "--all", action="store_true", help="redo every post, not only those of older models"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['workspace']!r}")
        count = do_reenrich_posts(workspace.pk, everything=options["all"])
        self.stdout.write(f"{count} posts re-enriched with {current_enrichment()}")
