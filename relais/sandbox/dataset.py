"""Loader for the sandbox network's replay datasets.

The sandbox replays real public posts as a live, time-compressed stream into a demo
workspace. The posts ship inside the package as gzipped JSON Lines files (one normalized
row per line, sorted by time) under ``relais/sandbox/datasets/``; each file has a
``<name>.SOURCE.md`` note giving its origin, licence and what was changed (customers are
pseudonymized). ``tools/build_sandbox_data.py`` produces them; this module only reads them.

Pure Python, no Django: a malformed line is skipped and reported, never raised.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DATASETS_DIR = Path(__file__).resolve().parent / "datasets"

KINDS = frozenset({"post", "reply", "quote", "repost"})
LANGS = frozenset({"en", "fr"})
METRIC_KEYS = frozenset({"likes", "reposts", "replies", "quotes", "views"})
ROW_KEYS = (
    "id",
    "time",
    "kind",
    "author",
    "text",
    "in_reply_to",
    "mentions",
    "lang",
    "metrics",
    "labels",
)
AUTHOR_KEYS = ("id", "handle", "name", "followers", "is_brand")

LabelValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class BrandAccount:
    handle: str
    name: str


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    name: str
    language: str
    title: str
    licence: str
    commercial_use: bool
    brand_accounts: list[BrandAccount]  # the set's own brand accounts, main account first

    @property
    def path(self) -> Path:
        return DATASETS_DIR / f"{self.name}.jsonl.gz"

    @property
    def source_note(self) -> Path:
        return DATASETS_DIR / f"{self.name}.SOURCE.md"

    @property
    def brand_handles(self) -> frozenset[str]:
        return frozenset(b.handle for b in self.brand_accounts)


@dataclass(frozen=True, slots=True)
class SandboxAuthor:
    id: str
    handle: str
    name: str
    followers: int | None
    is_brand: bool


@dataclass(frozen=True, slots=True)
class SandboxRow:
    """One normalized post. ``time`` is timezone-aware UTC.

    ``metrics`` and ``labels`` are plain dicts: treat them as read-only.
    """

    id: str
    time: datetime
    kind: str
    author: SandboxAuthor
    text: str
    in_reply_to: str | None
    mentions: tuple[str, ...]
    lang: str | None
    metrics: dict[str, int] = field(default_factory=dict)
    labels: dict[str, LabelValue] = field(default_factory=dict)


@dataclass(slots=True)
class DatasetLoad:
    rows: list[SandboxRow]
    skipped: int
    errors: list[tuple[int, str]]  # (1-based line number, reason)


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


_TWCS_BRANDS = _split(
    "ATVIAssist AdobeCare AirAsiaSupport AirbnbHelp AlaskaAir AldiUK AmazonHelp AmericanAir "
    "AppleSupport ArgosHelpers AskAmex AskCiti AskLyft AskPapaJohns AskPayPal AskPlayStation "
    "AskTarget Ask_Spectrum Ask_WellsFargo AskeBay AsurionCares AzureSupport BofA_Help "
    "BoostCare British_Airways CenturyLinkHelp ChaseSupport ChipotleTweets CoxHelp Delta "
    "DoorDash_Help DropboxSupport DunkinDonuts GWRHelp GloCare GoDaddyHelp HPSupport IHGService "
    "JackBox JetBlue Kimpton LondonMidland McDonalds MicrosoftHelps Morrisons NeweggService "
    "NikeSupport O2 Postmates_Help SW_Help Safaricom_Care SouthwestAir SpotifyCares TMobileHelp "
    "Tesco TfL UPSHelp USCellularCares Uber_Support VerizonSupport VirginAmerica VirginAtlantic "
    "VirginTrains Walmart XboxSupport YahooCare airtel_care askpanera asksalesforce comcastcares "
    "hulu_support idea_cares marksandspencer nationalrailenq sainsburys sprintcare"
)

_NC_SA = "CC BY-NC-SA 4.0 (as stated on Kaggle; non-commercial, share-alike)"

DATASETS: dict[str, DatasetInfo] = {
    "airline": DatasetInfo(
        name="airline",
        language="en",
        title="Twitter US Airline Sentiment (16-24 Feb 2015)",
        licence=_NC_SA,
        commercial_use=False,
        brand_accounts=[
            BrandAccount("VirginAmerica", "Virgin America"),
            BrandAccount("united", "United"),
            BrandAccount("SouthwestAir", "Southwest Airlines"),
            # The Kaggle file labels these tweets "Delta", but they are addressed to @JetBlue.
            BrandAccount("JetBlue", "JetBlue"),
            BrandAccount("USAirways", "US Airways"),
            BrandAccount("AmericanAir", "American Airlines"),
        ],
    ),
    "free": DatasetInfo(
        name="free",
        language="fr",
        title="Free / Freebox customer care on Twitter (2020-2025, French)",
        licence="none stated; real people's posts (personal data), pseudonymized",
        commercial_use=False,
        brand_accounts=[
            BrandAccount("Freebox", "Assistance Freebox"),
            BrandAccount("free", "Free"),
        ],
    ),
    "twcs": DatasetInfo(
        name="twcs",
        language="en",
        title="Customer Support on Twitter (first 5,000 rows, 2017)",
        licence=_NC_SA,
        commercial_use=False,
        brand_accounts=[BrandAccount(h, h) for h in _TWCS_BRANDS],
    ),
}


class _RowError(ValueError):
    pass


def _require(obj: dict[str, Any], key: str, types: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise _RowError(f"missing field {key!r}")
    value = obj[key]
    # bool is an int subclass: never accept it where a number or string is wanted.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise _RowError(f"field {key!r} has wrong type bool")
    if not isinstance(value, types):
        raise _RowError(f"field {key!r} has wrong type {type(value).__name__}")
    return value


def _parse_time(value: str) -> datetime:
    if not value.endswith("Z"):
        raise _RowError("time is not UTC ('Z' suffix expected)")
    try:
        parsed = datetime.fromisoformat(value[:-1])
    except ValueError as exc:
        raise _RowError(f"bad time {value[:40]!r}") from exc
    if parsed.tzinfo is not None:
        raise _RowError(f"bad time {value[:40]!r}")
    return parsed.replace(tzinfo=UTC)


def _parse_author(obj: Any) -> SandboxAuthor:
    if not isinstance(obj, dict):
        raise _RowError("author is not an object")
    followers = obj.get("followers", None)
    if followers is not None and (isinstance(followers, bool) or not isinstance(followers, int)):
        raise _RowError("author.followers must be an int or null")
    return SandboxAuthor(
        id=_require(obj, "id", str),
        handle=_require(obj, "handle", str),
        name=_require(obj, "name", str),
        followers=followers,
        is_brand=_require(obj, "is_brand", bool),
    )


def parse_row(obj: Any) -> SandboxRow:
    """Validate one decoded JSON object; raise ValueError with a short reason if bad."""
    if not isinstance(obj, dict):
        raise _RowError("line is not a JSON object")
    row_id = _require(obj, "id", str)
    if not row_id:
        raise _RowError("empty id")
    kind = _require(obj, "kind", str)
    if kind not in KINDS:
        raise _RowError(f"unknown kind {kind[:20]!r}")
    in_reply_to = _require(obj, "in_reply_to", (str, type(None)))
    mentions = _require(obj, "mentions", list)
    if not all(isinstance(m, str) for m in mentions):
        raise _RowError("mentions must be strings")
    lang = _require(obj, "lang", (str, type(None)))
    if lang is not None and lang not in LANGS:
        raise _RowError(f"unknown lang {lang[:10]!r}")
    metrics = _require(obj, "metrics", dict)
    for key, value in metrics.items():
        if key not in METRIC_KEYS:
            raise _RowError(f"unknown metric {key[:20]!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _RowError(f"metric {key!r} must be a non-negative int")
    labels = _require(obj, "labels", dict)
    for value in labels.values():
        if not isinstance(value, str | int | float | bool):
            raise _RowError("label values must be scalars")
    return SandboxRow(
        id=row_id,
        time=_parse_time(_require(obj, "time", str)),
        kind=kind,
        author=_parse_author(_require(obj, "author", dict)),
        text=_require(obj, "text", str),
        in_reply_to=in_reply_to,
        mentions=tuple(mentions),
        lang=lang,
        metrics=metrics,
        labels=labels,
    )


def _iter_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    if gzipped:
        with gzip.open(path, "rb") as fh:
            yield from fh
    else:
        with path.open("rb") as fh:
            yield from fh


def _parse_lines(lines: Iterable[bytes]) -> DatasetLoad:
    rows: list[SandboxRow] = []
    errors: list[tuple[int, str]] = []
    seen: set[str] = set()
    lineno = 0
    try:
        for lineno, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                row = parse_row(json.loads(raw))
            except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
                reason = str(exc) if isinstance(exc, _RowError) else "bad JSON"
                errors.append((lineno, reason))
                continue
            if row.id in seen:
                errors.append((lineno, f"duplicate id {row.id[:40]!r}"))
                continue
            seen.add(row.id)
            rows.append(row)
    except (OSError, EOFError, zlib.error) as exc:
        errors.append((lineno + 1, f"unreadable from here on ({type(exc).__name__})"))
    # Files are written sorted; a stable sort is a no-op then and a safety net otherwise.
    rows.sort(key=lambda r: r.time)
    return DatasetLoad(rows=rows, skipped=len(errors), errors=errors)


def load_rows_from(path: str | Path) -> DatasetLoad:
    """Load a JSON Lines file (gzipped or plain). Malformed lines are skipped and reported."""
    return _parse_lines(_iter_lines(Path(path)))


def load_rows(name: str) -> DatasetLoad:
    """Load one shipped dataset by name (``airline``, ``free`` or ``twcs``)."""
    try:
        info = DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown sandbox dataset {name!r}; known: {sorted(DATASETS)}") from None
    return load_rows_from(info.path)
