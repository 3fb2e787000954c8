"""Pages of the working interface. Thin: authorize (decorator), call a query or action, render."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from relais.accounts.access import WorkspaceRequest, workspace_view
from relais.accounts.models import Membership, User
from relais.accounts.roles import Capability
from relais.core.errors import RelaisError
from relais.inbox import actions as inbox_actions
from relais.inbox import queries as inbox_queries
from relais.inbox.models import Status
from relais.web import queries
from relais.web.forms import StreamFilterForm

STREAM_PAGE_SIZE = 50
INBOX_PAGE_SIZE = 50


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


@workspace_view()
def inbox(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "web/inbox.html", _inbox_context(request))


@workspace_view()
def inbox_rows(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "web/partials/inbox_rows.html", _inbox_context(request))


def _inbox_context(request: WorkspaceRequest) -> dict[str, object]:
    status = request.GET.get("status", "unresolved")
    rows = inbox_queries.conversations(request.workspace.pk, status=status)
    page = Paginator(rows, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    return {
        "page": page,
        "conversations": page.object_list,
        "status": status,
        "statuses": Status.choices,
        "status_counts": inbox_queries.status_counts(request.workspace.pk),
    }


@workspace_view()
def conversation(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    return render(request, "web/conversation.html", _conversation_context(request, conversation_id))


@workspace_view()
def conversation_thread(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    return render(
        request, "web/partials/thread.html", _conversation_context(request, conversation_id)
    )


def _conversation_context(request: WorkspaceRequest, conversation_id: int) -> dict[str, object]:
    found = inbox_queries.conversation(request.workspace.pk, conversation_id)
    return {
        "conversation": found,
        "thread": inbox_queries.thread(found),
        "notes": inbox_queries.notes(found),
        "statuses": Status.choices,
        "members": User.objects.filter(memberships__workspace=request.workspace).order_by(
            "username"
        ),
        "reply_key": uuid.uuid4().hex,
        "can_reply": request.membership.role in {"owner", "admin", "manager", "agent"},
    }


@workspace_view(Capability.REPLY)
@require_POST
def reply(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    found = inbox_queries.conversation(request.workspace.pk, conversation_id)
    try:
        inbox_actions.do_send_reply(
            request.user,
            found,
            request.POST.get("text", ""),
            idempotency_key=request.POST.get("reply_key") or uuid.uuid4().hex,
            private=request.POST.get("private") == "on",
        )
    except RelaisError as error:
        messages.error(request, str(error))
        context = _conversation_context(request, conversation_id)
        context["draft"] = request.POST.get("text", "")
        return render(request, "web/conversation.html", context, status=400)
    return redirect("conversation", workspace_slug=request.workspace.slug, conversation_id=found.pk)


@workspace_view(Capability.REPLY)
@require_POST
def add_note(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    found = inbox_queries.conversation(request.workspace.pk, conversation_id)
    try:
        inbox_actions.do_add_note(request.user, found, request.POST.get("text", ""))
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect("conversation", workspace_slug=request.workspace.slug, conversation_id=found.pk)


@workspace_view(Capability.REPLY)
@require_POST
def change_status(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    found = inbox_queries.conversation(request.workspace.pk, conversation_id)
    try:
        inbox_actions.do_change_status(request.user, found, request.POST.get("status", ""))
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect("conversation", workspace_slug=request.workspace.slug, conversation_id=found.pk)


@workspace_view(Capability.REPLY)
@require_POST
def assign(request: WorkspaceRequest, conversation_id: int) -> HttpResponse:
    found = inbox_queries.conversation(request.workspace.pk, conversation_id)
    assignee_id = request.POST.get("assignee", "")
    assignee = (
        User.objects.filter(pk=assignee_id, memberships__workspace=request.workspace).first()
        if assignee_id.isdigit()
        else None
    )
    if assignee_id and assignee is None:
        raise Http404
    try:
        inbox_actions.do_assign(request.user, found, assignee)
    except RelaisError as error:
        messages.error(request, str(error))
    return redirect("conversation", workspace_slug=request.workspace.slug, conversation_id=found.pk)
