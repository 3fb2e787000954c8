import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from relais.accounts.models import Workspace
from relais.pipeline.importing import import_lines


class Command(BaseCommand):
    help = "Import posts from a JSON lines file in the normalized format (docs/import-format.md)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="path of the .jsonl file, or - for standard input")
        parser.add_argument("--workspace", required=True, help="workspace short name (slug)")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {options['workspace']!r}")
        if options["file"] == "-":
            report = import_lines(workspace.pk, sys.stdin)
        else:
            path = Path(options["file"])
            if not path.is_file():
                raise CommandError(f"no such file: {path}")
            with path.open(encoding="utf-8", errors="replace") as lines:
                report = import_lines(workspace.pk, lines)
        for number, reason in report.invalid:
            self.stderr.write(f"line {number}: {reason}")
        self.stdout.write(
            f"{report.read} lines read, {report.imported} imported "
            f"({report.created} new, {report.imported - report.created} already there), "
            f"{len(report.invalid)} invalid"
        )
        if report.invalid and not report.imported:
            raise CommandError("nothing imported")
