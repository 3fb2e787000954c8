"""The REST API under /api/v1/: token auth, every object scoped to the token's workspace."""

from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest
from ninja import NinjaAPI, Query, Schema
from ninja.pagination import LimitOffsetPagination, paginate
from ninja.security import HttpBearer

from relais.accounts.actions import authenticate_api_token
from relais.accounts.models import ApiToken
from relais.core.api import request_token
from relais.pipeline.models import Post
from relais.pipeline.schemas import PostOut


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return authenticate_api_token(token)


api = NinjaAPI(
    title="Relais API",
    version="1",
    auth=TokenAuth(),
    docs_url="/docs",
    urls_namespace="api",
    description="Posts, conversations and replies of one workspace (the token's).",
)


class PostFilter(Schema):
    network: str | None = None
    kind: str | None = None
    direction: str | None = None
    lang: str | None = None
    sentiment: str | None = None
    intent: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None


@api.get("/posts", response=list[PostOut], tags=["posts"])
@paginate(LimitOffsetPagination)
def list_posts(request: HttpRequest, filters: Query[PostFilter]) -> Any:
    posts = Post.objects.in_workspace(request_token(request).workspace_id).select_related("author")
    for field in ("network", "kind", "direction", "lang", "sentiment", "intent", "reason"):
        if value := getattr(filters, field):
            posts = posts.filter(**{field: value})
    if filters.since:
        posts = posts.filter(created_at__gte=filters.since)
    if filters.until:
        posts = posts.filter(created_at__lt=filters.until)
    if filters.q:
        posts = posts.filter(text__icontains=filters.q)
    return posts.order_by("-created_at", "-pk")


api.add_router("/", "relais.inbox.api.router")
api.add_router("/publishing/", "relais.publishing.api.router")
api.add_router("/listening/", "relais.listening.api.router")


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> Any:
    return api.create_response(request, {"detail": "Not found."}, status=404)
