"""kombu's filesystem transport, with files that readers only ever see whole.

kombu writes a message by opening its final file name and then writing, and rewrites an
exchange's routing table in place. A worker polling the folder can move and read a message file
in between and get an empty or partial message (the worker stops on a JSON error); a publisher
can read a routing table while a starting worker rewrites it and route the message nowhere. Here
both are written under a name nobody reads, then renamed into place: a rename within a folder is
atomic, so readers see the old file or the whole new one. Routing-table updates are serialized
between processes by a lock file.
"""

from __future__ import annotations

import fcntl
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps, loads

# Readers take ``<time>_<uuid>.<queue>.msg`` files only; this suffix keeps a file out of sight.
WRITING_SUFFIX = ".writing"


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]  # kombu types its two bases differently
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = Path(self.data_folder_out) / name
        try:
            _write_atomically(final, dumps(payload))
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!s} to directory") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        table_file = Path(self._exchange_file(exchange))
        self.control_folder.mkdir(exist_ok=True)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with table_file.with_name(table_file.name + ".lock").open("ab") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                table = [filesystem.exchange_queue_t(*q) for q in _read_table(table_file)]
                if entry not in table:
                    _write_atomically(table_file, dumps([entry, *table]))
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot open {table_file!s}") from exc


def _read_table(path: Path) -> list[Any]:
    try:
        return list(loads(path.read_bytes() or b"[]"))
    except FileNotFoundError:
        return []


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + WRITING_SUFFIX)
    partial.write_bytes(str_to_bytes(text))
    partial.replace(path)


class Transport(filesystem.Transport):
    Channel = Channel


def use_atomic_filesystem_transport() -> None:
    """Make ``filesystem://`` broker URLs use this transport in this process."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
