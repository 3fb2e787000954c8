"""Images with alt text in the composer: checked when attached, sent with the post."""

import struct
import zlib

import pytest
from django.urls import reverse

from relais.publishing import actions, media
from relais.publishing.models import DraftMedia, TargetStatus

pytestmark = pytest.mark.django_db


def png(width: int = 4, height: int = 3) -> bytes:
    """A real PNG file (grey pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = (b"\x00" + b"\x80" * width) * height
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels))


def attach(client, draft, name, data, alt):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(name, data, content_type="image/png")
    response = client.post(
        reverse("publishing_attach_media", args=[draft.workspace.slug]),
        {"id": draft.pk, "image": upload, "alt": alt},
    )
    return client.get(response["Location"]).content.decode()


def test_an_image_is_attached_with_its_alt_text_and_shown_per_account(
    client, owner, workspace, brand_account
):
    draft = actions.do_create_draft(owner, workspace.pk, "New colours", [brand_account.pk])
    actions.do_submit_for_approval(owner, draft)
    client.force_login(owner)
    page = attach(client, draft, "grey.png", png(), "  A grey   laptop lid ")
    image = DraftMedia.objects.get()
    assert (image.mime_type, image.alt) == ("image/png", "A grey laptop lid")
    assert 'alt="A grey laptop lid"' in page
    assert "sandbox posts the text without the images" in page  # the sandbox takes no image
    assert draft.targets.get().status == TargetStatus.DRAFT  # to approve again
    served = client.get(reverse("publishing_media_file", args=[workspace.slug]) + f"?id={image.pk}")
    assert served["Content-Type"] == "image/png"
    assert served.content == png()


@pytest.mark.parametrize(
    "case",
    [
        ("lid.png", png(), "   ", "Describe the image"),
        ("notes.png", b"just text, not an image", "Notes", "not a JPEG, PNG, GIF or WebP"),
        ("big.png", png() + bytes(media.MAX_IMAGE_BYTES), "Big", "limited to 2,000,000 bytes"),
    ],
)
def test_what_cannot_be_posted_is_refused_with_the_reason(
    client, owner, workspace, brand_account, case
):
    name, data, alt, refusal = case
    draft = actions.do_create_draft(owner, workspace.pk, "New colours", [brand_account.pk])
    client.force_login(owner)
    assert refusal in attach(client, draft, name, data, alt)
    assert not DraftMedia.objects.exists()


def test_at_most_four_images_and_none_once_scheduled(owner, workspace, brand_account):
    draft = actions.do_create_draft(owner, workspace.pk, "Gallery", [brand_account.pk])
    for number in range(media.MAX_IMAGES):
        media.do_attach_media(owner, draft, f"{number}.png", png(), f"Picture {number}")
    with pytest.raises(actions.ValidationFailedError, match="at most 4 images"):
        media.do_attach_media(owner, draft, "5.png", png(), "One too many")
    media.do_remove_media(owner, DraftMedia.objects.earliest("pk"))
    actions.do_submit_for_approval(owner, draft)
    actions.do_approve(owner, draft)
    actions.do_schedule(owner, draft, actions.clock.now() + actions.timedelta(hours=1))
    with pytest.raises(actions.ValidationFailedError, match="unschedule it first"):
        media.do_attach_media(owner, draft, "late.png", png(), "Too late")
    assert [m.alt for m in media.outbound_media(draft.targets.get())] == [
        "Picture 1",
        "Picture 2",
        "Picture 3",
    ]
