"""Service-level deadlines counted in business time, in the workspace's time zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from relais.inbox.models import SlaPolicy

MAX_DAYS_SEARCHED = 366  # a policy with no business day at all never yields a deadline


def add_business_minutes(policy: SlaPolicy, start: datetime, minutes: float) -> datetime | None:
    """The moment ``minutes`` of business time have passed since ``start``."""
    if not policy.business_start and not policy.business_days:
        return start + timedelta(minutes=minutes)
    zone = ZoneInfo(policy.time_zone or "UTC")
    local = start.astimezone(zone)
    left = timedelta(minutes=minutes)
    for offset in range(MAX_DAYS_SEARCHED):
        day = (local + timedelta(days=offset)).date()
        window = _business_window(policy, day, zone)
        if window is None:
            continue
        opens, closes = window
        begin = max(opens, local) if offset == 0 else opens
        if begin >= closes:
            continue
        if begin + left <= closes:
            return begin + left
        left -= closes - begin
    return None


def _business_window(
    policy: SlaPolicy, day: date, zone: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """The day's open hours; closing at or before opening means open until midnight."""
    if policy.business_days and day.weekday() not in policy.business_days:
        return None
    opens_at = policy.business_start or time(0, 0)
    closes_at = policy.business_end
    opens = datetime.combine(day, opens_at, tzinfo=zone)
    closes = (
        datetime.combine(day, closes_at, tzinfo=zone)
        if closes_at and closes_at > opens_at
        else datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)
    )
    return opens, closes


Deadline = datetime | None


def deadlines(policy: SlaPolicy | None, opened: datetime) -> tuple[Deadline, Deadline]:
    """First-response and resolution deadlines for a conversation opened at ``opened``."""
    if policy is None:
        return None, None
    return (
        add_business_minutes(policy, opened, policy.first_response_minutes),
        add_business_minutes(policy, opened, policy.resolution_minutes),
    )
