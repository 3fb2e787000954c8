"""Tests for the shipped sandbox datasets and their loader.

They read only the files shipped in relais/sandbox/datasets/ (never /work/shared).
Run before the Django settings exist with: pytest relais/sandbox/tests -p no:django
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relais.sandbox.dataset import (
    DATASETS,
    DatasetLoad,
    SandboxRow,
    load_rows,
    load_rows_from,
)

EXPECTED_ROWS = {"airline": 14_485, "free": 6_375, "twcs": 5_000}
MENTION_RE = re.compile(r"(?<![A-Za-z0-9_!#$%&*@])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])")


@cache
def _load(name: str) -> DatasetLoad:
    return load_rows(name)


def _rows(name: str) -> list[SandboxRow]:
    return _load(name).rows


def _good_row(row_id: str = "t:1", time: str = "2015-02-24T19:35:52Z") -> dict[str, Any]:
    return {
        "id": row_id,
        "time": time,
        "kind": "post",
        "author": {
            "id": "t:jane_doe1",
            "handle": "jane_doe1",
            "name": "Jane D.",
            "followers": None,
            "is_brand": False,
        },
        "text": "@united <script>alert(1)</script>",
        "in_reply_to": None,
        "mentions": ["united"],
        "lang": "en",
        "metrics": {"reposts": 0},
        "labels": {"airline_sentiment": "negative"},
    }


# ------------------------------------------------------------------ shipped files


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_shipped_file_loads_with_no_skipped_rows(name: str) -> None:
    loaded = _load(name)
    assert loaded.skipped == 0, loaded.errors[:5]
    assert loaded.errors == []
    assert len(loaded.rows) == EXPECTED_ROWS[name]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_rows_sorted_unique_and_well_formed(name: str) -> None:
    info = DATASETS[name]
    rows = _rows(name)
    times = [r.time for r in rows]
    assert times == sorted(times)
    ids = [r.id for r in rows]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{name}:") for i in ids)
    assert all(r.author.id.startswith(f"{name}:") for r in rows)
    assert all(r.time.tzinfo is UTC for r in rows)
    assert {r.lang for r in rows} == {info.language}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_file_is_sorted_on_disk(name: str) -> None:
    # The loader re-sorts as a safety net; the shipped bytes must already be in order.
    with gzip.open(DATASETS[name].path, "rt", encoding="utf-8") as fh:
        times = [json.loads(line)["time"] for line in fh]
    assert times == sorted(times)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_source_note_present(name: str) -> None:
    note = DATASETS[name].source_note.read_text(encoding="utf-8")
    for heading in ("Origin", "Licence", "Changes"):
        assert heading in note
    assert "commit" in note.lower()


def test_thread_parents_present_for_large_majority() -> None:
    # Measured at build time: free 3,413 / 3,887 (87.8 %), twcs 3,688 / 3,694 (99.8 %),
    # together 7,101 / 7,581 (93.7 %). Airline has no threading.
    linked = total = 0
    for name, minimum in (("free", 0.87), ("twcs", 0.99)):
        rows = _rows(name)
        ids = {r.id for r in rows}
        replies = [r for r in rows if r.in_reply_to is not None]
        present = sum(r.in_reply_to in ids for r in replies)
        assert replies
        assert all(r.kind == "reply" for r in replies)
        assert present / len(replies) >= minimum, (name, present, len(replies))
        linked += present
        total += len(replies)
    assert linked / total >= 0.93
    assert all(r.in_reply_to is None for r in _rows("airline"))


def test_brand_replies_exist_in_care_sets() -> None:
    for name, minimum in (("free", 3_000), ("twcs", 2_000)):
        brand_replies = [r for r in _rows(name) if r.author.is_brand and r.in_reply_to]
        assert len(brand_replies) >= minimum


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_brand_handles_kept(name: str) -> None:
    info = DATASETS[name]
    rows = _rows(name)
    seen_handles = {r.author.handle for r in rows} | {m for r in rows for m in r.mentions}
    assert info.brand_handles <= seen_handles
    for row in rows:
        assert row.author.is_brand == (row.author.handle in info.brand_handles)


def test_airline_brand_mentions_counts() -> None:
    counts = Counter(m for r in _rows("airline") for m in r.mentions)
    for handle in DATASETS["airline"].brand_handles:
        assert counts[handle] >= 500, handle


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_mentions_match_text_and_authors(name: str) -> None:
    rows = _rows(name)
    handle_to_identity: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in rows:
        handle_to_identity[row.author.handle.lower()].add((row.author.id, row.author.name))
        in_text = {h.lower() for h in MENTION_RE.findall(row.text)}
        assert {m.lower() for m in row.mentions} == in_text, row.id
    # One pseudonym (or brand) per author: never two identities behind a handle.
    assert all(len(v) == 1 for v in handle_to_identity.values())

    if name == "airline":
        return
    # Replies name the person they answer, under the same pseudonym as that person's posts.
    by_id = {r.id: r for r in rows}
    addressed = total = 0
    for row in rows:
        parent = by_id.get(row.in_reply_to or "")
        if parent is None or parent.author.handle == row.author.handle:
            continue
        total += 1
        addressed += parent.author.handle in row.mentions
    assert addressed / total >= 0.95


def test_customers_mentioned_and_posting_share_pseudonyms() -> None:
    for name in ("airline", "free", "twcs"):
        rows = _rows(name)
        authors = {r.author.handle for r in rows if not r.author.is_brand}
        mentioned = {m for r in rows for m in r.mentions}
        assert len(authors & mentioned) >= 100, name


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_no_profile_links_or_user_urls_shipped(name: str) -> None:
    raw = gzip.decompress(DATASETS[name].path.read_bytes()).decode("utf-8")
    assert "profile_images" not in raw
    assert "default_profile" not in raw
    assert not re.search(r"(twitter|x)\.com/[A-Za-z0-9_]+/status", raw)


def test_airline_spike_on_22_23_february() -> None:
    per_day = Counter(r.time.date() for r in _rows("airline"))
    baseline = [per_day[date(2015, 2, d)] for d in (17, 18, 19, 20)]
    mean = sum(baseline) / len(baseline)
    assert per_day[date(2015, 2, 22)] > 1.8 * mean
    assert per_day[date(2015, 2, 23)] > 1.8 * mean
    assert max(per_day, key=lambda d: per_day[d]) in {date(2015, 2, 22), date(2015, 2, 23)}


def test_airline_labels_kept() -> None:
    rows = _rows("airline")
    sentiments = Counter(r.labels["airline_sentiment"] for r in rows)
    assert set(sentiments) == {"negative", "neutral", "positive"}
    assert sentiments["negative"] > sentiments["neutral"] > sentiments["positive"]
    assert {r.labels["airline"] for r in rows} == {
        "American",
        "Delta",
        "Southwest",
        "US Airways",
        "United",
        "Virgin America",
    }
    negative = [r for r in rows if r.labels["airline_sentiment"] == "negative"]
    assert all("negativereason" in r.labels for r in negative)
    assert all(r.metrics.keys() == {"reposts"} for r in rows)


def test_free_metrics_and_kinds() -> None:
    rows = _rows("free")
    kinds = Counter(r.kind for r in rows)
    assert kinds.keys() == {"post", "reply", "quote", "repost"}
    assert all({"likes", "reposts", "replies", "quotes"} <= r.metrics.keys() for r in rows)
    assert any("\n" in r.text for r in rows)
    assert not any("\\n" in r.text for r in rows)


# ------------------------------------------------------------------ malformed input


def _write_lines(path: Path, lines: list[str], *, gz: bool) -> None:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)


@pytest.mark.parametrize("gz", [True, False])
def test_malformed_lines_skipped_with_line_numbers(tmp_path: Path, gz: bool) -> None:
    missing = _good_row("t:3")
    del missing["author"]
    bad_time = _good_row("t:4", time="24/02/2015 19:35")
    wrong_type = _good_row("t:5")
    wrong_type["metrics"] = {"likes": "12"}
    bad_kind = _good_row("t:6")
    bad_kind["kind"] = "story"
    bool_as_id = _good_row("t:7")
    bool_as_id["id"] = True
    lines = [
        json.dumps(_good_row("t:1")),  # 1 ok
        "{not json",  # 2
        json.dumps(missing),  # 3
        json.dumps(bad_time),  # 4
        json.dumps(wrong_type),  # 5
        "",  # 6 blank: ignored, not counted
        json.dumps(bad_kind),  # 7
        json.dumps(bool_as_id),  # 8
        "[1, 2, 3]",  # 9
        json.dumps(_good_row("t:1")),  # 10 duplicate id
        json.dumps(_good_row("t:2", time="2015-02-24T19:00:00Z")),  # 11 ok, earlier
    ]
    path = tmp_path / ("rows.jsonl.gz" if gz else "rows.jsonl")
    _write_lines(path, lines, gz=gz)

    loaded = load_rows_from(path)

    assert [r.id for r in loaded.rows] == ["t:2", "t:1"]  # sorted by time
    assert loaded.skipped == 8
    assert [n for n, _ in loaded.errors] == [2, 3, 4, 5, 7, 8, 9, 10]
    reasons = dict(loaded.errors)
    assert reasons[2] == "bad JSON"
    assert "author" in reasons[3]
    assert "time" in reasons[4]
    assert "likes" in reasons[5]
    assert "kind" in reasons[7]
    assert "id" in reasons[8]
    assert "duplicate" in reasons[10]
    row = loaded.rows[1]
    assert row.text == "@united <script>alert(1)</script>"  # kept verbatim; the app escapes
    assert row.mentions == ("united",)
    assert row.author.followers is None


def test_truncated_gzip_keeps_rows_read_so_far(tmp_path: Path) -> None:
    data = gzip.compress(
        "".join(json.dumps(_good_row(f"t:{i}")) + "\n" for i in range(200)).encode(), mtime=0
    )
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    loaded = load_rows_from(path)
    assert loaded.skipped >= 1
    assert "unreadable" in loaded.errors[-1][1]


def test_unknown_dataset_name() -> None:
    with pytest.raises(KeyError):
        load_rows("nope")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=8))
def test_arbitrary_lines_never_raise(lines: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.jsonl"
        path.write_text("\n".join(line.replace("\n", " ") for line in lines), encoding="utf-8")
        loaded = load_rows_from(path)
    assert loaded.skipped == len(loaded.errors)
    assert len(loaded.rows) + loaded.skipped <= len(lines)
