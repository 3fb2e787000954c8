"""Publishing pages: composer, drafts and approval, queue, offers and their campaign page.

Ids travel in the query string (pages) or the form (actions), like the other workspace pages.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from relais.accounts.access import WorkspaceRequest, workspace_view
from relais.accounts.actions import membership_of
from relais.accounts.roles import Capability, Role, role_allows
from relais.connectors.budget import x_post_cost_warning
from relais.core import clock
from relais.core.errors import RelaisError, ValidationFailedError
from relais.publishing import actions, media, queries
from relais.publishing.counting import count_for, preview_networks
from relais.publishing.models import CodeMode, Draft, Recurrence, TargetStatus
from relais.publishing.previews import do_fetch_link_previews, previews_of
from relais.publishing.reach import Reach

WEEKDAYS = range(7)


def _id(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise Http404 from None


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


def _local(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailedError(_("Enter a date and time.")) from None


def _draft_url(request: WorkspaceRequest, draft_id: int) -> str:
    return reverse("publishing_draft", args=[request.workspace.slug]) + f"?id={draft_id}"


def _campaign_url(request: WorkspaceRequest, offer_id: int) -> str:
    return reverse("publishing_campaign", args=[request.workspace.slug]) + f"?id={offer_id}"


def _counts(request: WorkspaceRequest, text: str, account_ids: list[int]) -> list[Any]:
    """(count, chosen, warning) per network; X warns when a post costs more (a link) or more
    than the workspace's API budget has left."""
    chosen = {a.network for a in queries.accounts(request.workspace.pk).filter(pk__in=account_ids)}
    return [
        (
            count_for(network, text),
            network in chosen,
            x_post_cost_warning(request.workspace.pk, text)
            if network == "x" and network in chosen
            else "",
        )
        for network in sorted(chosen) or preview_networks()
    ]


@workspace_view(Capability.VIEW)
@require_GET
def index(request: WorkspaceRequest) -> HttpResponse:
    workspace_id = request.workspace.pk
    membership = request.membership
    return render(
        request,
        "publishing/index.html",
        {
            "nav": "publishing",
            "drafts": queries.drafts(workspace_id)[:100],
            "accounts": queries.accounts(workspace_id),
            "counts": _counts(request, "", []),
            "slots": queries.queue_slots(workspace_id),
            "weekdays": [(day, _weekday_name(day)) for day in WEEKDAYS],
            "approver_roles": actions.approver_roles(workspace_id),
            "roles": Role.choices,
            "can_compose": role_allows(membership.role, Capability.REPLY),
            "can_set_roles": role_allows(membership.role, Capability.MANAGE_MEMBERS),
        },
    )


def _weekday_name(day: int) -> str:
    return [
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    ][day]


@workspace_view(Capability.REPLY)
@require_POST
def count(request: WorkspaceRequest) -> HttpResponse:
    counts = _counts(request, request.POST.get("text", ""), _ids(request.POST.getlist("account")))
    return render(request, "publishing/partials/counts.html", {"counts": counts})


@workspace_view(Capability.REPLY)
@require_POST
def create_draft(request: WorkspaceRequest) -> HttpResponse:
    try:
        draft = actions.do_create_draft(
            request.user,
            request.workspace.pk,
            request.POST.get("text", ""),
            _ids(request.POST.getlist("account")),
            link_base=request.build_absolute_uri("/") if request.POST.get("track_links") else "",
        )
    except RelaisError as error:
        messages.error(request, str(error))
        return redirect("publishing", workspace_slug=request.workspace.slug)
    return redirect(_draft_url(request, draft.pk))


@workspace_view(Capability.VIEW)
@require_GET
def draft_page(request: WorkspaceRequest) -> HttpResponse:
    found = queries.draft(request.workspace.pk, _id(request.GET.get("id")))
    return render(request, "publishing/draft.html", _draft_context(request, found))


