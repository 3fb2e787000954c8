"""Writes about people and workspaces. ``check_*`` validates and authorizes, ``do_*`` writes."""

import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from relais.accounts.models import ApiToken, AuditEntry, Membership, User, Workspace
from relais.accounts.roles import Capability, Role, role_allows
from relais.core import clock
from relais.core.errors import PermissionDeniedError, ValidationFailedError


def record_audit(
    workspace: Workspace | int,
    actor: User | None,
    action: str,
    target: Any = None,
    **data: Any,
) -> AuditEntry:
    """Every action that changes a workspace calls this inside its transaction."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    return AuditEntry.objects.create(
        workspace_id=workspace_id,
        actor=actor,
        action=action,
        target_type=type(target).__name__ if target is not None else "",
        target_id=str(getattr(target, "pk", "") or ""),
        data=data,
    )


def membership_of(user: User, workspace: Workspace | int) -> Membership | None:
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    return Membership.objects.filter(user=user, workspace_id=workspace_id).first()


def check_capability(user: User | None, workspace: Workspace | int, capability: Capability) -> str:
    """Return the user's role in the workspace, or refuse."""
    membership = membership_of(user, workspace) if user is not None and user.is_active else None
    if membership is None or not role_allows(membership.role, capability):
        raise PermissionDeniedError(_("You are not allowed to do this in this workspace."))
    return membership.role


def check_new_workspace(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailedError(_("A workspace needs a name."))
    base = slugify(name)[:40] or "workspace"
    slug, counter = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        counter += 1
        slug = f"{base}-{counter}"
    return slug


def do_create_workspace(
    name: str, owner: User, *, time_zone: str = "UTC", is_sandbox: bool = False
) -> Workspace:
    slug = check_new_workspace(name)
    with transaction.atomic():
        workspace = Workspace.objects.create(
            name=name.strip(), slug=slug, time_zone=time_zone, is_sandbox=is_sandbox
        )
        Membership.objects.create(user=owner, workspace=workspace, role=Role.OWNER)
        record_audit(workspace, owner, "workspace.created", workspace, name=workspace.name)
    return workspace


def do_create_user(
    username: str, password: str, *, email: str = "", language: str = "", first_name: str = ""
) -> User:
    if User.objects.filter(username=username).exists():
        raise ValidationFailedError(_("This user name is taken."))
    return User.objects.create_user(
        username=username,
        password=password,
        email=email,
        language=language,
        first_name=first_name,
    )


def check_role(role: str) -> Role:
    if role not in Role.values:
        raise ValidationFailedError(_("Unknown role: %(role)s") % {"role": role})
    return Role(role)


def do_add_member(workspace: Workspace, user: User, role: str, *, actor: User | None) -> Membership:
    checked_role = check_role(role)
    if actor is not None:
        check_capability(actor, workspace, Capability.MANAGE_MEMBERS)
    with transaction.atomic():
        membership, _created = Membership.objects.update_or_create(
            user=user, workspace=workspace, defaults={"role": checked_role}
        )
        record_audit(workspace, actor, "member.added", user, role=checked_role.value)
        if not role_allows(checked_role, Capability.REPLY):
            _release_conversations(workspace, user)
    return membership


def do_remove_member(workspace: Workspace, user: User, *, actor: User | None) -> None:
    """Take a member out of the workspace; their open conversations go back to the rotation."""
    if actor is not None:
        check_capability(actor, workspace, Capability.MANAGE_MEMBERS)
    with transaction.atomic():
        removed, _by_model = Membership.objects.filter(workspace=workspace, user=user).delete()
        if removed:
            record_audit(workspace, actor, "member.removed", user)
            _release_conversations(workspace, user)


def _release_conversations(workspace: Workspace, user: User) -> None:
    # After the membership changed, in the same transaction: the rotation cannot pick them again.
    from relais.inbox.actions import do_release_member_conversations  # inbox imports accounts

    do_release_member_conversations(workspace.pk, user)


def do_set_language(user: User, language: str) -> None:
    user.language = language
    user.save(update_fields=["language"])


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def do_create_api_token(workspace: Workspace, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never stored in clear."""
    check_capability(user, workspace, Capability.USE_API)
    secret = "rls_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            workspace=workspace,
            user=user,
            name=name or "API",
            prefix=secret[:12],
            key_hash=hash_token(secret),
        )
        record_audit(workspace, user, "api_token.created", token, name=token.name)
    return token, secret


def authenticate_api_token(secret: str) -> ApiToken | None:
    token = (
        ApiToken.objects.select_related("user", "workspace")
        .filter(key_hash=hash_token(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or membership_of(token.user, token.workspace_id) is None:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=clock.now())
    return token
