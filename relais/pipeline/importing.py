"""Archive import: posts as JSON lines in Relais' normalized format (see docs/import-format.md).

Each line is checked on its own; a bad line is reported with its number and reason and the
others are imported. Importing twice stores nothing twice (posts are unique by remote id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relais.connectors.base import InboundAuthor, InboundItem, PostKind
from relais.connectors.registry import CONNECTORS
from relais.pipeline.actions import do_ingest_items
from relais.pipeline.items import MAX_TEXT_LENGTH

MENTION = re.compile(r"(?<![\w@])@([\w.]{1,64})")
IMPORT_NETWORKS = {*CONNECTORS, "archive", "twitter", "bluesky", "mastodon", "facebook"}
MAX_LINE_BYTES = 1_000_000


class ImportLineError(ValueError):
    pass


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0
    created: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


def parse_line(line: str) -> tuple[str, InboundItem]:
    """One JSON line -> (network, item), or ImportLineError saying what is wrong."""
    if len(line) > MAX_LINE_BYTES:
        raise ImportLineError("line longer than 1 MB")
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ImportLineError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise ImportLineError("a line must be a JSON object")
    network = _text(data, "network")
    if network not in IMPORT_NETWORKS:
        raise ImportLineError(f"unknown network {network!r}")
    kind = data.get("kind", "post")
    if kind not in PostKind.__members__.values():
        raise ImportLineError(f"unknown kind {kind!r} (one of {', '.join(PostKind)})")
    text = data.get("text")
    if not isinstance(text, str):
        raise ImportLineError("'text' must be a string")
    return network, InboundItem(
        remote_id=_text(data, "remote_id"),
        kind=PostKind(kind),
        author=_author(data.get("author")),
        text=text[:MAX_TEXT_LENGTH],
        created_at=_time(data.get("created_at")),
        in_reply_to=_optional_text(data, "in_reply_to"),
        mentions=tuple(data.get("mentions") or MENTION.findall(text)),
        lang=_optional_text(data, "lang"),
        metrics=_metrics(data.get("metrics")),
        raw=data,
    )


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ImportLineError(f"'{key}' is missing or empty")
    if len(value) > 255:
        raise ImportLineError(f"'{key}' is longer than 255 characters")
    return value.strip()


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    return _text(data, key) if data.get(key) not in (None, "") else None


def _author(value: Any) -> InboundAuthor:
    if not isinstance(value, dict):
        raise ImportLineError("'author' must be an object with at least 'handle'")
    handle = _text(value, "handle").lstrip("@")
    followers = value.get("followers")
    if followers is not None and (not isinstance(followers, int) or followers < 0):
        raise ImportLineError("'author.followers' must be a non-negative integer")
    remote_id = _optional_text(value, "remote_id") or handle
    return InboundAuthor(remote_id, handle, str(value.get("name") or "")[:255], followers)


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ImportLineError("'created_at' is missing (ISO 8601 with a time zone)")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ImportLineError(f"'created_at' is not an ISO 8601 time: {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise ImportLineError("'created_at' needs a time zone (for example 2024-08-19T10:00:00Z)")
    return moment


def _metrics(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value.values()
    ):
        raise ImportLineError("'metrics' must map names to integers")
    return {str(k): v for k, v in value.items()}


def import_lines(workspace_id: int, lines: Iterable[str], *, batch_size: int = 500) -> ImportReport:
    report = ImportReport()
    batch: dict[str, list[InboundItem]] = {}
    for number, item_or_error in _parsed(lines):
        report.read += 1
        if isinstance(item_or_error, str):
            report.invalid.append((number, item_or_error))
            continue
        network, item = item_or_error
        batch.setdefault(network, []).append(item)
        if sum(len(items) for items in batch.values()) >= batch_size:
            _flush(workspace_id, batch, report)
    _flush(workspace_id, batch, report)
    return report


def _parsed(lines: Iterable[str]) -> Iterator[tuple[int, tuple[str, InboundItem] | str]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_line(line)
        except ImportLineError as error:
            yield number, str(error)


def _flush(workspace_id: int, batch: dict[str, list[InboundItem]], report: ImportReport) -> None:
    for network, items in batch.items():
        result = do_ingest_items(workspace_id, network, items)
        report.imported += len(items)
        report.created += result.created
    batch.clear()
