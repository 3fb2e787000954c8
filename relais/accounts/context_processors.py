from typing import Any

from django.http import HttpRequest

from relais.accounts.models import Workspace


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The current workspace and the user's others, for the navigation and switcher."""
    if not request.user.is_authenticated:
        return {}
    return {
        "workspace": getattr(request, "workspace", None),
        "membership": getattr(request, "membership", None),
        "my_workspaces": Workspace.objects.filter(memberships__user=request.user).order_by("name"),
    }
