"""Images attached to a draft: checked once when attached, sent with each account's post.

Every image needs its alt text (what it shows, for people who cannot see it). Types are the ones
every network with images takes, recognised by their first bytes, not by the name or the type
the browser claimed. Networks without images publish the text alone, and the composer says so.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, record_audit
from relais.accounts.models import User
from relais.accounts.roles import Capability
from relais.connectors.base import Capability as NetworkCapability
from relais.connectors.base import MediaFile, sniffed_image_type
from relais.connectors.models import ConnectedAccount
from relais.connectors.registry import CONNECTORS
from relais.core.errors import ValidationFailedError
from relais.publishing.models import Draft, DraftMedia, Target, TargetStatus

MAX_IMAGES = 4
MAX_IMAGE_BYTES = 2_000_000  # Bluesky's limit, the strictest of the networks with images
MAX_ALT_LENGTH = 1000
MEDIA_SALT = "relais.publishing.shared_media"
# Meta fetches the image while the container is made; a retry may come a day later.
MEDIA_URL_LIFETIME = 2 * 24 * 3600


def check_media(draft: Draft, filename: str, data: bytes, alt: str) -> tuple[str, str]:
    """The image's type and its cleaned alt text, or a clear refusal."""
    if draft.media.count() >= MAX_IMAGES:
        raise ValidationFailedError(
            _("A post holds at most %(count)d images.") % {"count": MAX_IMAGES}
        )
    alt = " ".join(alt.split())
    if not alt:
        raise ValidationFailedError(
            _("Describe the image (alt text) for people who cannot see it.")
        )
    if len(alt) > MAX_ALT_LENGTH:
        raise ValidationFailedError(
            _("Alt text is limited to %(limit)d characters.") % {"limit": MAX_ALT_LENGTH}
        )
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationFailedError(
            _("%(name)s is %(size)s bytes; images are limited to %(limit)s bytes.")
            % {"name": filename, "size": f"{len(data):,}", "limit": f"{MAX_IMAGE_BYTES:,}"}
        )
    mime_type = sniffed_image_type(data)
    if not mime_type:
        raise ValidationFailedError(
            _("%(name)s is not a JPEG, PNG, GIF or WebP image.") % {"name": filename}
        )
    return mime_type, alt


def _check_editable(draft: Draft) -> None:
    if draft.targets.exclude(
        status__in=(TargetStatus.DRAFT, TargetStatus.PENDING_APPROVAL, TargetStatus.APPROVED)
    ).exists():
        raise ValidationFailedError(
            _("A scheduled or published post cannot be edited; unschedule it first.")
        )


def _back_to_draft(draft: Draft) -> None:
    """Changed images need approval again, as changed text does."""
    draft.targets.update(status=TargetStatus.DRAFT, approved_by=None)


def do_attach_media(user: User, draft: Draft, filename: str, data: bytes, alt: str) -> DraftMedia:
    check_capability(user, draft.workspace_id, Capability.REPLY)
    _check_editable(draft)
    mime_type, alt = check_media(draft, filename, data, alt)
    with transaction.atomic():
        media = DraftMedia.objects.create(
            workspace_id=draft.workspace_id,
            draft=draft,
            filename=filename[-255:] or "image",
            mime_type=mime_type,
            data=data,
            alt=alt,
        )
        _back_to_draft(draft)
        record_audit(draft.workspace_id, user, "publishing.media_attached", draft, file=filename)
    return media


def do_remove_media(user: User, media: DraftMedia) -> None:
    check_capability(user, media.workspace_id, Capability.REPLY)
    _check_editable(media.draft)
    with transaction.atomic():
        _back_to_draft(media.draft)
        record_audit(media.workspace_id, user, "publishing.media_removed", media.draft)
        media.delete()


def outbound_media(target: Target) -> tuple[MediaFile, ...]:
    """The draft's images as the connector takes them, with their public address if any."""
    return tuple(
        MediaFile(
            filename=m.filename,
            mime_type=m.mime_type,
            data=bytes(m.data),
            alt=m.alt,
            url=public_media_url(m),
        )
        for m in DraftMedia.objects.filter(draft_id=target.draft_id)
    )


def public_media_url(media: DraftMedia) -> str:
    """A signed address anyone may fetch the image at for a while ('' without a public URL)."""
    base = settings.RELAIS.get("PUBLIC_URL", "")
    if not base:
        return ""
    token = signing.dumps(media.pk, salt=MEDIA_SALT, compress=True)
    return f"{base}{reverse('shared_media', args=[token])}"


def shared_media(token: str) -> DraftMedia | None:
    """The image a signed address names, while it is valid."""
    try:
        media_id = signing.loads(token, salt=MEDIA_SALT, max_age=MEDIA_URL_LIFETIME)
    except signing.BadSignature:
        return None
    return DraftMedia.objects.filter(pk=media_id).first()


def check_images_for_networks(draft: Draft) -> None:
    """A network that publishes nothing without an image (Instagram) is told before approval."""
    if draft.media.exists():
        return
    for target in draft.targets.select_related("account"):
        connector = CONNECTORS.get(target.account.network)
        if connector is not None and connector.requires_image:
            raise ValidationFailedError(
                _("A post to %(network)s needs an image: attach one first.")
                % {"network": connector.display_name}
            )


def carries_images(account: ConnectedAccount) -> bool:
    connector = CONNECTORS.get(account.network)
    return connector is not None and NetworkCapability.IMAGES in connector.capabilities
