"""`relais run` started as a user starts it, for browser tests: one helper for every module."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
# Debian's Chromium, quiet: no updates, sync or background calls to outside hosts.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_SECONDS = 90


@dataclass(frozen=True)
class LiveServer:
    address: str
    env: dict[str, str]
    data_dir: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def relais_run(data_dir: Path, *, speed: float = 600) -> Iterator[LiveServer]:
    """Start `relais run` on SQLite in ``data_dir``; Ctrl-C it at the end, as a user would.

    Its output goes to a file: a pipe nobody reads fills up and stalls the server mid-test.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "RELAIS_BROKER_URL"}}
    env.update(
        RELAIS_DATA_DIR=str(data_dir), RELAIS_SANDBOX_TICK_SECONDS="1", RELAIS_TASKS_EAGER="0"
    )
    log_path = data_dir / "relais-run.log"
    command = [sys.executable, "-m", "relais.cli", "run", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--speed", str(speed)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    address = f"http://127.0.0.1:{port}"
    _wait_until_serving(address, process, log_path)
    try:
        yield LiveServer(address=address, env=env, data_dir=data_dir)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("relais run did not stop within 20 s of Ctrl-C")


def _wait_until_serving(address: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(address + "/accounts/login/", timeout=2):  # noqa: S310
                return
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"relais run exited:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
    pytest.fail(
        f"relais run did not serve within {START_SECONDS} s:\n{log_path.read_text()[-4000:]}"
    )


def celery_worker_env(queue: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for real Celery workers sharing this test's PostgreSQL database and Redis."""
    from django.db import connection

    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "RELAIS_BROKER_URL": redis_url,
        "RELAIS_QUEUE": queue,
        "RELAIS_TASKS_EAGER": "0",
        **extra,
    }


def start_celery_worker(
    name: str, env: dict[str, str], log: Path, beat_schedule: Path | None = None
) -> subprocess.Popen[bytes]:
    """One `celery worker` process (solo pool), with the beat embedded when given a schedule."""
    beat = ["--beat", "--schedule", str(beat_schedule)] if beat_schedule else []
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
         "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
         *beat],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
