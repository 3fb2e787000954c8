"""Service-level and priority badges for conversations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape as esc
from typing import Protocol

from django import template
from django.utils import dateformat
from django.utils.formats import get_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import get_current_timezone, localtime
from django.utils.translation import gettext as _

from relais.core import clock
from relais.inbox import priority
from relais.inbox.models import Conversation, Status
from relais.inbox.queries import ListRow

register = template.Library()


@dataclass(frozen=True)
class BadgeTexts:
    """The badges' words and date format in the active language.

    Looked up once per page: a translation lookup per row and per badge was a good part of
    rendering the inbox list.
    """

    first_response: str
    resolution: str
    late: str
    within: str
    minutes: str
    hours: str
    days: str
    date_format: str

    @classmethod
    def active(cls) -> BadgeTexts:
        return cls(
            first_response=_("First response"),
            resolution=_("Resolution"),
            late=_("%(label)s late by %(left)s"),
            within=_("%(label)s in %(left)s"),
            minutes=_("%(minutes)d min"),
            hours=_("%(hours)d h %(minutes)02d"),
            days=_("%(days)d d"),
            date_format=get_format("SHORT_DATETIME_FORMAT"),
        )


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


class HasDeadlines(Protocol):
    """A conversation, or a row of the list."""

    @property
    def status(self) -> str: ...
    @property
    def first_response_at(self) -> datetime | None: ...
    @property
    def first_response_due(self) -> datetime | None: ...
    @property
    def resolution_due(self) -> datetime | None: ...


def sla_state(
    conversation: HasDeadlines, now: datetime | None = None, texts: BadgeTexts | None = None
) -> SlaState | None:
    """The next deadline that matters: first response until answered, then resolution."""
    if conversation.status == Status.RESOLVED:
        return None
    now = now or clock.now()
    texts = texts or BadgeTexts.active()
    if conversation.first_response_at is None and conversation.first_response_due:
        due, label = conversation.first_response_due, texts.first_response
    elif conversation.resolution_due:
        due, label = conversation.resolution_due, texts.resolution
    else:
        return None
    return SlaState(label, due, (due - now).total_seconds())


def duration(seconds: float, texts: BadgeTexts | None = None) -> str:
    texts = texts or BadgeTexts.active()
    minutes = int(abs(seconds) // 60)
    if minutes < 60:
        return texts.minutes % {"minutes": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return texts.hours % {"hours": hours, "minutes": minutes}
    return texts.days % {"days": hours // 24}


def sla_text(state: SlaState, texts: BadgeTexts) -> str:
    return (texts.late if state.breached else texts.within) % {
        "label": state.label,
        "left": duration(state.seconds_left, texts),
    }


@register.simple_tag
def sla_badge(conversation: Conversation) -> str:
    """The next deadline and the time left (or how late), as a badge; empty when none."""
    texts = BadgeTexts.active()
    state = sla_state(conversation, clock.now(), texts)
    if state is None:
        return ""
    return format_html(
        '<span class="sla {}" title="{}">{}</span>',
        state.css,
        dateformat.format(localtime(state.due), texts.date_format),
        sla_text(state, texts),
    )


PREVIEW_CHARACTERS = 140
ROW = (
    '<tr class="status-{status}" data-conversation="{pk}">'
    '<td class="priority">{score}</td>'
    '<td dir="auto"><a href="{url}">{customer}</a></td>'
    '<td class="preview" dir="auto">{preview}{tags}</td>'
    "<td>@{account}</td>"
    '<td><span class="badge {status}">{status_label}</span></td>'
    "<td>{sla}</td>"
    "<td>{assignee}{team}</td>"
    "<td>{messages}</td>"
    '<td><time datetime="{iso}">{when}</time></td>'
    "</tr>\n"
)


@register.simple_tag
def inbox_rows(conversations: list[ListRow], conversation_url: str) -> str:
    """The list's rows written in Python: the template engine's per-variable lookups, filters
    and tags were most of a list page's time (50 rows, about twenty lookups each).

    ``conversation_url`` is the address of conversation 0, reversed once for the whole list.
    Values are escaped with the standard library's ``html.escape`` (what Django's ``escape``
    calls, without its lazy-string wrapper, which cost as much as the escaping).
    """
    page = _ListPage(
        now=clock.now(),
        zone=get_current_timezone(),
        badges=BadgeTexts.active(),
        statuses={value: str(label) for value, label in Status.choices},
        score_title=esc(_("Weighted minutes of waiting")),
        conversation_prefix=conversation_url.removesuffix("0/"),
    )
    return mark_safe(  # noqa: S308 - every value in a row goes through html.escape
        "".join(_row(c, page) for c in conversations)
    )


@dataclass(frozen=True)
class _ListPage:
    """What every row of one list shares: looked up once, not once per row."""

    now: datetime
    zone: tzinfo
    badges: BadgeTexts
    statuses: dict[str, str]
    score_title: str
    conversation_prefix: str

    def date(self, moment: datetime) -> tuple[datetime, str]:
        local = moment.astimezone(self.zone)
        return local, dateformat.format(local, self.badges.date_format)


def _row(c: ListRow, page: _ListPage) -> str:
    score = priority.score(c.urgent_since, page.now)
    last, last_text = page.date(c.last_message_at)
    return ROW.format(
        status=esc(c.status),
        pk=c.pk,
        score=f'<span class="priority-score" title="{page.score_title}">{score}</span>'
        if score
        else "",
        url=f"{page.conversation_prefix}{c.pk}/",
        customer=esc(c.customer),
        preview=esc(_shortened(c.preview, PREVIEW_CHARACTERS)),
        tags="".join(f' <span class="tag">{esc(tag)}</span>' for tag in c.tags),
        account=esc(c.account),
        status_label=esc(page.statuses.get(c.status, c.status)),
        sla=_row_sla(c, page),
        assignee=esc(c.assignee) if c.assignee else "—",
        team=f' <span class="team">{esc(c.team)}</span>' if c.team else "",
        messages=c.message_count,
        iso=last.isoformat(),
        when=esc(last_text),
    )


def _row_sla(c: ListRow, page: _ListPage) -> str:
    state = sla_state(c, page.now, page.badges)
    if state is None:
        return ""
    due = esc(page.date(state.due)[1])
    text = esc(sla_text(state, page.badges))
    return f'<span class="sla {state.css}" title="{due}">{text}</span>'


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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
