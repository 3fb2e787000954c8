"""The one place Relais reads the time, so tests and replays can reason about it."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
