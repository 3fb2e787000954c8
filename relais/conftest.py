"""Shared fixtures: data is created through actions, like the product creates it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest

from relais.accounts.actions import do_add_member, do_create_user, do_create_workspace
from relais.accounts.models import User, Workspace
from relais.connectors.base import InboundAuthor, InboundItem, PostKind
from relais.connectors.models import ConnectedAccount
from relais.sandbox.actions import do_connect_sandbox_account

# Property tests check behaviour, not speed: no per-example deadline (a loaded CI machine would
# fail them at random; speed is measured by benchmarks/).
hypothesis.settings.register_profile("relais", deadline=None)
hypothesis.settings.load_profile("relais")

_counter = itertools.count(1)
T0 = datetime(2024, 8, 19, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _eager_tasks() -> None:
    """Tasks run in the test's process unless a test starts real workers."""
    from config.celery import app

    app.conf.task_always_eager = True


@pytest.fixture(autouse=True, scope="session")
def _click_journals_of_this_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Clicks journalled by tests stay out of the data directory a real `relais run` replays."""
    from relais.publishing import links

    links.recorder.journal_dir = tmp_path_factory.mktemp("clicks")


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(username: str = "", **kwargs: Any) -> User:
        return do_create_user(username or f"user{next(_counter)}", "pw-for-tests-123", **kwargs)

    return make


@pytest.fixture
def make_workspace(make_user: Callable[..., User]) -> Callable[..., Workspace]:
    def make(name: str = "", owner: User | None = None) -> Workspace:
        return do_create_workspace(name or f"Brand {next(_counter)}", owner or make_user())

    return make


@pytest.fixture
def workspace(make_workspace: Callable[..., Workspace]) -> Workspace:
    return make_workspace("Acme")


@pytest.fixture
def owner(workspace: Workspace) -> User:
    return User.objects.get(memberships__workspace=workspace, memberships__role="owner")


@pytest.fixture
def agent(workspace: Workspace, owner: User, make_user: Callable[..., User]) -> User:
    user = make_user("alex", first_name="Alex")
    do_add_member(workspace, user, "agent", actor=owner)
    return user


@pytest.fixture
def brand_account(workspace: Workspace, owner: User) -> ConnectedAccount:
    return do_connect_sandbox_account(workspace, "free", "Freebox", ["free"], actor=owner)


def make_item(
    remote_id: str,
    text: str = "hello",
    *,
    handle: str = "camille",
    minutes: float = 0,
    in_reply_to: str | None = None,
    mentions: tuple[str, ...] | None = None,
    kind: PostKind | None = None,
    followers: int | None = None,
) -> InboundItem:
    """An inbound item as a connector would deliver it."""
    if mentions is None:
        mentions = tuple(word[1:] for word in text.split() if word.startswith("@"))
    return InboundItem(
        remote_id=remote_id,
        kind=kind or (PostKind.REPLY if in_reply_to else PostKind.POST),
        author=InboundAuthor(
            remote_id=f"id-{handle}", handle=handle, name=handle.title(), followers=followers
        ),
        text=text,
        created_at=T0 + timedelta(minutes=minutes),
        in_reply_to=in_reply_to,
        mentions=mentions,
    )


@pytest.fixture
def agent_client(client: Any, agent: User) -> Any:
    """A Django test client logged in as the workspace's agent."""
    client.force_login(agent)
    return client
