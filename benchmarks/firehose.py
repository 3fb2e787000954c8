"""Bluesky firehose: frame decoding speed on one core, and the delay from a PDS write to the inbox.

1. Starts the reference PDS (tools/testbeds/bluesky, installed from npm on first use), has a
   customer write posts, mentions of a brand, replies, reposts and likes, and records every
   firehose frame the PDS sends.
2. Replays those frames from memory, pinned to one core, counting CPU seconds:
   ``decode_frame`` (libipld: DAG-CBOR header + body, CAR blocks) and the connector's whole path
   (decode + the brand filter that builds inbound items), beside libipld alone and, if
   installed, the ``atproto`` SDK's typed path.
3. ``pds_to_inbox_ms``: a real Relais (SQLite in a temporary folder, tasks run in-process) follows
   the PDS firehose with the production consumer; the customer mentions the brand and we time
   from the end of the write on the PDS until the post is stored in the inbox (median).

    .venv/bin/python benchmarks/firehose.py [--quick]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-password-1"  # noqa: S105 -- an account on a throwaway local server


def record_frames(testbed: Any, writes: int) -> tuple[list[bytes], str, str]:
    from websockets.sync.client import connect

    from relais.connectors.networks.bluesky import Xrpc, build_facets, subscribe_url

    brand = testbed.create_account("brand.test", PASSWORD)
    customer = testbed.create_account("customer.test", PASSWORD)
    xrpc = Xrpc(testbed.pds)
    frames: list[bytes] = []
    stop = threading.Event()

    def listen(connected: threading.Event) -> None:
        with connect(subscribe_url(testbed.firehose, 0)) as stream:
            connected.set()
            while not stop.is_set():
                try:
                    message = stream.recv(timeout=0.2)
                except TimeoutError:
                    continue
                if isinstance(message, bytes):
                    frames.append(message)

    connected = threading.Event()
    listener = threading.Thread(target=listen, args=(connected,), daemon=True)
    listener.start()
    connected.wait(10)

    def resolve(handle: str) -> str | None:
        return brand["did"] if handle == "brand.test" else None

    def create(collection: str, record: dict[str, Any]) -> dict[str, Any]:
        return xrpc.procedure(
            "com.atproto.repo.createRecord",
            {
                "repo": customer["did"],
                "collection": collection,
                "record": {"$type": collection, "createdAt": now(), **record},
            },
            token=customer["accessJwt"],
        )

    brand_post = xrpc.procedure(
        "com.atproto.repo.createRecord",
        {
            "repo": brand["did"],
            "collection": "app.bsky.feed.post",
            "record": {"$type": "app.bsky.feed.post", "createdAt": now(), "text": "Hello"},
        },
        token=brand["accessJwt"],
    )
    subject = {"uri": brand_post["uri"], "cid": brand_post["cid"]}
    for number in range(writes):
        shape = number % 5
        if shape == 0:
            text = f"@brand.test order {number} is late #help https://example.com/o/{number}"
            create("app.bsky.feed.post", {"text": text, "facets": build_facets(text, resolve)})
        elif shape == 1:
            create("app.bsky.feed.post", {"text": f"Just a post number {number} 🌟"})
        elif shape == 2:
            create(
                "app.bsky.feed.post",
                {"text": "reply", "reply": {"root": subject, "parent": subject}},
            )
        elif shape == 3:
            create("app.bsky.feed.like", {"subject": subject})
        else:
            create("app.bsky.feed.repost", {"subject": subject})
    time.sleep(1.0)
    stop.set()
    listener.join(5)
    return frames, brand["did"], "brand.test"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def rate(function: Any, frames: list[bytes], seconds: float) -> float:
    """Frames per CPU second of ``function`` over the recorded frames, for ``seconds`` of CPU.

    CPU time of this thread, not wall time: on a shared machine other processes take turns on
    the core, which would count against us in wall time but does not in CPU time.
    """
    done, started = 0, time.thread_time()
    while time.thread_time() - started < seconds:
        for frame in frames:
            function(frame)
        done += len(frames)
    return done / (time.thread_time() - started)


def decode_rates(
    frames: list[bytes], brand_did: str, handle: str, seconds: float
) -> dict[str, Any]:
    import libipld

    from relais.connectors.networks.bluesky import BrandFilter, Directory, Xrpc, decode_frame

    directory = Directory(Xrpc("http://127.0.0.1:9"), "http://127.0.0.1:9")
    for did in {decode_frame(f).repo for f in frames}:
        directory.remember(did, did)  # no lookups inside the timed loop
    brand_filter = BrandFilter(brand_did, handle, directory)

    def libipld_only(frame: bytes) -> None:
        _header, body = libipld.decode_dag_cbor_multi(frame)
        if body.get("blocks"):
            libipld.decode_car(body["blocks"])

    # On the public relay almost no event concerns the brand: measure that case too.
    unrelated_filter = BrandFilter("did:plc:someoneelse", "someone.else", directory)

    def connector_path(frame: bytes) -> None:
        brand_filter.match(decode_frame(frame))

    def connector_path_unrelated(frame: bytes) -> None:
        unrelated_filter.match(decode_frame(frame))

    candidates = {
        "libipld_only": libipld_only,
        "decode_frame": decode_frame,
        "decode_and_filter": connector_path,
        "decode_and_filter_unrelated": connector_path_unrelated,
    }
    runs: dict[str, list[float]] = {name: [] for name in candidates}
    for _round in range(5):  # interleaved, so a busy spell weighs on every candidate alike
        for name, function in candidates.items():
            runs[name].append(rate(function, frames, seconds))
    figures: dict[str, Any] = {name: round(statistics.median(r)) for name, r in runs.items()}
    try:
        from atproto import CAR, firehose_models, parse_subscribe_repos_message
    except ImportError:
        figures["atproto_sdk_typed"] = None
    else:

        def sdk(frame: bytes) -> None:
            message = parse_subscribe_repos_message(firehose_models.Frame.from_bytes(frame))
            if getattr(message, "blocks", None):
                CAR.from_bytes(message.blocks)

        figures["atproto_sdk_typed"] = round(
            statistics.median(rate(sdk, frames, seconds) for _ in range(5))
        )
    return figures


def pds_to_inbox(testbed: Any, samples: int) -> list[float]:
    os.environ["RELAIS_DATA_DIR"] = tempfile.mkdtemp(prefix="relais-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from config.celery import app
    from relais.accounts.actions import do_create_user, do_create_workspace
    from relais.connectors.actions import do_connect_bluesky_account
    from relais.connectors.networks.bluesky import Xrpc, build_facets
    from relais.connectors.streams import consume_account
    from relais.pipeline.models import Post

    app.conf.task_always_eager = True  # storing runs in the consumer's process
    call_command("migrate", verbosity=0)
    owner = do_create_user("bench", "bench-password-123")
    workspace = do_create_workspace("Bench", owner)
    testbed.create_account("relaisbrand.test", PASSWORD)
    account = do_connect_bluesky_account(
        workspace,
        "relaisbrand.test",
        PASSWORD,
        actor=owner,
        service=testbed.pds,
        firehose=testbed.firehose,
        plc=testbed.plc,
    )
    customer = testbed.create_account("writer.test", PASSWORD)
    xrpc = Xrpc(testbed.pds)
    stop, ready = threading.Event(), threading.Event()
    consumer = threading.Thread(
        target=consume_account, args=(account.pk, stop), kwargs={"ready": ready}, daemon=True
    )
    consumer.start()
    ready.wait(15)
    inbox_did = xrpc.query("com.atproto.identity.resolveHandle", {"handle": "relaisbrand.test"})[
        "did"
    ]
    delays = []
    for number in range(samples):
        text = f"@relaisbrand.test question {number}"
        record = {
            "$type": "app.bsky.feed.post",
            "createdAt": now(),
            "text": text,
            "facets": build_facets(text, lambda _h: inbox_did),
        }
        created = xrpc.procedure(
            "com.atproto.repo.createRecord",
            {"repo": customer["did"], "collection": "app.bsky.feed.post", "record": record},
            token=customer["accessJwt"],
        )
        written = time.perf_counter()
        while not Post.objects.filter(remote_id=created["uri"]).exists():
            if time.perf_counter() - written > 10:
                raise RuntimeError("a mention did not reach the inbox within 10 s")
            time.sleep(0.002)
        delays.append((time.perf_counter() - written) * 1000)
        time.sleep(0.2)
    stop.set()
    consumer.join(5)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer writes and shorter timing")
    args = parser.parse_args()
    writes, seconds, samples = (150, 0.3, 10) if args.quick else (1000, 1.0, 40)

    from relais.connectors.tests import bluesky_testbed

    testbed = bluesky_testbed.start()
    try:
        frames, brand_did, handle = record_frames(testbed, writes)
        delays = pds_to_inbox(testbed, samples)
    finally:
        testbed.stop()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for the decode figures
    rates = decode_rates(frames, brand_did, handle, seconds)
    sizes = sorted(len(f) for f in frames)
    result = {
        "events_per_second_one_core": rates["decode_and_filter"],
        "pds_to_inbox_ms": round(statistics.median(delays), 1),
        "pds_to_inbox_ms_p90": round(sorted(delays)[int(0.9 * (len(delays) - 1))], 1),
        "decode_rates_one_core": rates,
        "frames": len(frames),
        "median_frame_bytes": sizes[len(sizes) // 2],
        "samples": len(delays),
        "quick": args.quick,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    for key, value in result.items():
        print(f"{key}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