def _draft_context(request: WorkspaceRequest, found: Draft) -> dict[str, Any]:
    targets = list(found.targets.all())
    membership = membership_of(request.user, request.workspace.pk)
    statuses = {t.status for t in targets}
    previews, previews_stale = previews_of(found)
    return {
        "nav": "publishing",
        "draft": found,
        "targets": targets,
        "accounts": queries.accounts(request.workspace.pk),
        "chosen": {t.account_id for t in targets},
        "counts": _counts(request, found.text, [t.account_id for t in targets]),
        "comments": found.comments.select_related("author").order_by("created_at"),
        "editable": statuses <= set(actions.EDITABLE),
        "statuses": statuses,
        "can_approve": membership is not None
        and membership.role in actions.approver_roles(request.workspace.pk),
        "recurrences": Recurrence.choices,
        "time_zone": request.workspace.time_zone,
        "Status": TargetStatus,
        "engagement": queries.engagement(request.workspace.pk, targets)[0],
        "previews": previews,
        "media": list(found.media.all()),
        "max_images": media.MAX_IMAGES,
        "image_accounts": {t.account_id for t in targets if media.carries_images(t.account)},
        "previews_stale": previews_stale,
    }


@workspace_view(Capability.REPLY)
@require_POST
def attach_media(request: WorkspaceRequest) -> HttpResponse:
    found = queries.draft(request.workspace.pk, _id(request.POST.get("id")))
    upload = request.FILES.get("image")
    try:
        if upload is None:
            raise ValidationFailedError(_("Choose an image to attach."))
        if upload.size and upload.size > media.MAX_IMAGE_BYTES:
            raise ValidationFailedError(
                _("%(name)s is %(size)s bytes; images are limited to %(limit)s bytes.")
                % {
                    "name": upload.name,
                    "size": f"{upload.size:,}",
                    "limit": f"{media.MAX_IMAGE_BYTES:,}",
                }
            )
        data = upload.read(media.MAX_IMAGE_BYTES + 1)
        media.do_attach_media(
            request.user, found, upload.name or "image", data, request.POST.get("alt", "")
        )
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect(_draft_url(request, found.pk))


@workspace_view(Capability.REPLY)
@require_POST
def remove_media(request: WorkspaceRequest) -> HttpResponse:
    found = queries.media(request.workspace.pk, _id(request.POST.get("media")))
    try:
        media.do_remove_media(request.user, found)
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect(_draft_url(request, found.draft_id))


@workspace_view(Capability.VIEW)
@require_GET
def media_file(request: WorkspaceRequest) -> HttpResponse:
    """An attached image, for the composer's previews (its type was checked from its bytes)."""
    found = queries.media(request.workspace.pk, _id(request.GET.get("id")))
    response = HttpResponse(bytes(found.data), content_type=found.mime_type)
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@workspace_view(Capability.VIEW)
@require_POST
def fetch_previews(request: WorkspaceRequest) -> HttpResponse:
    """Read the draft's link previews (htmx, once the page is shown); answers the page."""
    found = queries.draft(request.workspace.pk, _id(request.POST.get("id")))
    do_fetch_link_previews(request.user, found)
    return render(request, "publishing/draft.html", _draft_context(request, found))


@workspace_view(Capability.REPLY)
@require_POST
def save_draft(request: WorkspaceRequest) -> HttpResponse:
    """Autosave (htmx) and the edit form: both go through ``do_update_draft``."""
    found = queries.draft(request.workspace.pk, _id(request.POST.get("id")))
    account_ids = _ids(request.POST.getlist("account"))
    text = request.POST.get("text", "")
    try:
        actions.do_update_draft(request.user, found, text, account_ids)
    except RelaisError as error:
        if request.headers.get("HX-Request"):
            context: dict[str, Any] = {
                "counts": _counts(request, text, account_ids),
                "error": str(error),
            }
            return render(request, "publishing/partials/counts.html", context, status=400)
        messages.error(request, str(error))
    if request.headers.get("HX-Request"):
        saved = {"counts": _counts(request, text, account_ids), "saved": True}
        return render(request, "publishing/partials/counts.html", saved)
    return redirect(_draft_url(request, found.pk))


