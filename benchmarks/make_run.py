"""`make run` on a fresh clone: seconds until the address is printed and a conversation is visible.

Each run clones the committed project into an empty folder, starts `make run` there (which
creates the virtual environment, installs, migrates, seeds the demo and starts web and workers),
logs in as the demo user over HTTP and polls the inbox page until a conversation link shows,
then presses Ctrl-C (SIGINT to the process group) and times until every process it started
has exited. pip's download cache is whatever the machine has (warm after the first install),
as for a user installing a second project.

    .venv/bin/python benchmarks/make_run.py [--quick] [--runs N]

The last line is one JSON object with the figures (medians over the runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEMO_LOGIN = ("demo", "relais-demo")
CONVERSATION_LINK = re.compile(r'href="/w/demo/conversations/\d+/"')
DEADLINE_SECONDS = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def watch_output(process: subprocess.Popen[str], started: float, marks: dict[str, float]) -> None:
    """Note when `make run` announces its address (reading also keeps the pipe from filling)."""
    assert process.stdout is not None
    for line in process.stdout:
        if "http://127.0.0.1:" in line and "address_s" not in marks:
            marks["address_s"] = time.monotonic() - started


def conversation_visible(base_url: str) -> bool:
    try:
        with httpx.Client(base_url=base_url, timeout=5, follow_redirects=True) as browser:
            login_page = browser.get("/accounts/login/")
            token = browser.cookies.get("csrftoken", "")
            browser.post(
                "/accounts/login/",
                data={
                    "username": DEMO_LOGIN[0],
                    "password": DEMO_LOGIN[1],
                    "csrfmiddlewaretoken": token,
                },
                headers={"Referer": str(login_page.url)},
            )
            inbox = browser.get("/w/demo/inbox/")
    except httpx.HTTPError:
        return False
    return inbox.status_code == 200 and bool(CONVERSATION_LINK.search(inbox.text))


def one_run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="relais-make-run-") as folder:
        clone = Path(folder) / "relais"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "DATABASE_URL"}}
        env.update(RELAIS_PORT=str(port), PYTHONUNBUFFERED="1")
        started = time.monotonic()
        process = subprocess.Popen(
            ["make", "run"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        marks: dict[str, float] = {}
        threading.Thread(target=watch_output, args=(process, started, marks), daemon=True).start()
        try:
            while not conversation_visible(f"http://127.0.0.1:{port}"):
                if process.poll() is not None:
                    raise SystemExit(f"make run stopped early (exit {process.returncode})")
                if time.monotonic() - started > DEADLINE_SECONDS:
                    raise SystemExit("no conversation visible within the deadline")
                time.sleep(0.5)
            visible = time.monotonic() - started
        finally:
            stop_pressed = time.monotonic()
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=60)
            left_running = wait_for_group_exit(process.pid, timeout=30)
            stopped = time.monotonic() - stop_pressed
        return {
            "address_s": marks.get("address_s", float("nan")),
            "first_conversation_s": visible,
            "stop_s": stopped,
            "clean_stop": float(not left_running),
        }


def wait_for_group_exit(group: int, timeout: float) -> bool:
    """True when some process started by `make run` (web, worker) outlived Ctrl-C."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run() for _ in range(1 if args.quick else args.runs)]
    for number, run in enumerate(runs, start=1):
        print(f"run {number}: " + ", ".join(f"{k} {v:.1f}" for k, v in run.items()), flush=True)
    figures: dict[str, Any] = {
        name: round(statistics.median(run[name] for run in runs), 1)
        for name in ("address_s", "first_conversation_s", "stop_s")
    }
    figures.update(
        runs=len(runs),
        clean_stops=int(sum(run["clean_stop"] for run in runs)),
        machine=f"{platform.machine()} {os.cpu_count()} cpus, Python {sys.version.split()[0]}",
        command="make run",
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
