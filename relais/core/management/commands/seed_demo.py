from typing import Any

from django.core.management.base import BaseCommand

from relais.sandbox.actions import (
    DEMO_MAX_GAP,
    DEMO_PASSWORD,
    DEMO_SPEED,
    DEMO_USERS,
    do_seed_demo,
)


class Command(BaseCommand):
    help = 'Create the "Demo" workspace with its sandbox accounts and live replays (once).'

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--speed", type=float, default=DEMO_SPEED, help="as for `relais run --speed`"
        )
        parser.add_argument("--max-gap", type=float, default=DEMO_MAX_GAP)

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = do_seed_demo(speed=options["speed"], max_gap=options["max_gap"])
        logins = ", ".join(username for username, *_ in DEMO_USERS)
        self.stdout.write(f"workspace {workspace.slug}: logins {logins} / {DEMO_PASSWORD}")
