"""Pages of the working interface. Thin: authorize (decorator), call a query or action, render."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from relais.accounts.access import WorkspaceRequest, workspace_view
from relais.accounts.models import Membership
from relais.web import queries
from relais.web.forms import StreamFilterForm

STREAM_PAGE_SIZE = 50


@login_required
def home_redirect(request: HttpRequest) -> HttpResponse:
    slug = request.session.get("last_workspace")
    memberships = Membership.objects.filter(user_id=request.user.pk or 0).select_related(
        "workspace"
    )
    if slug and memberships.filter(workspace__slug=slug).exists():
        return redirect("home", workspace_slug=slug)
    first = memberships.order_by("workspace__name").first()
    if first is None:
        return render(request, "web/no_workspace.html")
    return redirect("home", workspace_slug=first.workspace.slug)


@workspace_view()
def home(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "web/home.html", queries.home_context(request.workspace))


@workspace_view()
def counters(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "web/partials/counters.html", queries.home_context(request.workspace))


@workspace_view()
def stream(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "web/stream.html", _stream_context(request))


@workspace_view()
def stream_rows(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "web/partials/stream_rows.html", _stream_context(request))


def _stream_context(request: WorkspaceRequest) -> dict[str, object]:
    form = StreamFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    posts = queries.recent_posts(request.workspace.pk, filters)
    page = Paginator(posts, STREAM_PAGE_SIZE).get_page(request.GET.get("page"))
    selected = urlencode({name: value for name, value in filters.items() if value})
    return {
        "page": page,
        "posts": page.object_list,
        "form": form,
        "pager_query": f"{selected}&" if selected else "",
    }