def _schedule(request: WorkspaceRequest, found: Draft) -> object:
    when = _local(request.POST.get("when", ""))
    return actions.do_schedule(
        request.user, found, when, recurrence=request.POST.get("recurrence", "")
    )


STEPS: dict[str, Callable[[WorkspaceRequest, Draft], object]] = {
    "submit": lambda request, found: actions.do_submit_for_approval(request.user, found),
    "approve": lambda request, found: actions.do_approve(request.user, found),
    "changes": lambda request, found: actions.do_request_changes(
        request.user, found, request.POST.get("reason", "")
    ),
    "schedule": _schedule,
    "queue": lambda request, found: actions.do_add_to_queue(request.user, found),
    "unschedule": lambda request, found: actions.do_unschedule(request.user, found),
    "comment": lambda request, found: actions.do_add_comment(
        request.user, found, request.POST.get("text", "")
    ),
}


@workspace_view(Capability.VIEW)
@require_POST
def draft_step(request: WorkspaceRequest) -> HttpResponse:
    found = queries.draft(request.workspace.pk, _id(request.POST.get("id")))
    step = STEPS.get(request.POST.get("step", ""))
    if step is None:
        raise Http404
    try:
        step(request, found)
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect(_draft_url(request, found.pk))


@workspace_view(Capability.VIEW)
@require_GET
def calendar(request: WorkspaceRequest) -> HttpResponse:
    """The month (``?month=2026-03``) or the week (``?week=2026-03-09``, any day of it)."""
    today = clock.now().astimezone(ZoneInfo(request.workspace.time_zone)).date()
    context: dict[str, Any] = {
        "nav": "publishing",
        "today": today,
        "weekdays": [_weekday_name(day) for day in WEEKDAYS],
        "can_move": role_allows(request.membership.role, Capability.REPLY),
    }
    if "week" in request.GET:
        return _week(request, context, today)
    try:
        first = date.fromisoformat(request.GET.get("month", "") + "-01")
    except ValueError:
        first = today.replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    context |= {
        "weeks": queries.month_calendar(request.workspace.pk, request.workspace.time_zone, first),
        "month": first,
        "previous": previous.strftime("%Y-%m"),
        "following": following.strftime("%Y-%m"),
        "week_of": today if first.month == today.month else first,
    }
    return render(request, "publishing/calendar.html", context)


def _week(request: WorkspaceRequest, context: dict[str, Any], today: date) -> HttpResponse:
    try:
        day = date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        day = today
    monday = day - timedelta(days=day.weekday())
    context |= {
        "hours": queries.week_calendar(request.workspace.pk, request.workspace.time_zone, monday),
        "monday": monday,
        "days": [monday + timedelta(days=n) for n in WEEKDAYS],
        "previous": (monday - timedelta(days=7)).isoformat(),
        "following": (monday + timedelta(days=7)).isoformat(),
    }
    return render(request, "publishing/calendar_week.html", context)


@workspace_view(Capability.REPLY)
@require_POST
def move_target(request: WorkspaceRequest) -> HttpResponse:
    """Drag and drop (a day, or a day and an hour) and the keyboard's form (a date and time)."""
    found = queries.target(request.workspace.pk, _id(request.POST.get("target")))
    form = request.POST
    try:
        if form.get("when"):
            actions.do_reschedule_target(request.user, found, _local(form["when"]))
        else:
            hour = int(form["hour"]) if form.get("hour", "").isdigit() else None
            actions.do_move_to_day(
                request.user, found, date.fromisoformat(form.get("day", "")), hour
            )
    except ValueError:
        messages.error(request, _("Choose a day."))
    except RelaisError as error:
        messages.error(request, str(error))
    back = form.get("back", "")
    if url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        return redirect(back)
    month = form.get("day", "")[:7]
    return redirect(
        reverse("publishing_calendar", args=[request.workspace.slug]) + f"?month={month}"
    )


