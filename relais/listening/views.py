"""Listening pages: mention stream, queries, dashboard, alerts. Thin: read, or call one action."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from relais.accounts.access import WorkspaceRequest, workspace_view
from relais.accounts.roles import Capability, role_allows
from relais.core.errors import RelaisError
from relais.listening import actions, queries
from relais.listening.models import ChannelKind, QueryTag
from relais.listening.query import KNOWN_NETWORKS

MENTIONS_PAGE_SIZE = 50
DASHBOARD_DAYS = (1, 7, 30)


def _can_manage(request: WorkspaceRequest) -> bool:
    return role_allows(request.membership.role, actions.MANAGE_LISTENING)


@workspace_view()
def mentions(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "listening/mentions.html", _mentions_context(request))


@workspace_view()
def mention_rows(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "listening/partials/mention_rows.html", _mentions_context(request))


def _mentions_context(request: WorkspaceRequest) -> dict[str, Any]:
    filters = queries.MentionFilters.from_params(request.GET)
    found = queries.mentions(request.workspace.pk, filters)
    page = Paginator(found, MENTIONS_PAGE_SIZE).get_page(request.GET.get("page"))
    return {
        "nav": "listening",
        "tab": "mentions",
        "filters": filters,
        "filter_query": "&".join(f"{k}={v}" for k, v in filters.as_params().items()),
        "page": page,
        "mentions": page.object_list,
        "queries": queries.listening_queries(request.workspace.pk),
        "choices": queries.filter_choices(request.workspace.pk),
    }


@workspace_view()
def query_list(request: WorkspaceRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            actions.do_create_query(
                request.user,
                request.workspace,
                name=request.POST.get("name", ""),
                text=request.POST.get("text", ""),
                tag=request.POST.get("tag", QueryTag.BRAND),
            )
        except RelaisError as error:
            return _query_form_error(request, error, "listening/queries.html", None)
        messages.success(request, _("Query saved; stored posts are being matched."))
        return redirect("listening_queries", workspace_slug=request.workspace.slug)
    return render(request, "listening/queries.html", _queries_context(request))


def _queries_context(request: WorkspaceRequest, **extra: Any) -> dict[str, Any]:
    return {
        "nav": "listening",
        "tab": "queries",
        "queries": queries.listening_queries(request.workspace.pk),
        "tags": QueryTag.choices,
        "can_manage": _can_manage(request),
        "networks": sorted(KNOWN_NETWORKS),
        **extra,
    }


def _query_form_error(
    request: WorkspaceRequest, error: RelaisError, template: str, query: Any
) -> HttpResponse:
    """Show the form again with the text kept and, for a parse error, the mistake marked."""
    draft = {
        "name": request.POST.get("name", ""),
        "text": request.POST.get("text", ""),
        "tag": request.POST.get("tag", ""),
    }
    context = _queries_context(request, draft=draft, query=query, form_error=str(error))
    if isinstance(error, actions.QueryRefusedError):
        text, position = error.text, min(error.position, len(error.text))
        context["marked"] = {
            "before": text[:position],
            "at": text[position : position + 1] or " ",
            "after": text[position + 1 :],
            "position": position + 1,  # people count from 1
        }
    return render(request, template, context, status=400)


@workspace_view()
def query_edit(request: WorkspaceRequest) -> HttpResponse:
    query = queries.listening_query(
        request.workspace.pk, request.GET.get("query") or request.POST.get("query")
    )
    if request.method == "POST":
        try:
            actions.do_update_query(
                request.user,
                query,
                name=request.POST.get("name", ""),
                text=request.POST.get("text", ""),
                tag=request.POST.get("tag", query.tag),
                active=request.POST.get("active") == "on",
            )
        except RelaisError as error:
            return _query_form_error(request, error, "listening/query_edit.html", query)
        messages.success(request, _("Query saved."))
        return redirect("listening_queries", workspace_slug=request.workspace.slug)
    draft = {"name": query.name, "text": query.text, "tag": query.tag}
    return render(
        request, "listening/query_edit.html", _queries_context(request, query=query, draft=draft)
    )


@workspace_view()
@require_POST
def query_archive(request: WorkspaceRequest) -> HttpResponse:
    query = queries.listening_query(request.workspace.pk, request.POST.get("query"))
    try:
        actions.do_archive_query(request.user, query)
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect("listening_queries", workspace_slug=request.workspace.slug)


@workspace_view()
def dashboard(request: WorkspaceRequest) -> HttpResponse:
    days_param = request.GET.get("days", "7")
    days = int(days_param) if days_param.isdigit() and int(days_param) in DASHBOARD_DAYS else 7
    query_param = request.GET.get("query", "")
    query_id = int(query_param) if query_param.isdigit() else None
    period = queries.Period.last(days)
    data = queries.dashboard(request.workspace.pk, period, query_id)
    peak = max((row["total"] for row in data["volume"]), default=0)
    return render(
        request,
        "listening/dashboard.html",
        {
            "nav": "listening",
            "tab": "dashboard",
            "days": days,
            "day_choices": DASHBOARD_DAYS,
            "query_id": query_id,
            "queries": queries.listening_queries(request.workspace.pk),
            "period": period,
            "peak": peak,
            "chart": _volume_chart(data["volume"], peak),
            **data,
        },
    )


def _volume_chart(rows: list[dict[str, Any]], peak: int) -> list[dict[str, Any]]:
    """Bars for the inline SVG: x and heights in a 0-100 viewBox, negative share stacked."""
    if not rows:
        return []
    width = 100 / len(rows)
    bars = []
    for index, row in enumerate(rows):
        height = 100 * row["total"] / peak if peak else 0
        negative = height * row["negative"] / row["total"] if row["total"] else 0
        bars.append(
            {
                **row,
                "x": round(index * width, 3),
                "width": round(max(width * 0.85, 0.1), 3),
                "y": round(100 - height, 3),
                "height": round(height, 3),
                "negative_y": round(100 - negative, 3),
                "negative_height": round(negative, 3),
            }
        )
    return bars


@workspace_view()
def alert_list(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "listening/alerts.html", _alerts_context(request))


@workspace_view()
def alert_rows(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "listening/partials/alert_rows.html", _alerts_context(request))


def _alerts_context(request: WorkspaceRequest) -> dict[str, Any]:
    selected = (
        queries.alert(request.workspace.pk, request.GET["alert"])
        if request.GET.get("alert")
        else None
    )
    return {
        "nav": "listening",
        "tab": "alerts",
        "alerts": queries.alerts(request.workspace.pk)[:100],
        "selected": selected,
        "selected_posts": queries.alert_posts(request.workspace.pk, selected) if selected else [],
        "channels": queries.channels(request.workspace.pk),
        "channel_kinds": ChannelKind.choices,
        "can_manage_channels": role_allows(request.membership.role, Capability.MANAGE_ACCOUNTS),
    }


@workspace_view()
@require_POST
def channel_create(request: WorkspaceRequest) -> HttpResponse:
    interval = request.POST.get("min_interval_minutes", "5")
    try:
        actions.do_create_channel(
            request.user,
            request.workspace,
            name=request.POST.get("name", ""),
            kind=request.POST.get("kind", ""),
            target=request.POST.get("target", ""),
            min_interval_seconds=60 * int(interval) if interval.isdigit() else 0,
        )
    except RelaisError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Channel added."))
    return redirect("listening_alerts", workspace_slug=request.workspace.slug)


@workspace_view()
@require_POST
def channel_delete(request: WorkspaceRequest) -> HttpResponse:
    channel = queries.channel(request.workspace.pk, request.POST.get("channel"))
    try:
        actions.do_delete_channel(request.user, channel)
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect("listening_alerts", workspace_slug=request.workspace.slug)
