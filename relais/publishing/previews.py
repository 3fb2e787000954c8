"""Link previews of a draft: the cards networks show under a post with a link.

Each web address of the draft is read once (``connectors/linkpreview.py``, the only code that
fetches pages) and kept per workspace: a preview for a week, a failure for an hour, so a page
fixed since is read again.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction

from relais.accounts.actions import check_capability, record_audit
from relais.accounts.models import User
from relais.accounts.roles import Capability
from relais.connectors.linkpreview import LinkPreviewError, fetch_preview
from relais.core import clock
from relais.publishing.counting import URL
from relais.publishing.models import Draft, LinkPreview

KEEP_PREVIEW = timedelta(days=7)
KEEP_FAILURE = timedelta(hours=1)
MAX_PER_DRAFT = 3


def draft_urls(draft: Draft) -> list[str]:
    """The draft's first web addresses, in order, without its own short links."""
    own = f"{draft.link_base}/l/" if draft.link_base else None
    urls = [url for url in URL.findall(draft.text) if not (own and url.startswith(own))]
    return list(dict.fromkeys(url for url in urls if "…" not in url))[:MAX_PER_DRAFT]


def previews_of(draft: Draft) -> tuple[list[LinkPreview], bool]:
    """The draft's previews found, and whether some address still needs reading."""
    urls = draft_urls(draft)
    known = {
        preview.url: preview
        for preview in LinkPreview.objects.in_workspace(draft.workspace_id).filter(url__in=urls)
    }
    now = clock.now()
    stale = any(url not in known or _expired(known[url], now) for url in urls)
    found = [known[url] for url in urls if url in known and not known[url].error]
    return found, stale


def _expired(preview: LinkPreview, now: object) -> bool:
    keep = KEEP_FAILURE if preview.error else KEEP_PREVIEW
    return preview.fetched_at + keep < now  # type: ignore[operator]


def do_fetch_link_previews(user: User, draft: Draft) -> int:
    """Read the draft's addresses whose preview is missing or old; returns how many were read."""
    check_capability(user, draft.workspace_id, Capability.VIEW)
    now = clock.now()
    known = {
        preview.url: preview
        for preview in LinkPreview.objects.in_workspace(draft.workspace_id).filter(
            url__in=draft_urls(draft)
        )
    }
    wanted = [url for url in draft_urls(draft) if url not in known or _expired(known[url], now)]
    for url in wanted:
        try:
            page = fetch_preview(url)
        except LinkPreviewError as error:
            values = {"title": "", "description": "", "image_url": "", "site_name": ""}
            values["error"] = (str(error) or type(error).__name__)[:500]
        else:
            values = {
                "title": page.title,
                "description": page.description,
                "image_url": page.image_url,
                "site_name": page.site_name,
                "error": "",
            }
        with transaction.atomic():
            preview, _created = LinkPreview.objects.update_or_create(
                workspace_id=draft.workspace_id, url=url, defaults=values | {"fetched_at": now}
            )
            record_audit(draft.workspace_id, user, "publishing.link_previewed", preview)
    return len(wanted)
