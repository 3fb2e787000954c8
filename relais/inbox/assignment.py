"""Automatic assignment: rules choose a team, round robin chooses a present agent with room.

An agent is present when seen in the last few minutes and not on leave; their room is their
capacity minus the unresolved conversations they hold. Among those with room, the one who was
given a conversation longest ago gets the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.db.models import Count

from relais.accounts.models import Membership
from relais.accounts.roles import Capability, role_allows
from relais.core import clock
from relais.inbox.models import AgentState, AssignmentRule, Conversation, Status, Team
from relais.inbox.webhooks import queue_changes, record_change
from relais.pipeline.models import Post

PRESENCE_WINDOW = timedelta(minutes=5)


def rule_matches(rule: AssignmentRule, post: Post) -> bool:
    checks = (
        (rule.network, post.network),
        (rule.language, post.lang),
        (rule.intent, post.intent),
        (rule.reason, post.reason),
    )
    if any(wanted and wanted.lower() != (actual or "").lower() for wanted, actual in checks):
        return False
    return not rule.keyword or rule.keyword.lower() in post.text.lower()


def auto_assign(workspace_id: int, opened: Sequence[tuple[Conversation, Post]]) -> None:
    """Give new conversations a team and an agent by the first rule their first post matches."""
    rules = list(
        AssignmentRule.objects.in_workspace(workspace_id)
        .select_related("team")
        .order_by("position", "pk")
    )
    if not rules:
        return
    rotation = Rotation(workspace_id)
    changes = []
    for conversation, post in opened:
        rule = next((r for r in rules if rule_matches(r, post)), None)
        if rule is None:
            continue
        agent_id = rotation.next_agent(rule.team) if rule.auto_assign else None
        Conversation.objects.filter(pk=conversation.pk).update(team=rule.team, assignee_id=agent_id)
        conversation.team, conversation.assignee_id = rule.team, agent_id
        changes.append(
            record_change(
                workspace_id,
                None,
                "conversation.auto_assigned",
                conversation,
                queue=False,
                rule=rule.name,
                team=rule.team_id,
                assignee=agent_id,
            )
        )
    queue_changes(workspace_id, [change for change in changes if change])


class Rotation:
    """Round robin over present agents with room, loaded once per batch of conversations."""

    def __init__(self, workspace_id: int) -> None:
        self.workspace_id = workspace_id
        now = clock.now()
        self.now = now
        repliers = {
            user_id
            for user_id, role in Membership.objects.filter(workspace_id=workspace_id).values_list(
                "user_id", "role"
            )
            if role_allows(role, Capability.REPLY)
        }
        self.states = {
            state.user_id: state
            for state in AgentState.objects.in_workspace(workspace_id).filter(
                user_id__in=repliers,
                on_leave=False,
                last_seen_at__gte=now - PRESENCE_WINDOW,
            )
        }
        self.load = dict(
            Conversation.objects.in_workspace(workspace_id)
            .filter(assignee_id__in=self.states)
            .exclude(status=Status.RESOLVED)
            .values("assignee_id")
            .annotate(count=Count("id"))
            .values_list("assignee_id", "count")
        )
        self.team_members: dict[int, set[int]] = {}

    def next_agent(self, team: Team | None) -> int | None:
        pool = self._members(team) if team is not None else set(self.states)
        with_room = [
            state
            for user_id, state in self.states.items()
            if user_id in pool and self.load.get(user_id, 0) < state.capacity
        ]
        if not with_room:
            return None
        chosen = min(
            with_room,
            key=lambda s: (s.last_assigned_at is not None, s.last_assigned_at or self.now, s.pk),
        )
        chosen.last_assigned_at = self.now
        self.now += timedelta(microseconds=1)  # keeps the order strict within one batch
        AgentState.objects.filter(pk=chosen.pk).update(last_assigned_at=chosen.last_assigned_at)
        self.load[chosen.user_id] = self.load.get(chosen.user_id, 0) + 1
        return chosen.user_id

    def _members(self, team: Team) -> set[int]:
        if team.pk not in self.team_members:
            self.team_members[team.pk] = set(team.members.values_list("pk", flat=True))
        return self.team_members[team.pk]
