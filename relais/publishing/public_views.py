"""Pages anyone reaches from a post: the short-link redirect and an offer's landing page."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from relais.core import clock
from relais.core.errors import RelaisError
from relais.publishing import links
from relais.publishing.actions import do_claim
from relais.publishing.media import shared_media
from relais.publishing.models import Offer, TrackedLink

FORWARDER_PARAM = links.FORWARDER_PARAM


@require_GET
def follow_link(request: HttpRequest, code: str) -> HttpResponse:
    """Redirect at once; the click is queued and written in a batch by ``links.recorder``.

    ``relais.publishing.asgi`` answers the same requests before Django's middleware when the
    server runs its application; this view is the same redirect for everything else.
    """
    link = links.resolve(code)
    if link is None:
        raise Http404
    forwarder = request.GET.get(FORWARDER_PARAM, "")
    user_agent = str(request.META.get("HTTP_USER_AGENT", ""))
    links.record_click(
        link, links.client_address(request), user_agent, clock.now().date(), forwarder
    )
    response = HttpResponseRedirect(links.redirect_location(link, forwarder))
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def shared_image(request: HttpRequest, token: str) -> HttpResponse:
    """A post's image for a network that fetches it itself (Instagram), by a signed address."""
    media = shared_media(token)
    if media is None:
        raise Http404
    response = HttpResponse(bytes(media.data), content_type=media.mime_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_http_methods(["GET", "POST"])
def offer_landing(request: HttpRequest, code: str) -> HttpResponse:
    link = TrackedLink.objects.select_related("offer").filter(code=code).first()
    if link is None or link.offer is None:
        raise Http404
    context: dict[str, object] = {"offer": link.offer, "link": link}
    status = 200
    if request.method == "POST":
        try:
            context["claim"] = do_claim(
                link.offer.pk,
                link=link,
                forwarder=request.POST.get(FORWARDER_PARAM, ""),
                claimant=links.claimant_hash(link.offer.pk, request),
            )
        except RelaisError as refusal:
            context["refusal"], status = str(refusal), 409
        context["offer"] = Offer.objects.get(pk=link.offer.pk)
    context["forwarder"] = request.GET.get(FORWARDER_PARAM) or request.POST.get(FORWARDER_PARAM, "")
    return render(request, "publishing/landing.html", context, status=status)
