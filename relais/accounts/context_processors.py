from typing import Any

from django.http import HttpRequest

from relais.accounts.models import Workspace
from relais.core.events import latest_event_id


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The current workspace and the user's others, for the navigation and switcher, and the
    newest live event when the page is rendered (where its live updates start)."""
    if not request.user.is_authenticated:
        return {}
    workspace = getattr(request, "workspace", None)
    return {
        "workspace": workspace,
        "membership": getattr(request, "membership", None),
        "my_workspaces": Workspace.objects.filter(memberships__user=request.user).order_by("name"),
        # Read only by pages that follow the live events (a template calls it when used).
        "live_since": (lambda: latest_event_id(workspace.pk)) if workspace else 0,
    }
