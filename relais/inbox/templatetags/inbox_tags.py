"""Service-level and priority badges for conversations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django import template
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from relais.core import clock
from relais.inbox import priority
from relais.inbox.models import Conversation, Status

register = template.Library()


@dataclass(frozen=True)
class SlaState:
    label: str
    due: datetime
    seconds_left: float

    @property
    def breached(self) -> bool:
        return self.seconds_left < 0

    @property
    def css(self) -> str:
        if self.breached:
            return "sla-breached"
        return "sla-soon" if self.seconds_left < 15 * 60 else "sla-ok"


def sla_state(conversation: Conversation, now: datetime | None = None) -> SlaState | None:
    """The next deadline that matters: first response until answered, then resolution."""
    if conversation.status == Status.RESOLVED:
        return None
    now = now or clock.now()
    if conversation.first_response_at is None and conversation.first_response_due:
        due, label = conversation.first_response_due, _("First response")
    elif conversation.resolution_due:
        due, label = conversation.resolution_due, _("Resolution")
    else:
        return None
    return SlaState(label, due, (due - now).total_seconds())


def duration(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    if minutes < 60:
        return _("%(minutes)d min") % {"minutes": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(hours)d h %(minutes)02d") % {"hours": hours, "minutes": minutes}
    return _("%(days)d d") % {"days": hours // 24}


@register.simple_tag
def sla_badge(conversation: Conversation) -> str:
    """The next deadline and the time left (or how late), as a badge; empty when none."""
    state = sla_state(conversation)
    if state is None:
        return ""
    left = duration(state.seconds_left)
    text = (_("%(label)s late by %(left)s") if state.breached else _("%(label)s in %(left)s")) % {
        "label": state.label,
        "left": left,
    }
    return format_html(
        '<span class="sla {}" title="{}">{}</span>',
        state.css,
        date_format(localtime(state.due), "SHORT_DATETIME_FORMAT"),
        text,
    )


@register.simple_tag
def priority_score(conversation: Conversation) -> int:
    return priority.score(conversation.urgent_since, clock.now())


@register.filter
def seconds(value: float | None) -> str:
    return "—" if value is None else duration(value)


@register.simple_tag
def capped(count: int, cap: int) -> str:
    """A badge's count, "1000+" when counting stopped at the cap."""
    return f"{cap}+" if count >= cap else str(count)
