"""Meta's webhooks: Page feed changes, Messenger, Instagram comments and Direct messages.

One callback serves every Page and Instagram account of the deployment's Meta app
(``/hooks/meta/``):

- ``GET`` is Meta's subscription check: ``hub.mode=subscribe`` with the verify token the admin
  typed in the app dashboard (``settings.RELAIS["FACEBOOK_VERIFY_TOKEN"]``) is answered with
  ``hub.challenge``; anything else gets 403.
- ``POST`` is an event. Its ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body keyed by the
  app secret, ``settings.RELAIS["FACEBOOK_APP_SECRET"]``) is checked first: an unsigned or
  wrongly signed request is refused (403, logged) and not stored, since anyone can send one.
  A workspace connected through its own Meta app (Facebook Login) gets that app's events
  signed with that app's secret, kept with the accounts: the secrets of the accounts the body
  names are tried after the deployment's.
  A signed event is stored as received (``WebhookEvent``) and committed before it is read, so
  nothing Meta sent is lost whatever happens next. It is then read: each entry goes to the
  connected accounts of its Page or Instagram id, whose items are accepted into the pipeline in
  the same transaction that marks the event accepted. A body that is not a Meta event is kept as
  ``rejected`` with the reason and answered 400; an event for no connected account is kept as
  ``unmatched``. ``do_process_pending_webhook_events`` reads events left ``received`` (a crash
  between the two transactions), and is safe to run again: storing posts is idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from relais.connectors.credentials import UnreadableCredentialsError, decrypt_credentials
from relais.connectors.models import (
    AccountStatus,
    ConnectedAccount,
    WebhookEvent,
    WebhookEventStatus,
)
from relais.connectors.networks.facebook import GraphConnector, app_secret
from relais.core import clock
from relais.pipeline.actions import do_accept_items

logger = logging.getLogger(__name__)

STRANDED_AFTER = timedelta(minutes=1)  # an event still 'received' this long after was dropped
MAX_BODY_BYTES = 1_000_000  # Meta batches up to 1,000 updates; far below this
OBJECTS = {"page": ("facebook", "page_id"), "instagram": ("instagram", "ig_user_id")}
MAX_SIGNING_ENTRIES = 20  # entries of a not-yet-verified body whose accounts' secrets are tried


class RejectedEventError(ValueError):
    """A signed body that is not a Meta event we can read; it is kept with this reason."""


def signature_matches(body: bytes, header: str, secret: str) -> bool:
    if not secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def signed_by_a_known_app(body: bytes, signature: str) -> bool:
    """Signed with the deployment's app secret, or with the own app secret of an account the
    body names (each Meta app signs its own events)."""
    if signature_matches(body, signature, app_secret()):
        return True
    return any(signature_matches(body, signature, secret) for secret in _named_app_secrets(body))


def _named_app_secrets(body: bytes) -> set[str]:
    """App secrets kept with the accounts of the body's first entries (the body is unverified:
    only a bounded number of look-ups)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return set()
    if not isinstance(payload, dict) or payload.get("object") not in OBJECTS:
        return set()
    entries = payload.get("entry")
    if not isinstance(entries, list):
        return set()
    found = set()
    for entry in entries[:MAX_SIGNING_ENTRIES]:
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        for account in _accounts_for(str(payload["object"]), str(entry["id"])):
            with contextlib.suppress(UnreadableCredentialsError):
                if secret := decrypt_credentials(account.credentials).get("app_secret"):
                    found.add(str(secret))
    return found


def do_store_webhook_event(network: str, body: bytes, signature: str) -> WebhookEvent:
    """Keep the raw event, committed on its own, before anything reads it."""
    with transaction.atomic():
        return WebhookEvent.objects.create(
            network=network, body=body.decode("utf-8", errors="replace"), signature=signature[:200]
        )


def _accounts_for(object_kind: str, entry_id: str) -> list[ConnectedAccount]:
    """Every workspace's active account of that Page or Instagram id (several may share one)."""
    network, setting = OBJECTS[object_kind]
    lookup = {f"settings__{setting}": entry_id}
    return list(
        ConnectedAccount.objects.filter(network=network, status=AccountStatus.ACTIVE, **lookup)
    )


