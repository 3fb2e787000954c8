"""Spending on paid APIs: each workspace's monthly budget, charged call by call.

X bills every call (pay-per-use). ``WorkspaceBudget`` is the ``CostMeter`` the registry gives the
X connector: a write is reserved before it is sent and refused when it does not fit what is left
this month (a conditional update on a locked row, so two workers never overspend together); reads,
billed per resource returned, are recorded after the answer and stop once the budget is spent.
Months are calendar months in UTC, as X's own usage is counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from relais.accounts.actions import check_capability, record_audit
from relais.accounts.models import User, Workspace
from relais.accounts.roles import Capability
from relais.connectors.models import ApiBudget, ApiUsage
from relais.connectors.networks.x import BudgetExhaustedError, format_usd, has_link, post_cost
from relais.core import clock
from relais.core.errors import ValidationFailedError

DEFAULT_MONTHLY_BUDGET_USD = 25  # used until a workspace sets its own (settings can change it)
MAX_MONTHLY_BUDGET_USD = 100_000


def current_month() -> date:
    return clock.now().date().replace(day=1)


def monthly_limit(workspace_id: int, network: str) -> int:
    """The workspace's budget in micro-dollars: its own, else the deployment's default."""
    own = (
        ApiBudget.objects.in_workspace(workspace_id)
        .filter(network=network)
        .values_list("monthly_limit_micros", flat=True)
        .first()
    )
    if own is not None:
        return int(own)
    default = settings.RELAIS.get("X_MONTHLY_BUDGET_USD", DEFAULT_MONTHLY_BUDGET_USD)
    return int(float(default) * 1_000_000)


@dataclass(frozen=True)
class BudgetState:
    network: str
    limit_micros: int
    spent_micros: int
    calls: int

    @property
    def left_micros(self) -> int:
        return max(0, self.limit_micros - self.spent_micros)

    @property
    def exhausted(self) -> bool:
        return self.spent_micros >= self.limit_micros

    @property
    def limit(self) -> str:
        return format_usd(self.limit_micros)

    @property
    def spent(self) -> str:
        return format_usd(self.spent_micros)

    @property
    def left(self) -> str:
        return format_usd(self.left_micros)


def budget_state(workspace_id: int, network: str) -> BudgetState:
    usage = (
        ApiUsage.objects.in_workspace(workspace_id)
        .filter(network=network, month=current_month())
        .values_list("spent_micros", "calls")
        .first()
    )
    spent, calls = usage or (0, 0)
    return BudgetState(network, monthly_limit(workspace_id, network), spent, calls)


def _exhausted_error(state: BudgetState) -> BudgetExhaustedError:
    return BudgetExhaustedError(
        _(
            "The monthly %(network)s budget of this workspace is spent (%(spent)s of %(limit)s): "
            "nothing more is sent or read until next month or until an admin raises it."
        )
        % {"network": "X", "spent": state.spent, "limit": state.limit}
    )


def do_charge_usage(
    workspace_id: int, network: str, charges: Mapping[str, int], *, within_budget: bool
) -> None:
    """Add one call's cost (micro-dollars per operation) to this month's spend; with
    ``within_budget``, refuse what does not fit. A negative charge is a refund.

    The month's row is locked while it is read and written, so concurrent calls add up exactly and
    a write reserved by one worker is seen by the next.
    """
    month = current_month()
    micros = sum(charges.values())
    with transaction.atomic():
        ApiUsage.objects.get_or_create(workspace_id=workspace_id, network=network, month=month)
        usage = ApiUsage.objects.select_for_update().get(
            workspace_id=workspace_id, network=network, month=month
        )
        if within_budget:
            limit = monthly_limit(workspace_id, network)
            if usage.spent_micros + micros > limit:
                state = BudgetState(network, limit, usage.spent_micros, usage.calls)
                if state.exhausted:
                    raise _exhausted_error(state)
                raise BudgetExhaustedError(
                    _(
                        "This costs %(cost)s on %(network)s and only %(left)s of this month's "
                        "budget is left: raise the budget on the accounts page to send it."
                    )
                    % {"cost": format_usd(micros), "network": "X", "left": state.left}
                )
        usage.spent_micros += micros
        usage.calls += 1 if micros >= 0 else -1
        spent = dict(usage.by_operation)
        for operation, cost in charges.items():
            spent[operation] = int(spent.get(operation, 0)) + cost
        usage.by_operation = spent
        usage.save(update_fields=["spent_micros", "calls", "by_operation"])


class WorkspaceBudget:
    """The ``CostMeter`` of one workspace on one paid network."""

    def __init__(self, workspace_id: int, network: str) -> None:
        self.workspace_id = workspace_id
        self.network = network

    def ensure_open(self) -> None:
        state = budget_state(self.workspace_id, self.network)
        if state.exhausted:
            raise _exhausted_error(state)

    def reserve(self, operation: str, micros: int) -> None:
        do_charge_usage(self.workspace_id, self.network, {operation: micros}, within_budget=True)

    def record(self, charges: Mapping[str, int]) -> None:
        do_charge_usage(self.workspace_id, self.network, charges, within_budget=False)

    def refund(self, operation: str, micros: int) -> None:
        do_charge_usage(self.workspace_id, self.network, {operation: -micros}, within_budget=False)


def x_post_cost_warning(workspace_id: int, text: str) -> str:
    """What the composer shows before an X post: a link makes it dearer; a budget may not cover it.

    Empty when there is nothing to warn about.
    """
    cost = post_cost(text)
    state = budget_state(workspace_id, "x")
    if cost > state.left_micros:
        return _(
            "This post costs %(cost)s on X and only %(left)s of this month's budget is left: "
            "it will be refused."
        ) % {"cost": format_usd(cost), "left": state.left}
    if has_link(text):
        return _("A post with a link costs %(cost)s on X instead of %(plain)s without one.") % {
            "cost": format_usd(cost),
            "plain": format_usd(post_cost("plain")),
        }
    return ""


def check_budget_amount(amount: str) -> int:
    try:
        usd = float(amount.strip().lstrip("$").replace(",", "."))
    except ValueError:
        usd = -1.0
    if not 0 <= usd <= MAX_MONTHLY_BUDGET_USD:
        raise ValidationFailedError(
            _("Enter a monthly budget in US dollars between 0 and %(max)d.")
            % {"max": MAX_MONTHLY_BUDGET_USD}
        )
    return round(usd * 1_000_000)


def do_set_monthly_budget(
    workspace: Workspace, network: str, amount: str, *, actor: User | None
) -> ApiBudget:
    if actor is not None:
        check_capability(actor, workspace, Capability.MANAGE_ACCOUNTS)
    micros = check_budget_amount(amount)
    with transaction.atomic():
        budget, _created = ApiBudget.objects.update_or_create(
            workspace=workspace, network=network, defaults={"monthly_limit_micros": micros}
        )
        record_audit(workspace, actor, "budget.changed", budget, network=network, micros=micros)
    return budget
