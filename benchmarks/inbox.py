"""Care inbox: page response times at scale, suggested replies, and live-update delay.

    .venv/bin/python benchmarks/inbox.py [--quick] [--postgres URL] [--runs 3] [--only sqlite]

For each database (SQLite in WAL mode as `make run` uses it, and PostgreSQL when it answers) a
fresh database is filled with 100,000 conversations holding 1,000,000 posts (``--quick``:
10,000 and 100,000). The texts are the real posts of the shipped sandbox sets (Free in French,
TWCS in English), reused round-robin; the volume is synthetic, written with bulk inserts (the
pipeline's own throughput is measured by benchmarks/pipeline.py). Each conversation is a thread
of customer posts and brand replies; statuses, assignees, SLA deadlines, tags and priorities are
spread over the set.

Measured through Django's test client (URL routing, middleware, session, login, template: all
but the network):
- ``list``: the inbox page as an agent opens it (unresolved, by priority), and with the
  filters "mine", "breached" and a tag, on random pages;
- ``conversation``: a random conversation page (thread, notes, next/previous, suggestions);
- ``suggest``: suggested replies for a conversation, index already built (build time apart);
- ``live update``: from the commit of an ingested customer post to the moment the server-sent
  event stream (``relais.web.live``, polling every 0.5 s) yields it plus the rendering of the
  inbox rows that the browser then fetches, which show the post. The browser's own request
  overhead is not included; the browser tests check the whole path end to end.

The page requests are made in ``--runs`` rounds on the same filled database; each kind's p50
and p95 are the medians over the rounds (each round's figures are printed as well).

Suggested-reply quality is measured on held-out real threads (relais.inbox.suggest_quality).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/inbox"
POSTS_PER_CONVERSATION = 10
CHUNK = 5_000  # conversations written per round of bulk inserts


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 0.95), 2),
    }


# Filling the database ------------------------------------------------------------------------


def fill(conversations: int) -> dict[str, Any]:
    """Write the conversations, their posts and messages with explicit ids, in chunks."""
    from django.db import connection, transaction

    from relais.pipeline.models import Post

    setup = _set_up_workspace()
    ids = {
        "post": (Post.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1,
        "conversation": 1,
    }
    started = time.perf_counter()
    rng = random.Random(7)
    for first in range(0, conversations, CHUNK):
        with transaction.atomic():
            _write_chunk(
                setup, first, min(CHUNK, conversations - first), conversations, ids=ids, rng=rng
            )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in ("pipeline_post", "inbox_conversation"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
            # As autovacuum would have by then: statistics, and the visibility map that
            # index-only scans need.
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
    return {
        **setup,
        "fill_seconds": round(time.perf_counter() - started, 1),
        "conversations": conversations,
        "posts": Post.objects.in_workspace(setup["workspace"].pk).count(),
    }


def _set_up_workspace() -> dict[str, Any]:
    from relais.accounts.actions import do_add_member, do_create_user, do_create_workspace
    from relais.inbox import actions
    from relais.pipeline.models import Author
    from relais.sandbox.actions import do_connect_sandbox_account
    from relais.sandbox.server import dataset_rows

    owner = do_create_user("bench-owner", "bench-password-123", first_name="Owner")
    workspace = do_create_workspace("Bench", owner)
    agents = [
        do_create_user(f"bench-agent-{n}", "bench-password-123", first_name=f"Agent {n}")
        for n in range(5)
    ]
    for agent in agents:
        do_add_member(workspace, agent, "agent", actor=owner)
    team = actions.do_create_team(owner, workspace, "Care")
    actions.do_set_team_members(owner, team, agents)
    actions.do_set_sla_policy(owner, workspace, first_response_minutes=60, resolution_minutes=1440)
    accounts = [
        do_connect_sandbox_account(workspace, "free", "Freebox", ["free"], actor=owner),
        do_connect_sandbox_account(workspace, "twcs", "AppleSupport", [], actor=owner),
    ]
    return {
        "workspace": workspace,
        "agents": agents,
        "team": team,
        "accounts": accounts,
        "texts": {
            account.pk: _texts(dataset_rows(dataset).rows)
            for account, dataset in zip(accounts, ("free", "twcs"), strict=True)
        },
        "brands": {
            account.pk: Author.objects.create(
                workspace=workspace,
                network="sandbox",
                remote_id=f"brand-{account.handle}",
                handle=account.handle,
                name=account.handle,
            )
            for account in accounts
        },
    }


def _write_chunk(
    setup: dict[str, Any],
    first: int,
    count: int,
    total: int,
    *,
    ids: dict[str, int],
    rng: random.Random,
) -> None:
    from relais.inbox.models import Conversation, ConversationTag, Message, Status
    from relais.pipeline.models import Author, Direction, Post

    workspace, accounts = setup["workspace"], setup["accounts"]
    customers = max(1, total // 2)
    statuses = [Status.NEW] * 2 + [Status.OPEN] * 3 + [Status.PENDING] + [Status.RESOLVED] * 4
    now = datetime.now(UTC)
    Author.objects.bulk_create(
        [
            Author(
                workspace=workspace,
                network="sandbox",
                remote_id=f"customer-{n}",
                handle=f"customer_{n}",
                name=f"Customer {n}",
                followers=int(rng.paretovariate(1.2) * 20),
            )
            for n in {(first + i) % customers for i in range(count)}
        ],
        ignore_conflicts=True,
    )
    author_ids = dict(
        Author.objects.in_workspace(workspace.pk)
        .filter(remote_id__startswith="customer-")
        .values_list("remote_id", "pk")
    )
    rows_c, rows_p, rows_m = [], [], []
    for number in range(first, first + count):
        account = accounts[number % 2]
        customer = author_ids[f"customer-{number % customers}"]
        opened = now - timedelta(minutes=rng.uniform(600, 60 * 24 * 30))  # threads end in the past
        pool = setup["texts"][account.pk]
        thread: list[Post] = []
        for step in range(POSTS_PER_CONVERSATION):
            inbound = step % 2 == 0
            question, answer = pool[(number * 5 + step // 2) % len(pool)]
            post = Post(
                id=ids["post"],
                workspace=workspace,
                network="sandbox",
                remote_id=f"bench:{ids['post']}",
                kind="reply" if thread else "post",
                direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
                author_id=customer if inbound else setup["brands"][account.pk].pk,
                account=account,
                text=question if inbound else answer,
                created_at=opened + timedelta(minutes=step * rng.uniform(2, 60)),
                parent_id=thread[-1].pk if thread else None,
                thread_root_remote_id=thread[0].remote_id if thread else f"bench:{ids['post']}",
                routing="routed",
            )
            ids["post"] += 1
            thread.append(post)
            rows_m.append(
                Message(
                    workspace=workspace,
                    conversation_id=ids["conversation"],
                    post_id=post.pk,
                    direction=post.direction,
                    created_at=post.created_at,
                )
            )
        rows_p += thread
        status = rng.choice(statuses)
        last = thread[-1].created_at
        waiting = None if status == Status.RESOLVED else last - timedelta(minutes=1)
        boost = rng.randint(0, 120)
        rows_c.append(
            Conversation(
                id=ids["conversation"],
                workspace=workspace,
                account=account,
                thread_key=thread[0].remote_id,
                customer_id=customer,
                status=status,
                assignee=rng.choice([None, *setup["agents"]]),
                team=setup["team"] if rng.random() < 0.5 else None,
                tags=["fibre"] if rng.random() < 0.1 else [],
                preview=thread[-2].text[:280],
                message_count=POSTS_PER_CONVERSATION,
                last_message_at=last,
                opened_at=opened,
                waiting_since=waiting,
                urgent_since=waiting - timedelta(minutes=boost) if waiting else None,
                priority_boost_minutes=boost,
                first_response_due=opened + timedelta(minutes=60),
                resolution_due=opened + timedelta(days=1),
                first_response_at=opened + timedelta(minutes=rng.uniform(1, 120)),
                first_response_seconds=rng.uniform(60, 7200),
            )
        )
        ids["conversation"] += 1
    Conversation.objects.bulk_create(rows_c, batch_size=1000)
    ConversationTag.objects.bulk_create(
        [
            ConversationTag(workspace=workspace, conversation_id=row.pk, tag=tag)
            for row in rows_c
            for tag in row.tags
        ],
        batch_size=1000,
    )
    Post.objects.bulk_create(rows_p, batch_size=1000)
    Message.objects.bulk_create(rows_m, batch_size=1000)


def _texts(rows: list[Any]) -> list[tuple[str, str]]:
    """Real (customer message, brand reply) pairs of a shipped set."""
    by_id = {row.id: row for row in rows}
    return [
        (by_id[row.in_reply_to].text, row.text)
        for row in rows
        if row.author.is_brand
        and row.in_reply_to in by_id
        and not by_id[row.in_reply_to].author.is_brand
    ]


# Measuring ------------------------------------------------------------------------------------


def timed_get(client: Any, url: str) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds of one request.

    The CPU time is this process's (Django, and SQLite which runs in it; not the PostgreSQL
    server's): on a shared machine it says what the code costs, whatever the load.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    cpu = (time.process_time() - cpu_started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code}")
    return elapsed, cpu


def request_summary(timings: list[tuple[float, float]]) -> dict[str, float]:
    cpu = summary([spent for _wall, spent in timings])
    return {
        **summary([wall for wall, _cpu in timings]),
        "cpu_p50_ms": cpu["p50_ms"],
        "cpu_p95_ms": cpu["p95_ms"],
    }


def measure_pages(filled: dict[str, Any], requests: int, runs: int) -> dict[str, Any]:
    """``runs`` rounds of list and conversation requests on the same filled database.

    Each round gives a p50 and a p95; the figures kept are the medians over the rounds, so
    one round slowed down by the rest of a shared machine does not decide the result.
    """
    from django.test import Client

    from relais.inbox.models import Conversation
    from relais.inbox.suggest import account_index

    workspace, agent = filled["workspace"], filled["agents"][0]
    client = Client(SERVER_NAME="localhost")
    client.force_login(agent)
    slug = workspace.slug
    base = f"/w/{slug}/inbox/"
    views = ["", "?assignee=me", "?breached=1", "?tag=fibre", "?sort=recent"]
    for view in views:  # warm caches and connections once
        timed_get(client, base + view)
    ids = list(
        Conversation.objects.in_workspace(workspace.pk).values_list("pk", flat=True)[:50_000]
    )
    build_started = time.perf_counter()
    for account in filled["accounts"]:
        account_index(account.pk, workspace.pk)
    build_seconds = time.perf_counter() - build_started
    rounds: dict[str, list[dict[str, float]]] = {"list": [], "conversation": []}
    for round_number in range(runs):
        rng = random.Random(11 + round_number)
        lists = [
            timed_get(client, _list_url(base, views[n % len(views)], n, rng))
            for n in range(requests)
        ]
        pages = [
            timed_get(client, f"/w/{slug}/conversations/{rng.choice(ids)}/")
            for _ in range(requests)
        ]
        rounds["list"].append(request_summary(lists))
        rounds["conversation"].append(request_summary(pages))
    return {
        **{kind: median_of_rounds(results) for kind, results in rounds.items()},
        "suggest_index_build_seconds": round(build_seconds, 2),
    }


def median_of_rounds(results: list[dict[str, float]]) -> dict[str, Any]:
    return {
        **{key: round(statistics.median(r[key] for r in results), 2) for key in results[0]},
        "rounds": results,
    }


def _list_url(base: str, view: str, n: int, rng: random.Random) -> str:
    """Most requests look at the first page; one in four goes further down."""
    if n % 4:
        return base + view
    return f"{base}{view}{'&' if view else '?'}page={rng.randint(2, 20)}"


def measure_suggestions(filled: dict[str, Any], requests: int) -> dict[str, Any]:
    from relais.inbox.models import Conversation
    from relais.inbox.suggest import suggest_for

    agent = filled["agents"][0]
    rows = list(
        Conversation.objects.in_workspace(filled["workspace"].pk)
        .select_related("customer", "account")
        .order_by("?")[:requests]
    )
    times = []
    for conversation in rows:
        started = time.perf_counter()
        suggest_for(conversation, agent)
        times.append((time.perf_counter() - started) * 1000)
    return summary(times)


def measure_live_update(filled: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Commit of an ingested post -> event out of the SSE stream -> inbox rows showing it."""
    from django.test import Client

    from relais.connectors.base import InboundAuthor, InboundItem, PostKind
    from relais.core.events import latest_event_id
    from relais.pipeline.actions import do_ingest_items
    from relais.web.live import _event_stream

    workspace = filled["workspace"]
    client = Client(SERVER_NAME="localhost")
    client.force_login(filled["agents"][0])
    rows_url = f"/w/{workspace.slug}/inbox/rows/?sort=recent"
    delays = []
    for attempt in range(repeats):
        seen = threading.Event()
        stop = threading.Event()

        async def follow(
            start: int, seen: threading.Event = seen, stop: threading.Event = stop
        ) -> None:
            stream = _event_stream(workspace.pk, start)
            async for chunk in stream:
                if "conversations.changed" in chunk:
                    seen.set()
                if seen.is_set() or stop.is_set():
                    break

        start = latest_event_id(workspace.pk)
        follower = threading.Thread(target=lambda s=start: asyncio.run(follow(s)))
        follower.start()
        time.sleep(0.2 + random.random() * 0.5)  # land anywhere in the stream's poll cycle
        marker = f"live-{time.time_ns()}-{attempt}"
        item = InboundItem(
            remote_id=f"live:{marker}",
            kind=PostKind.POST,
            author=InboundAuthor(remote_id=f"live-{attempt}", handle=f"live_{attempt}"),
            text=f"@Freebox {marker} plus de connexion",
            created_at=datetime.now(UTC),
            mentions=("Freebox",),
        )
        do_ingest_items(workspace.pk, "sandbox", [item])
        committed = time.perf_counter()
        if not seen.wait(10):
            stop.set()
            raise RuntimeError("the event stream did not deliver the change")
        html = client.get(rows_url).content.decode()
        shown = time.perf_counter()
        follower.join(5)
        if marker not in html:
            raise RuntimeError("the inbox rows do not show the new post")
        delays.append((shown - committed) * 1000)
    return summary(delays)


