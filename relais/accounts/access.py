"""Resolving the workspace a request acts in: an outsider gets 404, never a hint it exists."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from relais.accounts.models import Membership, User, Workspace
from relais.accounts.roles import Capability, role_allows

View = Callable[..., HttpResponseBase]


class WorkspaceRequest(HttpRequest):
    """A request that ``workspace_view`` resolved: the member, their workspace and role."""

    workspace: Workspace
    membership: Membership
    user: User


def workspace_view(capability: Capability = Capability.VIEW) -> Callable[[View], View]:
    """Decorate a view taking ``workspace_slug``: sets request.workspace and request.membership."""

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, workspace_slug: str, **kwargs: Any) -> HttpResponseBase:
            membership = (
                Membership.objects.select_related("workspace")
                .filter(user_id=request.user.pk or 0, workspace__slug=workspace_slug)
                .first()
            )
            if membership is None or not role_allows(membership.role, capability):
                raise Http404
            request.workspace = membership.workspace  # type: ignore[attr-defined]
            request.membership = membership  # type: ignore[attr-defined]
            if request.session.get("last_workspace") != workspace_slug:
                # Only on change: an assignment marks the session modified, which saves it
                # (an UPDATE on PostgreSQL) on every page otherwise.
                request.session["last_workspace"] = workspace_slug
            return view(request, **kwargs)

        return wrapper

    return decorate