@workspace_view(Capability.REPLY)
@require_POST
def retry_target(request: WorkspaceRequest) -> HttpResponse:
    found = queries.target(request.workspace.pk, _id(request.POST.get("target")))
    try:
        actions.do_retry_target(request.user, found)
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect(_draft_url(request, found.draft_id))


@workspace_view(Capability.REPLY)
@require_POST
def adapt_target(request: WorkspaceRequest) -> HttpResponse:
    found = queries.target(request.workspace.pk, _id(request.POST.get("target")))
    try:
        actions.do_adapt_target(request.user, found, request.POST.get("text", ""))
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect(_draft_url(request, found.draft_id))


@workspace_view(Capability.MANAGE_MEMBERS)
@require_POST
def set_approvers(request: WorkspaceRequest) -> HttpResponse:
    try:
        actions.do_set_approver_roles(request.user, request.workspace, request.POST.getlist("role"))
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect("publishing", workspace_slug=request.workspace.slug)


@workspace_view(Capability.REPLY)
@require_POST
def add_slot(request: WorkspaceRequest) -> HttpResponse:
    try:
        at = time.fromisoformat(request.POST.get("time", ""))
        actions.do_add_queue_slot(request.user, request.workspace, _id(request.POST.get("day")), at)
    except ValueError:
        messages.error(request, _("Enter a time."))
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect("publishing", workspace_slug=request.workspace.slug)


@workspace_view(Capability.REPLY)
@require_POST
def remove_slot(request: WorkspaceRequest) -> HttpResponse:
    slot = queries.queue_slots(request.workspace.pk).filter(pk=_id(request.POST.get("slot")))
    if found := slot.first():
        actions.do_remove_queue_slot(request.user, found)
    return redirect("publishing", workspace_slug=request.workspace.slug)


# Offers and campaigns -----------------------------------------------------------------------


@workspace_view(Capability.VIEW)
@require_GET
def offers(request: WorkspaceRequest) -> HttpResponse:
    return render(
        request,
        "publishing/offers.html",
        {
            "nav": "publishing",
            "offers": queries.offers(request.workspace.pk),
            "code_modes": CodeMode.choices,
            "time_zone": request.workspace.time_zone,
            "can_compose": role_allows(request.membership.role, Capability.REPLY),
        },
    )


@workspace_view(Capability.REPLY)
@require_POST
def create_offer(request: WorkspaceRequest) -> HttpResponse:
    form = request.POST
    try:
        offer = actions.do_create_offer(
            request.user,
            request.workspace,
            product=form.get("product", ""),
            price=_price(form.get("price", "")),
            stock=_id(form.get("stock")),
            starts_at=_local(form.get("starts_at", "")),
            ends_at=_local(form.get("ends_at", "")),
            code_mode=form.get("code_mode", CodeMode.SHARED),
            shared_code=form.get("shared_code", ""),
            currency=form.get("currency", "EUR") or "EUR",
            reply_keywords=form.get("reply_keywords", ""),
        )
    except Http404:
        messages.error(request, _("Enter the stock as a number of units."))
    except RelaisError as error:
        messages.error(request, str(error))
    else:
        return redirect(_campaign_url(request, offer.pk))
    return redirect("publishing_offers", workspace_slug=request.workspace.slug)


def _price(value: str) -> Decimal:
    try:
        return Decimal(value.replace(",", "."))
    except InvalidOperation:
        raise ValidationFailedError(_("Enter a price.")) from None


