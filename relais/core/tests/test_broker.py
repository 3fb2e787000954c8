"""The embedded broker: messages are seen whole, even by a reader racing the writer."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from pathlib import Path

import pytest
from kombu import Connection
from kombu.utils.encoding import str_to_bytes

import config.celery  # noqa: F401  (installs the transport for filesystem:// URLs)
from relais.core import broker
from relais.core.broker import WRITING_SUFFIX, Transport

BIG = "x" * 50_000  # a large body widens the window between creating and finishing a file
COUNT = 200


def connect(folder: Path) -> Connection:
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
    }
    return Connection("filesystem://", transport_options=options)


def read_all(folder: Path, queue_name: str, report: Path) -> None:
    """The worker's side, in its own process as in `relais run`: note what arrived, and how."""
    received: list[int] = []
    error = ""
    with connect(folder) as connection:
        queue = connection.SimpleQueue(queue_name)
        try:
            while len(received) < COUNT:
                message = queue.get(timeout=60)  # generous: CI disks are busy
                body = message.payload
                received.append(body["number"] if body["body"] == BIG else -1)
                message.ack()
        except Exception as exc:  # a partial file used to stop the reader here
            error = repr(exc)
    report.write_text(json.dumps({"received": received, "error": error}))


def test_filesystem_urls_use_the_atomic_transport(tmp_path: Path) -> None:
    with connect(tmp_path) as connection:
        assert isinstance(connection.transport, Transport)


def test_a_message_file_appears_only_once_its_content_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    visible_while_writing: list[list[str]] = []

    def encode_and_look(text: str) -> bytes:
        visible_while_writing.append(sorted(p.name for p in tmp_path.glob("*.msg")))
        return str_to_bytes(text)

    monkeypatch.setattr(broker, "str_to_bytes", encode_and_look)
    with connect(tmp_path) as connection:
        connection.SimpleQueue("orders").put({"number": 1})

    # Encoded twice: the routing table, then the message. kombu's own transport had the message
    # file there already, empty, while encoding it.
    assert visible_while_writing == [[], []]
    assert len(list(tmp_path.glob("*.orders.msg"))) == 1


def test_a_reader_racing_the_writer_only_ever_gets_whole_messages(tmp_path: Path) -> None:
    queue_name = f"race-{uuid.uuid4().hex[:8]}"
    report = tmp_path / "report.json"
    with connect(tmp_path) as connection:
        connection.SimpleQueue(queue_name)  # declared first, as the worker does at start
    reader = multiprocessing.get_context("fork").Process(
        target=read_all, args=(tmp_path, queue_name, report)
    )
    reader.start()
    with connect(tmp_path) as connection:
        queue = connection.SimpleQueue(queue_name)
        for number in range(COUNT):
            queue.put({"number": number, "body": BIG})
    reader.join(timeout=120)

    outcome = json.loads(report.read_text())
    assert outcome["error"] == ""
    assert sorted(outcome["received"]) == list(range(COUNT))
    assert not list(tmp_path.glob(f"*{WRITING_SUFFIX}"))
