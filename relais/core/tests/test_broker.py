"""The embedded broker: messages are seen whole, even by a reader racing the writer."""

from __future__ import annotations

import threading
from pathlib import Path

from kombu import Connection

import config.celery  # noqa: F401  (installs the transport for filesystem:// URLs)
from relais.core.broker import WRITING_SUFFIX, Transport

BIG = "x" * 200_000  # a large body widens the window between creating and finishing a file


def connect(folder: Path) -> Connection:
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
    }
    return Connection("filesystem://", transport_options=options)


def test_filesystem_urls_use_the_atomic_transport(tmp_path: Path) -> None:
    with connect(tmp_path) as connection:
        assert isinstance(connection.transport, Transport)


def test_a_reader_racing_the_writer_only_ever_gets_whole_messages(tmp_path: Path) -> None:
    count = 200
    received: list[dict[str, object]] = []
    errors: list[BaseException] = []

    def read() -> None:
        with connect(tmp_path) as connection:
            queue = connection.SimpleQueue("race")
            try:
                while len(received) < count:
                    message = queue.get(timeout=10)
                    received.append(message.payload)
                    message.ack()
            except BaseException as error:  # the old transport failed here on a partial file
                errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    with connect(tmp_path) as connection:
        queue = connection.SimpleQueue("race")
        for number in range(count):
            queue.put({"number": number, "body": BIG})
    reader.join(timeout=60)

    assert errors == []
    assert sorted(m["number"] for m in received) == list(range(count))  # type: ignore[type-var]
    assert all(m["body"] == BIG for m in received)
    assert not list(tmp_path.glob(f"*{WRITING_SUFFIX}"))
