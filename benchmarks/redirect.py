"""Latency of the tracked-link redirect `/l/<code>` through the real server stack.

Usage: .venv/bin/python benchmarks/redirect.py [--quick] [--requests N]

Starts uvicorn on Relais' ASGI application (all middleware) with a fresh SQLite database in a
temporary folder, creates a link through the actions, then times sequential GETs over one
keep-alive connection, measured at the client:
- new visitors (a different user agent each time): each click is queued for the batch writer;
- a returning visitor: queued too, its repeats dropped by the unique (link, day, visitor) key;
- a bot: nothing recorded, the cost of the stack and the lookup alone (the peer).
After the server stops, the clicks written are counted (every new visitor once, the returning
visitor once, no bot). The last line printed is one JSON object with ``redirect_p95_ms`` (new
visitors).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def create_link(env: dict[str, str]) -> str:
    """Migrate the fresh database and create a workspace and a link, as the product does."""
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True
    )
    script = (
        "import django; django.setup();"
        "from relais.accounts.actions import do_create_user, do_create_workspace;"
        "from relais.publishing.actions import do_create_link;"
        "u = do_create_user('bench', 'bench-password-123');"
        "w = do_create_workspace('Bench', u);"
        "print(do_create_link(u, w.pk, 'https://shop.example/offer', utm_source='x').code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return done.stdout.decode().split()[-1]


def count_clicks(env: dict[str, str]) -> int:
    script = (
        "import django; django.setup();"
        "from relais.publishing.models import LinkClick; print(LinkClick.objects.count())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return int(done.stdout.decode().split()[-1])


def time_requests(port: int, path: str, agents: list[str]) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    timings = []
    for agent in agents:
        start = time.perf_counter()
        connection.request("GET", path, headers={"User-Agent": agent})
        response = connection.getresponse()
        response.read()
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status == 302, response.status
    connection.close()
    return timings


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


SERVERS = {
    # What `relais run` serves: Django's ASGI application as config/asgi.py builds it.
    "config.asgi": "from config.asgi import application",
    # The same application behind the tracked-link fast path (relais/publishing/asgi.py).
    "link fast path": (
        "from config.asgi import application as django_application;"
        "from relais.publishing.asgi import with_link_redirects;"
        "application = with_link_redirects(django_application)"
    ),
}


def serve(env: dict[str, str], port: int, setup: str) -> subprocess.Popen[bytes]:
    script = (
        f"import uvicorn; {setup};"
        f"uvicorn.run(application, port={port}, access_log=False, log_level='warning')"
    )
    server = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    for _attempt in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


def measure(env: dict[str, str], setup: str, code: str, count: int) -> dict[str, list[float]]:
    port = free_port()
    server = serve(env, port, setup)
    try:
        path = f"/l/{code}"
        browser = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
        time_requests(port, path, [f"{browser} warmup{n}" for n in range(50)])
        new = time_requests(port, path, [f"{browser} v{n}" for n in range(count)])
        returning = time_requests(port, path, [browser] * count)
        bots = time_requests(port, path, ["Twitterbot/1.0"] * count)
    finally:
        server.terminate()  # a normal stop: the click writer flushes what it holds
        server.wait(timeout=10)
    return {"new visitors": new, "returning visitor": returning, "bot (no insert)": bots}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="300 requests per case")
    parser.add_argument("--requests", type=int, default=0)
    args = parser.parse_args()
    count = args.requests or (300 if args.quick else 2000)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "RELAIS_DATA_DIR": folder,
            "RELAIS_LOG_LEVEL": "WARNING",
        }
        env.pop("DATABASE_URL", None)
        code = create_link(env)
        for number, (name, setup) in enumerate(SERVERS.items(), start=1):
            # The same browsers on each server: the day's visitors are counted once.
            results[name] = measure(env, setup, code, count)
            recorded = count_clicks(env)
            # Every new visitor and the warm-up ones once, the returning visitor once, no bot.
            assert recorded == count + 50 + 1, (name, recorded, number)
    for name, cases in results.items():
        for case, timings in cases.items():
            print(
                f"{name:15} {case:18} p50 {statistics.median(timings):6.2f} ms"
                f"  p95 {p95(timings):6.2f} ms"
            )
    shipped, fast = results["config.asgi"], results["link fast path"]
    print(
        json.dumps(
            {
                "requests_per_case": count,
                "clicks_recorded": recorded,
                "server": "uvicorn ASGI, SQLite WAL",
                "redirect_p50_ms": round(statistics.median(shipped["new visitors"]), 3),
                "redirect_p95_ms": round(p95(shipped["new visitors"]), 3),
                "bot_p95_ms": round(p95(shipped["bot (no insert)"]), 3),
                "fast_path_p50_ms": round(statistics.median(fast["new visitors"]), 3),
                "fast_path_p95_ms": round(p95(fast["new visitors"]), 3),
                "fast_path_returning_p95_ms": round(p95(fast["returning visitor"]), 3),
                "fast_path_bot_p95_ms": round(p95(fast["bot (no insert)"]), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
