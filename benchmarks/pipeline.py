"""Pipeline throughput: stored posts per second on one core, with and without enrichment.

Real posts (the shipped sandbox sets) go through ``do_ingest_items`` in batches of 500: authors
and posts upserted, enriched by relais.nlp (or not, for the second figure), threads linked,
conversations routed, events written. Measured on SQLite (a
file in WAL mode, as `make run` uses) and on PostgreSQL when it answers, side by side in the same
run. The worker runs pinned to one core; medians of several repeats, each into a fresh workspace.

    .venv/bin/python benchmarks/pipeline.py [--quick] [--postgres URL]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"


def measure_here(repeats: int, limit: int, enrich: bool) -> dict[str, Any]:
    """Run inside a process whose DATABASE_URL is already chosen."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from relais.nlp import enrich_texts
    from relais.pipeline import enrichers

    if enrich:
        enrich_texts(["load the models before the clock starts"])
    else:
        enrichers.ENRICHERS.clear()
    from django.core.management import call_command

    from relais.accounts.actions import do_create_user, do_create_workspace
    from relais.connectors.networks.sandbox import _item_from_row
    from relais.pipeline.actions import do_ingest_items
    from relais.sandbox.actions import DEMO_ACCOUNTS, do_connect_sandbox_account
    from relais.sandbox.server import dataset_rows

    call_command("migrate", verbosity=0)
    items = [
        (name, _item_from_row(row, row.time))
        for name in ("twcs", "free", "airline")
        for row in dataset_rows(name).rows
    ][:limit]
    owner = do_create_user(f"bench-{time.time_ns()}", "bench-password-123")
    rates = []
    for repeat in range(repeats):
        workspace = do_create_workspace(f"Bench {time.time_ns()} {repeat}", owner)
        for dataset, accounts in DEMO_ACCOUNTS.items():
            for handle, aliases in accounts:
                do_connect_sandbox_account(workspace, dataset, handle, aliases, actor=None)
        started = time.perf_counter()
        for start in range(0, len(items), 500):
            do_ingest_items(
                workspace.pk, "sandbox", [item for _n, item in items[start : start + 500]]
            )
        rates.append(len(items) / (time.perf_counter() - started))
    return {"posts": len(items), "posts_per_second": statistics.median(rates), "runs": rates}


def run_backend(
    database_url: str | None, repeats: int, limit: int, *, enrich: bool
) -> dict[str, Any] | None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["RELAIS_DATA_DIR"] = tempfile.mkdtemp(prefix="relais-bench-")
    if database_url:
        env["DATABASE_URL"] = database_url
    command = [
        sys.executable,
        __file__,
        "--inner",
        "--repeats",
        str(repeats),
        "--limit",
        str(limit),
        *(["--enrich"] if enrich else []),
    ]
    taskset = ["taskset", "-c", "0"] if sys.platform.startswith("linux") else []
    result = subprocess.run(
        [*taskset, *command], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def postgres_answers(url: str) -> bool:
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer posts and repeats")
    parser.add_argument("--postgres", default=os.environ.get("RELAIS_BENCH_POSTGRES", DEFAULT_PG))
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=25_860)
    parser.add_argument("--enrich", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(measure_here(args.repeats, args.limit, args.enrich)))
        return
    repeats, limit = (1, 5000) if args.quick else (args.repeats, args.limit)
    backends = {"sqlite": None}
    if postgres_answers(args.postgres):
        backends["postgres"] = args.postgres
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "repeats": repeats,
        "project_goal_posts_per_second_with_enrichment": 6000,
    }
    for name, url in backends.items():
        for enrich, suffix in ((True, ""), (False, "_without_enrichment")):
            result = run_backend(url, repeats, limit, enrich=enrich)
            figures[f"{name}_posts_per_second{suffix}"] = (
                round(result["posts_per_second"]) if result else None
            )
            if result:
                figures["posts"] = result["posts"]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
