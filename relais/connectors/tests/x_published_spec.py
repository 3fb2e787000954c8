"""X's published OpenAPI document, read through its official Python SDK (xdk).

xdk's request methods and pydantic models are generated from the OpenAPI document X publishes for
API v2 (the ``specs/openapi.json`` of its generator repository, "X API v2" 2.167 for xdk 0.10.6).
The contract tests check what the connector sends and what the fixtures answer against them:

- each endpoint the connector calls is one xdk method; the query parameters the method sends
  (its code sets ``params["post.fields"]`` for its ``post_fields`` argument) and the values its
  ``Literal`` types allow are the documented vocabulary;
- a JSON body or an answer must validate against the method's request or response model, and
  every key in it must be declared by that model: xdk's models accept unknown keys
  (``extra="allow"``), which would let a renamed field through unnoticed.

Upgrading xdk to a newer published document re-runs every check, so drift between the connector
and X's document fails CI.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import pydantic
from xdk.direct_messages import models as dm_models
from xdk.direct_messages.client import DirectMessagesClient
from xdk.posts import models as post_models
from xdk.posts.client import PostsClient
from xdk.users import models as user_models
from xdk.users.client import UsersClient


@dataclass(frozen=True)
class Operation:
    """One documented endpoint, as xdk calls it."""

    method: str
    template: str  # the path as the document writes it: /2/users/{id}/mentions
    sdk_method: Callable[..., Any]
    response: type[pydantic.BaseModel]
    request: type[pydantic.BaseModel] | None = None

    @property
    def pattern(self) -> str:
        return re.sub(r"\{\w+\}", "[^/]+", self.template)

    @cached_property
    def source(self) -> str:
        return inspect.getsource(self.sdk_method)

    @cached_property
    def query_names(self) -> dict[str, str]:
        """Python argument name -> the query parameter the SDK sends for it."""
        pairs = dict(re.findall(r'if (\w+) is not None:\s+\w*params\["([^"]+)"\]', self.source))
        # Paginated methods set their page token apart from the other arguments.
        paging = re.search(r'pagination_param_name = "(\w+)"', self.source)
        return pairs | ({paging.group(1): paging.group(1)} if paging else {})

    @cached_property
    def vocabulary(self) -> dict[str, frozenset[str] | None]:
        """Each documented query parameter -> the values it allows (None: any value)."""
        parameters = inspect.signature(self.sdk_method).parameters
        return {
            query: _literal_values(self._annotation(parameters[argument].annotation))
            for argument, query in self.query_names.items()
        }

    def _annotation(self, annotation: Any) -> Any:
        """Some generated modules leave annotations as strings naming typing's own types."""
        if not isinstance(annotation, str):
            return annotation
        namespace = {**vars(typing), **inspect.getmodule(self.sdk_method).__dict__}
        return eval(annotation, namespace)  # noqa: S307 - the SDK's own annotation text


def _literal_values(annotation: Any) -> frozenset[str] | None:
    """The values a ``Optional[List[Literal[...]]]`` argument allows; None when it is free."""
    if annotation is None:
        return None
    if typing.get_origin(annotation) is Literal:
        return frozenset(str(value) for value in typing.get_args(annotation))
    for inner in typing.get_args(annotation):
        if (values := _literal_values(inner)) is not None:
            return values
    return None


OPERATIONS = (
    Operation("GET", "/2/users/me", UsersClient.get_me, user_models.GetMeResponse),
    Operation(
        "GET", "/2/users/{id}/mentions", UsersClient.get_mentions, user_models.GetMentionsResponse
    ),
    Operation("GET", "/2/users/{id}/tweets", UsersClient.get_posts, user_models.GetPostsResponse),
    Operation("GET", "/2/dm_events", DirectMessagesClient.get_events, dm_models.GetEventsResponse),
    # Not called by the connector: its recorded answer (tests/fixtures/x/recorded) is the only
    # recording of DM events that hold messages, checked against the same DmEvent schema.
    Operation(
        "GET",
        "/2/dm_conversations/with/{participant_id}/dm_events",
        DirectMessagesClient.get_events_by_participant_id,
        dm_models.GetEventsByParticipantIdResponse,
    ),
    Operation(
        "POST",
        "/2/dm_conversations/with/{participant_id}/messages",
        DirectMessagesClient.create_by_participant_id,
        dm_models.CreateByParticipantIdResponse,
        dm_models.CreateByParticipantIdRequest,
    ),
    Operation(
        "POST",
        "/2/tweets",
        PostsClient.create,
        post_models.CreateResponse,
        post_models.CreateRequest,
    ),
    Operation("GET", "/2/tweets/{id}", PostsClient.get_by_id, post_models.GetByIdResponse),
    Operation("DELETE", "/2/tweets/{id}", PostsClient.delete, post_models.DeleteResponse),
)


def operation_for(method: str, path: str) -> Operation | None:
    return next(
        (o for o in OPERATIONS if o.method == method and re.fullmatch(o.pattern, path)), None
    )


def query_problems(operation: Operation, params: dict[str, list[str]]) -> list[str]:
    """Query parameters the published document does not define, or values it does not list."""
    problems = []
    for key, values in params.items():
        if key not in operation.vocabulary:
            problems.append(f"{key} is not a parameter of {operation.template} in X's document")
            continue
        allowed = operation.vocabulary[key]
        if allowed is None:
            continue
        problems += [
            f"{key}: {item!r} is not in X's document"
            for value in values
            for item in value.split(",")
            if item not in allowed
        ]
    return problems


def model_problems(model: type[pydantic.BaseModel], data: Any, where: str = "") -> list[str]:
    """Validation errors of ``data`` against ``model``, and every key the model does not declare."""
    try:
        model.model_validate(data)
        invalid = []
    except pydantic.ValidationError as exc:
        invalid = [
            f"{where}{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        ]
    return invalid + undeclared_keys(model, data, where)


def undeclared_keys(annotation: Any, data: Any, where: str = "") -> list[str]:
    """Keys of ``data`` (recursively) that the schema behind ``annotation`` does not declare."""
    model = _model_in(annotation)
    if model is not None and isinstance(data, dict):
        problems = []
        for key, value in data.items():
            field = model.model_fields.get(key)
            if field is None:
                problems.append(f"{where}{key} is not declared by {model.__name__}")
            else:
                problems += undeclared_keys(field.annotation, value, f"{where}{key}.")
        return problems
    item = _item_annotation(annotation)
    if item is not None and isinstance(data, list):
        return [p for i, value in enumerate(data) for p in undeclared_keys(item, value, where)]
    return []


def _model_in(annotation: Any) -> type[pydantic.BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for inner in typing.get_args(annotation):
            if (model := _model_in(inner)) is not None:
                return model
    return None


def _item_annotation(annotation: Any) -> Any:
    """The element type of a (possibly optional) list annotation."""
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for inner in typing.get_args(annotation):
            if (item := _item_annotation(inner)) is not None:
                return item
    return None
