"""Record real payloads from the reference PDS for the Bluesky unit tests.

    .venv/bin/python tools/testbeds/bluesky/record_fixtures.py

Starts the local PLC + PDS (see relais/connectors/tests/bluesky_testbed.py), plays a small
scene between a brand and a customer, and writes what the servers answered, and every firehose
frame they sent, to relais/connectors/tests/fixtures/bluesky/. Session tokens are replaced by
placeholders: they are only valid on the throwaway server anyway.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from relais.connectors.networks.bluesky import build_facets, subscribe_url
from relais.connectors.tests import bluesky_testbed

OUT = Path(__file__).resolve().parents[3] / "relais/connectors/tests/fixtures/bluesky"
PASSWORD = "recording-password-1"  # noqa: S105 -- an account on a throwaway local server


def scrub(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        key: "<jwt>" if key in {"accessJwt", "refreshJwt"} else value
        for key, value in payload.items()
    }


def main() -> None:
    testbed = bluesky_testbed.start()
    frames: list[bytes] = []
    stop = threading.Event()
    connected = threading.Event()

    def listen() -> None:
        with connect(subscribe_url(testbed.firehose, None)) as stream:
            connected.set()
            while not stop.is_set():
                try:
                    message = stream.recv(timeout=0.2)
                except TimeoutError:
                    continue
                if isinstance(message, bytes):
                    frames.append(message)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    connected.wait(10)
    try:
        recorded = play_scene(testbed)
        time.sleep(1.0)
    finally:
        stop.set()
        listener.join(5)
        testbed.stop()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "responses.json").write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    (OUT / "firehose_frames.jsonl").write_text(
        "".join(json.dumps(base64.b64encode(f).decode()) + "\n" for f in frames)
    )
    print(f"recorded {len(recorded)} responses and {len(frames)} frames into {OUT}")


def play_scene(testbed: bluesky_testbed.Testbed) -> dict[str, Any]:
    xrpc = f"{testbed.pds}/xrpc"
    recorded: dict[str, Any] = {}
    brand = testbed.create_account("brand.test", PASSWORD)
    customer = testbed.create_account("customer.test", PASSWORD)
    recorded["createAccount"] = scrub(brand)

    def call(name: str, nsid: str, token: str = "", **kwargs: Any) -> dict[str, Any]:
        method = "POST" if "json" in kwargs else "GET"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.request(method, f"{xrpc}/{nsid}", headers=headers, timeout=30, **kwargs)
        body = response.json() if response.content else {}
        recorded[name] = {"status": response.status_code, "body": scrub(body)}
        return dict(body)

    session = call(
        "createSession",
        "com.atproto.server.createSession",
        json={"identifier": "brand.test", "password": PASSWORD},
    )
    call(
        "createSession_wrong_password",
        "com.atproto.server.createSession",
        json={"identifier": "brand.test", "password": "not-the-password"},
    )
    call(
        "createRecord_bad_token",
        "com.atproto.repo.createRecord",
        token="not-a-token",  # noqa: S106 -- a deliberately invalid token
        json={"repo": brand["did"], "collection": "app.bsky.feed.post", "record": {}},
    )
    call(
        "refreshSession_with_access_token",
        "com.atproto.server.refreshSession",
        token=session["accessJwt"],
        json={},
    )
    call("resolveHandle", "com.atproto.identity.resolveHandle", params={"handle": "brand.test"})
    call(
        "resolveHandle_unknown",
        "com.atproto.identity.resolveHandle",
        params={"handle": "nobody.test"},
    )
    recorded["plc_document"] = httpx.get(f"{testbed.plc}/{brand['did']}", timeout=10).json()

    def resolve(handle: str) -> str | None:
        return {"brand.test": brand["did"], "customer.test": customer["did"]}.get(handle)

    def create(who: dict[str, Any], collection: str, record: dict[str, Any]) -> dict[str, Any]:
        record = {"$type": collection, "createdAt": now(), **record}
        response = httpx.post(
            f"{xrpc}/com.atproto.repo.createRecord",
            headers={"Authorization": f"Bearer {who['accessJwt']}"},
            json={"repo": who["did"], "collection": collection, "record": record},
            timeout=30,
        )
        response.raise_for_status()
        return dict(response.json())

    text = (
        "Hé @brand.test 👩‍👩‍👧 my box is down again https://example.com/status?x=1. #panne #Fibre!"
    )
    mention = create(
        customer,
        "app.bsky.feed.post",
        {"text": text, "facets": build_facets(text, resolve), "langs": ["fr"]},
    )
    recorded["mention"] = mention
    call(
        "getRecord",
        "com.atproto.repo.getRecord",
        params={
            "repo": customer["did"],
            "collection": "app.bsky.feed.post",
            "rkey": mention["uri"].rsplit("/", 1)[1],
        },
    )
    ref = {"uri": mention["uri"], "cid": mention["cid"]}
    reply = create(
        brand,
        "app.bsky.feed.post",
        {"text": "Sorry! We are on it.", "reply": {"root": ref, "parent": ref}},
    )
    announcement = create(brand, "app.bsky.feed.post", {"text": "New plans are out #fibre"})
    subject = {"uri": announcement["uri"], "cid": announcement["cid"]}
    create(customer, "app.bsky.feed.repost", {"subject": subject})
    create(customer, "app.bsky.feed.like", {"subject": subject})
    create(
        customer,
        "app.bsky.feed.post",
        {"text": "Look at this", "embed": {"$type": "app.bsky.embed.record", "record": subject}},
    )
    recorded["brand_reply"] = reply
    recorded["announcement"] = announcement
    recorded["dids"] = {"brand": brand["did"], "customer": customer["did"]}
    return recorded


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


if __name__ == "__main__":
    main()
