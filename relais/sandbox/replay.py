"""The replay clock: which rows of a dataset are due, keeping order and relative timing.

History plays ``speed`` times faster than real time. Quiet spells longer than ``max_gap``
seconds of real time are shortened to ``max_gap``, so a set that spans years still flows.
The cursor is plain JSON so it can be stored next to the items it produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from relais.sandbox.dataset import SandboxRow


@dataclass(frozen=True)
class ReplayCursor:
    position: int = 0  # index of the next row to emit
    waited: float = 0.0  # history seconds already waited towards that row
    wall: str | None = None  # when the clock was last read (ISO)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ReplayCursor:
        if not data:
            return cls()
        return cls(int(data["position"]), float(data["waited"]), data.get("wall"))

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "waited": self.waited, "wall": self.wall}


@dataclass(frozen=True)
class DueRow:
    row: SandboxRow
    due_at: datetime  # the real time at which the row happens in the compressed replay


def due_rows(
    rows: list[SandboxRow],
    cursor: ReplayCursor,
    now: datetime,
    *,
    speed: float,
    max_gap: float,
    limit: int,
) -> tuple[list[DueRow], ReplayCursor]:
    """Rows due between the cursor's last reading and ``now``, at most ``limit`` of them."""
    if cursor.wall is None:  # first reading: the next row happens now
        waited = _gap_before(rows, cursor.position, speed, max_gap)
        cursor = ReplayCursor(cursor.position, waited, now.isoformat())
    wall = datetime.fromisoformat(cursor.wall or now.isoformat())
    available = max(0.0, (now - wall).total_seconds()) * speed
    needed = -cursor.waited  # history seconds from ``wall`` to the next row, growing per row
    position = cursor.position
    due: list[DueRow] = []
    while position < len(rows) and len(due) < limit:
        gap = _gap_before(rows, position, speed, max_gap)
        if needed + gap > available:
            break
        needed += gap
        due.append(DueRow(rows[position], wall + timedelta(seconds=max(needed, 0.0) / speed)))
        position += 1
    return due, ReplayCursor(position, available - needed, now.isoformat())


def _gap_before(rows: list[SandboxRow], position: int, speed: float, max_gap: float) -> float:
    """History seconds between a row and the one before it, with quiet spells shortened."""
    if position == 0 or position >= len(rows):
        return 0.0
    gap = (rows[position].time - rows[position - 1].time).total_seconds()
    return min(max(gap, 0.0), max_gap * speed)
