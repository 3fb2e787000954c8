"""The connected accounts page and the Bluesky connection form. Thin: authorize, act, render."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from relais.accounts.access import WorkspaceRequest, workspace_view
from relais.accounts.roles import Capability
from relais.connectors import atproto_oauth, queries
from relais.connectors.actions import (
    do_connect_bluesky_account,
    do_connect_feed,
    do_finish_mastodon_connection,
    do_start_mastodon_connection,
)
from relais.connectors.budget import budget_state, do_set_monthly_budget
from relais.connectors.connect_actions import (
    do_connect_facebook_page,
    do_finish_bluesky_oauth,
    do_finish_facebook_login,
    do_finish_x_connection,
    do_start_bluesky_oauth,
    do_start_facebook_login,
    do_start_x_connection,
)
from relais.connectors.models import ConnectedAccount
from relais.connectors.networks.bluesky import DEFAULT_PLC, DEFAULT_SERVICE
from relais.core.errors import RelaisError


@workspace_view(Capability.MANAGE_ACCOUNTS)
def accounts(request: WorkspaceRequest) -> HttpResponse:
    return _render(request, handle="", service=DEFAULT_SERVICE, plc=DEFAULT_PLC)


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def connect_bluesky(request: WorkspaceRequest) -> HttpResponse:
    handle = request.POST.get("handle", "")
    service = request.POST.get("service", "") or DEFAULT_SERVICE
    plc = request.POST.get("plc", "") or DEFAULT_PLC
    try:
        account = do_connect_bluesky_account(
            request.workspace,
            handle,
            request.POST.get("app_password", ""),
            actor=request.user,
            service=service,
            plc=plc,
        )
    except RelaisError as exc:
        messages.error(request, str(exc))
        return _render(request, handle=handle, service=service, plc=plc, status=400)
    messages.success(request, _("@%(handle)s is connected.") % {"handle": account.handle})
    return redirect("accounts", request.workspace.slug)


PENDING_BLUESKY = "relais.pending_bluesky_connection"
PENDING_BLUESKY_WORKSPACE = "relais.pending_bluesky_workspace"


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def connect_bluesky_oauth(request: WorkspaceRequest) -> HttpResponse:
    """Sign in with Bluesky (atproto OAuth): send the browser to the account's server."""
    handle = request.POST.get("handle", "")
    service = request.POST.get("service", "") or DEFAULT_SERVICE
    plc = request.POST.get("plc", "") or DEFAULT_PLC
    try:
        authorize, pending = do_start_bluesky_oauth(
            request.workspace,
            handle,
            actor=request.user,
            public_url=request.build_absolute_uri("/"),
            service=service,
            plc=plc,
        )
    except RelaisError as exc:
        messages.error(request, str(exc))
        return _render(request, handle=handle, service=service, plc=plc, status=400)
    request.session[PENDING_BLUESKY] = pending
    request.session[PENDING_BLUESKY_WORKSPACE] = request.workspace.slug
    return redirect(authorize)


@workspace_view(Capability.MANAGE_ACCOUNTS)
def bluesky_oauth_done(request: WorkspaceRequest) -> HttpResponse:
    """The server sent the browser back with a code (or the admin's refusal) and its issuer."""
    return _finish_approval(
        request,
        PENDING_BLUESKY,
        lambda workspace, pending, **kwargs: do_finish_bluesky_oauth(
            workspace, pending, issuer=request.GET.get("iss", ""), **kwargs
        ),
    )


def bluesky_oauth_return(request: HttpRequest) -> HttpResponse:
    """The one address Bluesky sends browsers back to: on to the workspace that started."""
    slug = request.session.get(PENDING_BLUESKY_WORKSPACE)
    if not slug:
        return redirect("home")
    return redirect(f"{reverse('bluesky_oauth_done', args=[slug])}?{request.GET.urlencode()}")


def bluesky_client_metadata(request: HttpRequest) -> HttpResponse:
    """Relais' client metadata document, at the address that is its OAuth ``client_id``."""
    try:
        client = atproto_oauth.client_for(request.build_absolute_uri("/"))
    except atproto_oauth.ClientAddressError as exc:
        raise Http404 from exc
    if not client.client_id.startswith("https://"):
        raise Http404  # a loopback client has no document: its client_id says it all
    return JsonResponse(client.metadata())


def bluesky_client_jwks(request: HttpRequest) -> HttpResponse:
    """The public halves of Relais' client keys (its metadata's ``jwks_uri``); 404 without."""
    keys = atproto_oauth.configured_client_keys()
    if not keys:
        raise Http404
    return JsonResponse(keys.public_jwks())


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def connect_feed(request: WorkspaceRequest) -> HttpResponse:
    address = request.POST.get("url", "")
    try:
        account = do_connect_feed(request.workspace, address, actor=request.user)
    except RelaisError as exc:
        messages.error(request, str(exc))
        return _render(
            request, handle="", service=DEFAULT_SERVICE, plc=DEFAULT_PLC, feed=address, status=400
        )
    messages.success(request, _("Relais follows %(url)s.") % {"url": account.settings["url"]})
    return redirect("accounts", request.workspace.slug)


PENDING_MASTODON = "relais.pending_mastodon_connection"


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def connect_mastodon(request: WorkspaceRequest) -> HttpResponse:
    """Step one: register Relais on the server, then send the browser there to approve."""
    return _start_approval(
        request,
        PENDING_MASTODON,
        lambda redirect_uri: do_start_mastodon_connection(
            request.workspace,
            request.POST.get("instance", ""),
            actor=request.user,
            redirect_uri=redirect_uri,
        ),
        "mastodon_callback",
    )


