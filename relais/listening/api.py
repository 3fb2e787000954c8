"""Listening in the REST API: queries, mentions and alerts of the token's workspace.

Mounted by relais/api.py. No `from __future__ import annotations`: django-ninja reads the
annotations at import time.
"""

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from relais.core.api import request_token, run_action
from relais.listening import actions, queries

router = Router(tags=["listening"])


class QueryOut(Schema):
    id: int
    name: str
    text: str
    tag: str
    active: bool
    created_at: datetime


class QueryIn(Schema):
    name: str
    text: str
    tag: str = "brand"


class QueryErrorOut(Schema):
    detail: str
    position: int | None = None


class MentionOut(Schema):
    id: int
    query_id: int
    post_id: int
    network: str
    language: str
    sentiment: str
    intent: str
    reason: str
    author_handle: str
    created_at: datetime
    text: str

    @staticmethod
    def resolve_text(obj: Any) -> str:
        return str(obj.post.text)


class MentionFilterIn(Schema):
    query: int | None = None
    network: str = ""
    language: str = ""
    sentiment: str = ""
    intent: str = ""
    reason: str = ""
    author: str = ""
    since: date | None = None
    until: date | None = None
    q: str = ""


class AlertOut(Schema):
    id: int
    query_id: int
    metric: str
    status: str
    started_at: datetime
    detected_at: datetime
    ended_at: datetime | None
    observed: float
    expected: float
    peak: float
    explanation: dict[str, Any]


@router.get("/queries", response=list[QueryOut])
def list_queries(request: HttpRequest) -> Any:
    return queries.listening_queries(request_token(request).workspace_id)


@router.post("/queries", response={201: QueryOut, 400: QueryErrorOut, 403: QueryErrorOut})
def create_query(request: HttpRequest, body: QueryIn) -> Any:
    token = request_token(request)

    def create() -> Any:
        try:
            return Status(
                201,
                actions.do_create_query(
                    token.user, token.workspace, name=body.name, text=body.text, tag=body.tag
                ),
            )
        except actions.QueryRefusedError as error:  # answered with the position of the mistake
            return Status(400, {"detail": error.message, "position": error.position})

    return run_action(create)


@router.get("/mentions", response=list[MentionOut])
@paginate(LimitOffsetPagination)
def list_mentions(request: HttpRequest, filters: Query[MentionFilterIn]) -> Any:
    params = filters.dict()
    params["query"] = str(params["query"] or "")
    for name in ("since", "until"):
        params[name] = params[name].isoformat() if params[name] else ""
    return queries.mentions(
        request_token(request).workspace_id, queries.MentionFilters.from_params(params)
    )


@router.get("/alerts", response=list[AlertOut])
@paginate(LimitOffsetPagination)
def list_alerts(request: HttpRequest) -> Any:
    return queries.alerts(request_token(request).workspace_id)
