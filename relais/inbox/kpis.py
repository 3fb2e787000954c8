"""Care KPIs over a period: volume, first-response and resolution times, SLA compliance,
overall, per agent and per team.

Times come from the conversations themselves: ``first_response_seconds`` is measured from the
customer's message to the brand's first answer (in historical time for replayed threads, so
the demo shows the brands' real response times), ``resolution_seconds`` from opening to the
resolution in Relais.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.translation import gettext as _

from relais.accounts.models import User
from relais.inbox.models import Conversation, Team

# Simply Measured's study of the top airlines on Twitter in 2015 (the industry reference the
# issue gives): the median first response was about 22 minutes.
AIRLINE_MEDIAN_FIRST_RESPONSE_2015_SECONDS = 22 * 60


@dataclass
class Row:
    label: str
    volume: int = 0
    first_responses: list[float] = field(default_factory=list)
    resolutions: list[float] = field(default_factory=list)
    sla_met: int = 0
    sla_due: int = 0

    def add(self, first: float | None, resolution: float | None, sla: bool | None) -> None:
        self.volume += 1
        if first is not None:
            self.first_responses.append(first)
        if resolution is not None:
            self.resolutions.append(resolution)
        if sla is not None:
            self.sla_due += 1
            self.sla_met += sla

    @property
    def first_median(self) -> float | None:
        return _percentile(self.first_responses, 50)

    @property
    def first_p90(self) -> float | None:
        return _percentile(self.first_responses, 90)

    @property
    def resolution_median(self) -> float | None:
        return _percentile(self.resolutions, 50)

    @property
    def resolution_p90(self) -> float | None:
        return _percentile(self.resolutions, 90)

    @property
    def sla_compliance(self) -> float | None:
        return round(100 * self.sla_met / self.sla_due, 1) if self.sla_due else None


def _percentile(values: list[float], percent: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


@dataclass
class Report:
    overall: Row
    per_agent: list[Row]
    per_team: list[Row]
    per_account: list[Row]
    reference_seconds: int = AIRLINE_MEDIAN_FIRST_RESPONSE_2015_SECONDS


def sla_outcome(due: datetime | None, answered: datetime | None, now: datetime) -> bool | None:
    """Met, missed, or not decided yet (no target, or unanswered and still in time)."""
    if due is None:
        return None
    if answered is not None:
        return answered <= due
    return False if now > due else None


def care_report(workspace_id: int, start: datetime, end: datetime, now: datetime) -> Report:
    conversations = (
        Conversation.objects.in_workspace(workspace_id)
        .filter(created_at__gte=start, created_at__lt=end)
        .values(
            "first_response_seconds",
            "resolution_seconds",
            "first_response_due",
            "first_response_at",
            "first_responder_id",
            "team_id",
            "account__handle",
        )
        .iterator(chunk_size=5000)
    )
    overall = Row(_("All conversations"))
    agents: dict[int | None, Row] = defaultdict(lambda: Row(""))
    teams: dict[int | None, Row] = defaultdict(lambda: Row(""))
    accounts: dict[str, Row] = defaultdict(lambda: Row(""))
    for found in conversations:
        args = (
            found["first_response_seconds"],
            found["resolution_seconds"],
            sla_outcome(found["first_response_due"], found["first_response_at"], now),
        )
        overall.add(*args)
        agents[found["first_responder_id"]].add(*args)
        teams[found["team_id"]].add(*args)
        accounts[found["account__handle"]].add(*args)
    names = {
        user.pk: user.get_full_name() or user.username
        for user in User.objects.filter(pk__in=[pk for pk in agents if pk])
    }
    team_names = dict(Team.objects.in_workspace(workspace_id).values_list("pk", "name"))
    for pk, row in agents.items():
        row.label = names.get(pk, "") if pk else _("Brand, before Relais or unanswered")
    for pk, row in teams.items():
        row.label = team_names.get(pk, "") if pk else _("No team")
    for handle, row in accounts.items():
        row.label = f"@{handle}"
    return Report(
        overall=overall,
        per_agent=sorted(agents.values(), key=lambda r: -r.volume),
        per_team=sorted(teams.values(), key=lambda r: -r.volume),
        per_account=sorted(accounts.values(), key=lambda r: -r.volume),
    )