@workspace_view(Capability.MANAGE_ACCOUNTS)
def mastodon_callback(request: WorkspaceRequest) -> HttpResponse:
    """Step two: the server sent the browser back with a code (or the admin's refusal)."""
    return _finish_approval(request, PENDING_MASTODON, do_finish_mastodon_connection)


def _start_approval(
    request: WorkspaceRequest,
    pending_key: str,
    start: Callable[[str], tuple[str, str]],
    callback_name: str,
) -> HttpResponse:
    """OAuth's first step: keep the pending connection in the session, send the browser away."""
    callback = reverse(callback_name, args=[request.workspace.slug])
    try:
        authorize, pending = start(request.build_absolute_uri(callback))
    except RelaisError as exc:
        messages.error(request, str(exc))
        return _render(request, handle="", service=DEFAULT_SERVICE, plc=DEFAULT_PLC, status=400)
    request.session[pending_key] = pending
    return redirect(authorize)


def _finish_approval(
    request: WorkspaceRequest, pending_key: str, finish: Callable[..., ConnectedAccount]
) -> HttpResponse:
    """OAuth's second step: trade the code the network sent back for the account."""
    pending = request.session.pop(pending_key, "")
    try:
        account = finish(
            request.workspace,
            pending,
            code=request.GET.get("code", ""),
            state=request.GET.get("state", ""),
            actor=request.user,
        )
    except RelaisError as exc:
        messages.error(request, str(exc))
        return redirect("accounts", request.workspace.slug)
    messages.success(request, _("@%(handle)s is connected.") % {"handle": account.handle})
    return redirect("accounts", request.workspace.slug)


PENDING_X = "relais.pending_x_connection"


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def connect_x(request: WorkspaceRequest) -> HttpResponse:
    """Step one: the workspace's own X app keys; send the browser to X to approve."""
    return _start_approval(
        request,
        PENDING_X,
        lambda redirect_uri: do_start_x_connection(
            request.workspace,
            request.POST.get("client_id", ""),
            request.POST.get("client_secret", ""),
            actor=request.user,
            redirect_uri=redirect_uri,
            api_address=request.POST.get("api_base", ""),
            authorize_address=request.POST.get("authorize_url", ""),
        ),
        "x_callback",
    )


@workspace_view(Capability.MANAGE_ACCOUNTS)
def x_callback(request: WorkspaceRequest) -> HttpResponse:
    """Step two: X sent the browser back with a code (or the admin's refusal)."""
    return _finish_approval(request, PENDING_X, do_finish_x_connection)


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def set_x_budget(request: WorkspaceRequest) -> HttpResponse:
    try:
        do_set_monthly_budget(
            request.workspace, "x", request.POST.get("monthly_budget", ""), actor=request.user
        )
    except RelaisError as exc:
        messages.error(request, str(exc))
        return _render(request, handle="", service=DEFAULT_SERVICE, plc=DEFAULT_PLC, status=400)
    messages.success(request, _("The monthly X budget is saved."))
    return redirect("accounts", request.workspace.slug)


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def connect_facebook(request: WorkspaceRequest) -> HttpResponse:
    try:
        accounts = do_connect_facebook_page(
            request.workspace,
            request.POST.get("page_access_token", ""),
            actor=request.user,
            graph_base=request.POST.get("graph_base", ""),
            graph_version=request.POST.get("graph_version", ""),
            with_instagram=bool(request.POST.get("with_instagram")),
        )
    except RelaisError as exc:
        messages.error(request, str(exc))
        return _render(request, handle="", service=DEFAULT_SERVICE, plc=DEFAULT_PLC, status=400)
    for account in accounts:
        messages.success(
            request,
            _("%(name)s (%(network)s) is connected.")
            % {"name": account.display_name, "network": account.network.capitalize()},
        )
    return redirect("accounts", request.workspace.slug)


PENDING_FACEBOOK = "relais.pending_facebook_login"


@workspace_view(Capability.MANAGE_ACCOUNTS)
@require_POST
def connect_facebook_login(request: WorkspaceRequest) -> HttpResponse:
    """Facebook Login, step one: the workspace's Meta app; send the browser to Meta's dialog."""
    return _start_approval(
        request,
        PENDING_FACEBOOK,
        lambda redirect_uri: do_start_facebook_login(
            request.workspace,
            request.POST.get("app_id", ""),
            request.POST.get("app_secret", ""),
            actor=request.user,
            redirect_uri=redirect_uri,
            graph_base=request.POST.get("graph_base", ""),
            graph_version=request.POST.get("graph_version", ""),
            dialog_base=request.POST.get("dialog_base", ""),
            with_instagram=bool(request.POST.get("with_instagram")),
        ),
        "facebook_callback",
    )


@workspace_view(Capability.MANAGE_ACCOUNTS)
def facebook_callback(request: WorkspaceRequest) -> HttpResponse:
    """Step two: Meta sent the browser back with a code (or the admin's refusal)."""
    return _finish_approval(request, PENDING_FACEBOOK, do_finish_facebook_login)


def _render(
    request: WorkspaceRequest,
    *,
    handle: str,
    service: str,
    plc: str,
    feed: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "workspace": request.workspace,
        "nav": "accounts",
        "accounts": queries.connected_accounts(request.workspace.pk),
        "handle": handle,
        "service": service,
        "plc": plc,
        "feed": feed,
        "x_budget": budget_state(request.workspace.pk, "x"),
    }
    return render(request, "connectors/accounts.html", context, status=status)