def measure_here(conversations: int, requests: int, runs: int) -> dict[str, Any]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    filled = fill(conversations)
    pages = measure_pages(filled, requests, runs)
    return {
        "database": connection.vendor,
        "conversations": filled["conversations"],
        "posts": filled["posts"],
        "fill_seconds": filled["fill_seconds"],
        **pages,
        "suggest": measure_suggestions(filled, requests),
        "live_update": measure_live_update(filled, max(5, requests // 20)),
    }


# Orchestration --------------------------------------------------------------------------------


def fresh_postgres(url: str) -> bool:
    """Drop and create the benchmark's own database; False when PostgreSQL does not answer."""
    try:
        import psycopg
    except ImportError:
        return False
    name = url.rsplit("/", 1)[-1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception:  # any failure means: measure SQLite only
        return False
    return True


def run_backend(
    database_url: str | None, conversations: int, requests: int, runs: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="relais-inbox-bench-") as data:
        return _run_in(data, database_url, conversations, requests, runs)


def _run_in(
    data: str, database_url: str | None, conversations: int, requests: int, runs: int
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["RELAIS_DATA_DIR"] = data
    if database_url:
        env["DATABASE_URL"] = database_url
    command = [
        sys.executable,
        __file__,
        "--inner",
        "--conversations",
        str(conversations),
        "--requests",
        str(requests),
        "--runs",
        str(runs),
    ]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"the {database_url or 'sqlite'} run failed")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def suggestion_quality() -> dict[str, Any]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from relais.inbox.suggest_quality import CLOSE_SIMILARITY, evaluate

    figures: dict[str, Any] = {"close_similarity": CLOSE_SIMILARITY}
    for name in ("free", "twcs"):
        quality = evaluate(name)
        figures[name] = {key: value for key, value in vars(quality).items() if key != "dataset"}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 conversations, fewer runs")
    parser.add_argument("--postgres", default=os.environ.get("RELAIS_BENCH_POSTGRES", DEFAULT_PG))
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--runs", type=int, default=3, help="rounds of page requests on each filled database"
    )
    parser.add_argument(
        "--only", choices=("sqlite", "postgresql"), help="measure one database (both by default)"
    )
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(measure_here(args.conversations, args.requests, args.runs)))
        return
    conversations, requests = (10_000, 60) if args.quick else (args.conversations, args.requests)
    rounds = 1 if args.quick else args.runs
    runs = {}
    if args.only != "postgresql":
        runs["sqlite"] = run_backend(None, conversations, requests, rounds)
    if args.only != "sqlite" and fresh_postgres(args.postgres):
        runs["postgresql"] = run_backend(args.postgres, conversations, requests, rounds)
    if not runs:
        raise SystemExit(f"PostgreSQL does not answer at {args.postgres}")
    for name, run in runs.items():
        print(name, json.dumps(run))
    quality = suggestion_quality()
    print("suggestion quality", json.dumps(quality))
    first = next(iter(runs.values()))
    figures = {
        "quick": args.quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "conversations": first["conversations"],
        "posts": first["posts"],
        "database": ", ".join(run["database"] for run in runs.values()),
        # The headline figures are the worst of the databases measured.
        "list_p95_ms": max(run["list"]["p95_ms"] for run in runs.values()),
        "conversation_p95_ms": max(run["conversation"]["p95_ms"] for run in runs.values()),
        "live_update_ms": max(run["live_update"]["p50_ms"] for run in runs.values()),
        "suggest_p95_ms": max(run["suggest"]["p95_ms"] for run in runs.values()),
        "by_database": {
            name: {key: run[key] for key in ("list", "conversation", "suggest", "live_update")}
            for name, run in runs.items()
        },
        "suggestion_quality": quality,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