def _campaign_context(request: WorkspaceRequest, offer_id: int) -> dict[str, Any]:
    now = clock.now()
    report = queries.offer_report(request.workspace.pk, offer_id, now)
    pictures = [(line, *queries.cascade_picture(line.target, now)) for line in report.posts]
    return {
        "nav": "publishing",
        "report": report,
        "offer": report.offer,
        "pictures": pictures,
        "policy": actions.policy_for(request.workspace.pk),
        "accounts": queries.accounts(request.workspace.pk),
        "drafts": report.offer.drafts.order_by("created_at"),
        "offer_replies": queries.offer_replies(request.workspace.pk, offer_id)[:50],
        "can_compose": role_allows(request.membership.role, Capability.REPLY),
        "can_simulate": role_allows(request.membership.role, Capability.MANAGE_ACCOUNTS),
    }


@workspace_view(Capability.VIEW)
@require_GET
def campaign(request: WorkspaceRequest) -> HttpResponse:
    context = _campaign_context(request, _id(request.GET.get("id")))
    return render(request, "publishing/campaign.html", context)


@workspace_view(Capability.VIEW)
@require_GET
def campaign_live(request: WorkspaceRequest) -> HttpResponse:
    context = _campaign_context(request, _id(request.GET.get("id")))
    return render(request, "publishing/partials/campaign_live.html", context)


@workspace_view(Capability.REPLY)
@require_POST
def publish_offer(request: WorkspaceRequest) -> HttpResponse:
    found = queries.offer(request.workspace.pk, _id(request.POST.get("id")))
    try:
        draft = actions.do_create_offer_draft(
            request.user,
            found,
            _ids(request.POST.getlist("account")),
            request.build_absolute_uri("/"),
        )
    except RelaisError as error:
        messages.error(request, str(error))
        return redirect(_campaign_url(request, found.pk))
    return redirect(_draft_url(request, draft.pk))


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def set_simulation(request: WorkspaceRequest) -> HttpResponse:
    try:
        actions.do_set_simulation(
            request.user,
            request.workspace,
            click_rate=float(request.POST.get("click_rate", "")),
            claim_rate=float(request.POST.get("claim_rate", "")),
            speed=float(request.POST.get("speed", "")),
        )
    except ValueError:
        messages.error(request, _("Rates and speed are numbers."))
    except RelaisError as error:
        messages.error(request, str(error))
    back = request.POST.get("back", "")
    safe = url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure())
    return redirect(back if safe else _offers_url(request))


def _offers_url(request: WorkspaceRequest) -> str:
    return reverse("publishing_offers", args=[request.workspace.slug])


@workspace_view(Capability.VIEW)
@require_GET
def campaign_csv(request: WorkspaceRequest) -> HttpResponse:
    report = queries.offer_report(request.workspace.pk, _id(request.GET.get("id")), clock.now())
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="offer-{report.offer.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "breakdown",
            "key",
            "clicks",
            "claims",
            "simulated_claims",
            "revenue",
            "conversion",
            "reach_unique",
            "reach_upper_bound",
            *queries.ENGAGEMENT,
        ]
    )
    rows: list[tuple[str, str, queries.Tally, Reach | None]] = [
        ("total", "", report.total, report.reach)
    ]
    rows += [
        ("post", f"{line.target.account.network}:{line.target.remote_id}", line.tally, line.reach)
        for line in report.posts
    ]
    rows += [("network", key or "-", tally, None) for key, tally in report.by_network.items()]
    rows += [("forwarder", key or "-", tally, None) for key, tally in report.by_forwarder.items()]
    rows += [("day", key.isoformat(), tally, None) for key, tally in report.by_day.items()]
    for breakdown, key, tally, reach in rows:
        writer.writerow(
            [
                breakdown,
                _csv_safe(key),
                tally.clicks,
                tally.claims,
                tally.simulated_claims,
                tally.revenue,
                "" if tally.conversion is None else f"{tally.conversion:.4f}",
                "" if reach is None or reach.unique is None else reach.unique,
                "" if reach is None else reach.upper_bound,
                *(getattr(tally, name) for name in queries.ENGAGEMENT),
            ]
        )
    return response


def _csv_safe(value: str) -> str:
    """Handles come from networks: never let a spreadsheet read one as a formula."""
    return "'" + value if value[:1] in {"=", "+", "-", "@"} and value != "-" else value
