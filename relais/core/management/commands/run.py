"""Everything in one process group: migrations, the demo, the web server, the worker and beat.

Ctrl-C (or SIGTERM) stops the children cleanly and returns.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from relais.sandbox.actions import (
    DEMO_AIRLINE_SPEED,
    DEMO_PASSWORD,
    DEMO_SPEED,
    DEMO_USERS,
    do_seed_demo,
)

STOP_TIMEOUT = 10


class Command(BaseCommand):
    help = "Migrate, seed the demo workspace, and run the web server with the worker and beat."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("RELAIS_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("RELAIS_PORT", "8000")))
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo")
        parser.add_argument(
            "--speed",
            type=float,
            default=DEMO_SPEED,
            help=(
                "history seconds per second of the demo's Free and customer-support replays"
                " (default %(default)g); the airline replay always plays at"
                f" {DEMO_AIRLINE_SPEED:g}x real time, pauses kept, the pace its crisis alert is"
                " timed for"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        if not options["no_demo"]:
            do_seed_demo(speed=options["speed"])
        children = [self._start_web(options["host"], options["port"]), self._start_worker()]
        stopping = False

        def stop(_signum: int, _frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        address = f"http://{options['host']}:{options['port']}/"
        if self._wait_ready(address + "accounts/login/", children, lambda: stopping):
            self._announce(address, with_demo=not options["no_demo"])
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.3)
        self._stop(children)
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
        if failed and not stopping:
            sys.exit(f"a Relais process stopped unexpectedly (exit {failed[0].returncode})")

    def _start_web(self, host: str, port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 -- fixed arguments, our own interpreter
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--timeout-graceful-shutdown",
                "3",
                "--no-access-log",
            ],
            cwd=settings.BASE_DIR,
            start_new_session=True,  # Ctrl-C reaches us; we stop children in order
        )

    def _start_worker(self) -> subprocess.Popen[bytes]:
        # One worker with an embedded beat: on the filesystem broker this needs no server.
        return subprocess.Popen(  # noqa: S603 -- fixed arguments, our own interpreter
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "--pool",
                "threads",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "--schedule",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
            cwd=settings.BASE_DIR,
            start_new_session=True,
        )

    def _wait_ready(self, url: str, children: list[Any], stopping: Any) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stopping():
            if any(child.poll() is not None for child in children):
                return False
            try:
                with urllib.request.urlopen(url, timeout=2):  # noqa: S310 -- our own local URL
                    return True
            except OSError:
                time.sleep(0.3)
        return False

    def _announce(self, address: str, *, with_demo: bool) -> None:
        self.stdout.write(self.style.SUCCESS(f"\nRelais is running at {address}"))
        if with_demo:
            logins = ", ".join(username for username, *_ in DEMO_USERS)
            self.stdout.write(f"Demo login: demo / {DEMO_PASSWORD}  (also: {logins})")
        self.stdout.write("Press Ctrl-C to stop.\n")

    def _stop(self, children: list[subprocess.Popen[bytes]]) -> None:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.stdout.write("Relais stopped.")
