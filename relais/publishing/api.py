"""Publishing in the REST API: drafts and their workflow, offer reports (see relais/api.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status

from relais.core import clock
from relais.core.api import request_token, run_action
from relais.publishing import actions, queries

router = Router(tags=["publishing"])


class TargetOut(Schema):
    id: int
    account_id: int
    text: str
    status: str
    scheduled_at: datetime | None
    recurrence: str
    remote_id: str
    published_at: datetime | None
    last_error: str


class DraftOut(Schema):
    id: int
    text: str
    offer_id: int | None
    created_at: datetime
    targets: list[TargetOut]

    @staticmethod
    def resolve_targets(obj: Any) -> Any:
        return list(obj.targets.all())


class DraftIn(Schema):
    text: str
    account_ids: list[int]


class ScheduleIn(Schema):
    when: datetime  # without an offset: the workspace's time zone
    recurrence: str = ""


class TallyOut(Schema):
    clicks: int
    claims: int
    simulated_claims: int
    revenue: Decimal
    likes: int
    reposts: int
    replies: int
    quotes: int


class OfferReportOut(Schema):
    offer_id: int
    product: str
    stock: int
    stock_left: int
    total: TallyOut
    reach_unique: int | None
    reach_upper_bound: int
    by_network: dict[str, TallyOut]
    by_forwarder: dict[str, TallyOut]
    by_day: dict[str, TallyOut]


class ErrorOut(Schema):
    detail: str


@router.get("/drafts", response=list[DraftOut])
def list_drafts(request: HttpRequest) -> Any:
    return list(queries.drafts(request_token(request).workspace_id)[:200])


@router.post("/drafts", response={201: DraftOut, 400: ErrorOut, 403: ErrorOut})
def create_draft(request: HttpRequest, body: DraftIn) -> Any:
    token = request_token(request)
    created = run_action(
        lambda: actions.do_create_draft(token.user, token.workspace_id, body.text, body.account_ids)
    )
    return Status(201, queries.draft(token.workspace_id, created.pk))


@router.post("/drafts/{draft_id}/submit", response={200: DraftOut, 400: ErrorOut, 403: ErrorOut})
def submit(request: HttpRequest, draft_id: int) -> Any:
    token = request_token(request)
    found = queries.draft(token.workspace_id, draft_id)
    run_action(lambda: actions.do_submit_for_approval(token.user, found))
    return queries.draft(token.workspace_id, draft_id)


@router.post("/drafts/{draft_id}/approve", response={200: DraftOut, 400: ErrorOut, 403: ErrorOut})
def approve(request: HttpRequest, draft_id: int) -> Any:
    token = request_token(request)
    found = queries.draft(token.workspace_id, draft_id)
    run_action(lambda: actions.do_approve(token.user, found))
    return queries.draft(token.workspace_id, draft_id)


@router.post("/drafts/{draft_id}/schedule", response={200: DraftOut, 400: ErrorOut, 403: ErrorOut})
def schedule(request: HttpRequest, draft_id: int, body: ScheduleIn) -> Any:
    token = request_token(request)
    found = queries.draft(token.workspace_id, draft_id)
    run_action(
        lambda: actions.do_schedule(token.user, found, body.when, recurrence=body.recurrence)
    )
    return queries.draft(token.workspace_id, draft_id)


def _tally(tally: queries.Tally) -> dict[str, Any]:
    return {
        "clicks": tally.clicks,
        "claims": tally.claims,
        "simulated_claims": tally.simulated_claims,
        "revenue": tally.revenue,
        **{name: getattr(tally, name) for name in queries.ENGAGEMENT},
    }


@router.get("/offers/{offer_id}/report", response=OfferReportOut)
def offer_report(request: HttpRequest, offer_id: int) -> Any:
    report = queries.offer_report(request_token(request).workspace_id, offer_id, clock.now())
    return {
        "offer_id": report.offer.pk,
        "product": report.offer.product,
        "stock": report.offer.stock,
        "stock_left": report.offer.stock_left,
        "total": _tally(report.total),
        "reach_unique": report.reach.unique,
        "reach_upper_bound": report.reach.upper_bound,
        "by_network": {key: _tally(t) for key, t in report.by_network.items()},
        "by_forwarder": {key: _tally(t) for key, t in report.by_forwarder.items()},
        "by_day": {key.isoformat(): _tally(t) for key, t in report.by_day.items()},
    }
