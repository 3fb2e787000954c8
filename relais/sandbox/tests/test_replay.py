from datetime import UTC, datetime, timedelta

from relais.sandbox.dataset import SandboxAuthor, SandboxRow
from relais.sandbox.replay import ReplayCursor, due_rows

START = datetime(2015, 2, 22, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
AUTHOR = SandboxAuthor("a:1", "camille", "Camille", None, False)


def rows_at(*offsets_seconds: float) -> list[SandboxRow]:
    return [
        SandboxRow(f"a:{i}", START + timedelta(seconds=s), "post", AUTHOR, "hi", None, (), "en")
        for i, s in enumerate(offsets_seconds)
    ]


def replay(rows, cursor, seconds_later, *, speed=60.0, max_gap=1000.0, limit=100):
    return due_rows(
        rows,
        cursor,
        NOW + timedelta(seconds=seconds_later),
        speed=speed,
        max_gap=max_gap,
        limit=limit,
    )


def test_the_first_row_plays_at_once_and_the_rest_keep_their_compressed_timing():
    rows = rows_at(0, 60, 120, 600)
    due, cursor = replay(rows, ReplayCursor(), 0)
    assert [d.row.id for d in due] == ["a:0"]
    due, cursor = replay(rows, cursor, 1.5)  # 90 s of history at x60
    assert [d.row.id for d in due] == ["a:1"]
    assert due[0].due_at == NOW + timedelta(seconds=1)
    due, cursor = replay(rows, cursor, 10)  # 600 s of history
    assert [d.row.id for d in due] == ["a:2", "a:3"]
    assert [d.due_at for d in due] == [NOW + timedelta(seconds=2), NOW + timedelta(seconds=10)]


def test_long_quiet_spells_are_shortened_to_the_longest_pause():
    rows = rows_at(0, 3600 * 24 * 365)  # a year apart
    _due, cursor = replay(rows, ReplayCursor(), 0, max_gap=5)
    due, _cursor = replay(rows, cursor, 5, max_gap=5)
    assert [d.row.id for d in due] == ["a:1"]


def test_a_limit_leaves_the_rest_for_the_next_reading_without_losing_time():
    rows = rows_at(*range(10))
    _due, cursor = replay(rows, ReplayCursor(), 0)
    due, cursor = replay(rows, cursor, 100, limit=4)
    assert [d.row.id for d in due] == ["a:1", "a:2", "a:3", "a:4"]
    due, cursor = replay(rows, cursor, 100, limit=100)
    assert [d.row.id for d in due] == [f"a:{i}" for i in range(5, 10)]


def test_the_cursor_survives_json_and_a_finished_replay_emits_nothing():
    rows = rows_at(0, 1)
    _due, cursor = replay(rows, ReplayCursor(), 0)
    _due, cursor = replay(rows, cursor, 10)
    cursor = ReplayCursor.from_json(cursor.to_json())
    assert cursor.position == 2
    due, _ = replay(rows, cursor, 20)
    assert due == []
