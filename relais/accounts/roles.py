"""Roles and what each may do. A capability is checked by actions, never by templates alone."""

from enum import StrEnum

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Administrator")
    MANAGER = "manager", _("Manager")
    AGENT = "agent", _("Agent")
    ANALYST = "analyst", _("Analyst")
    RECRUITER = "recruiter", _("Recruiter")


class Capability(StrEnum):
    VIEW = "view"  # read the workspace's posts, conversations and dashboards
    REPLY = "reply"  # answer customers, write notes
    MANAGE_INBOX = "manage_inbox"  # assign others, change any conversation
    MANAGE_MEMBERS = "manage_members"
    MANAGE_ACCOUNTS = "manage_accounts"  # connect networks, drive the sandbox
    USE_API = "use_api"


_ALL = frozenset(Capability)
ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.OWNER: _ALL,
    Role.ADMIN: _ALL,
    Role.MANAGER: frozenset(
        {Capability.VIEW, Capability.REPLY, Capability.MANAGE_INBOX, Capability.USE_API}
    ),
    Role.AGENT: frozenset({Capability.VIEW, Capability.REPLY, Capability.USE_API}),
    Role.ANALYST: frozenset({Capability.VIEW, Capability.USE_API}),
    Role.RECRUITER: frozenset({Capability.VIEW}),
}


def role_allows(role: str, capability: Capability) -> bool:
    return capability in ROLE_CAPABILITIES.get(role, frozenset())