def _parse(event: WebhookEvent) -> tuple[str, list[dict[str, Any]]]:
    try:
        payload = json.loads(event.body)
    except ValueError as exc:
        raise RejectedEventError(f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("object") not in OBJECTS:
        raise RejectedEventError("not a Page or Instagram event (object is missing or unknown)")
    entries = payload.get("entry")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and e.get("id") for e in entries
    ):
        raise RejectedEventError("entry must be a list of objects with an id")
    return str(payload["object"]), entries


def do_process_webhook_event(event: WebhookEvent) -> WebhookEvent:
    """Read a stored event and hand its items to the pipeline; the status says what happened."""
    from relais.connectors.registry import connector_for

    try:
        object_kind, entries = _parse(event)
    except RejectedEventError as exc:
        logger.warning("webhook event %s rejected: %s; body=%s", event.pk, exc, event.body[:4000])
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=WebhookEventStatus.REJECTED, error=str(exc)[:2000]
        )
        event.status, event.error = WebhookEventStatus.REJECTED, str(exc)
        raise
    with transaction.atomic():
        accepted = matched = skipped = 0
        for entry in entries:
            for account in _accounts_for(object_kind, str(entry["id"])):
                matched += 1
                connector = connector_for(account)
                assert isinstance(connector, GraphConnector)
                items, bad = connector.webhook_items(entry)
                do_accept_items(account.workspace_id, account.network, items)
                accepted += len(items)
                skipped += bad
        status = WebhookEventStatus.ACCEPTED if matched else WebhookEventStatus.UNMATCHED
        error = f"{skipped} malformed part(s) skipped, logged" if skipped else ""
        WebhookEvent.objects.filter(pk=event.pk).update(status=status, items=accepted, error=error)
    event.status, event.items, event.error = status, accepted, error
    return event


def do_process_pending_webhook_events(limit: int = 500, *, now: datetime | None = None) -> int:
    """Read events stored but never read (a crash after storing); returns how many were.

    Only events older than STRANDED_AFTER: a younger one is still being read by its request.
    """
    cutoff = (now or clock.now()) - STRANDED_AFTER
    pending = WebhookEvent.objects.filter(
        status=WebhookEventStatus.RECEIVED, received_at__lt=cutoff
    ).order_by("pk")
    done = 0
    for event in pending[:limit]:
        with contextlib.suppress(RejectedEventError):  # kept as rejected, with its reason
            do_process_webhook_event(event)
        done += 1
    return done


@csrf_exempt
@require_http_methods(["GET", "POST"])
def meta_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _verify_subscription(request)
    body = request.body
    signature = request.headers.get("X-Hub-Signature-256", "")
    if len(body) > MAX_BODY_BYTES:  # before anything reads it
        logger.warning("refused a Meta webhook of %d bytes", len(body))
        return HttpResponse("body too large\n", status=413)
    if not signed_by_a_known_app(body, signature):
        logger.warning(
            "refused a Meta webhook without a valid signature (%d bytes, signature %r)",
            len(body),
            signature[:80],
        )
        return HttpResponse("invalid or missing X-Hub-Signature-256\n", status=403)
    event = do_store_webhook_event("meta", body, signature)
    try:
        do_process_webhook_event(event)
    except RejectedEventError as exc:
        return HttpResponse(f"rejected and kept as event {event.pk}: {exc}\n", status=400)
    return HttpResponse(f"{event.status}: {event.items} item(s)\n", content_type="text/plain")


def _verify_subscription(request: HttpRequest) -> HttpResponse:
    expected = str(settings.RELAIS.get("FACEBOOK_VERIFY_TOKEN") or "")
    mode = request.GET.get("hub.mode", "")
    token = request.GET.get("hub.verify_token", "")
    if mode == "subscribe" and expected and hmac.compare_digest(token, expected):
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
    logger.warning("refused a Meta webhook subscription check (mode %r)", mode)
    return HttpResponse("verification failed\n", status=403)
