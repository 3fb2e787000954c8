"""Follow every active account of a streamed network (Bluesky, Mastodon) until interrupted."""

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from relais.connectors.streams import follow_all


class Command(BaseCommand):
    help = (
        "Follow the Bluesky firehose and the Mastodon streams of every active connected account "
        "(Ctrl-C stops)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        self.stdout.write("following the Bluesky and Mastodon accounts; Ctrl-C stops")
        try:
            follow_all(stop)
        except KeyboardInterrupt:
            stop.set()
