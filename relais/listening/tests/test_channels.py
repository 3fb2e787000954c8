"""Alert channels: addresses encrypted at rest, shown masked, private destinations refused."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from relais.core.errors import ValidationFailedError
from relais.listening import delivery
from relais.listening.actions import do_create_channel, do_create_query, signing_key
from relais.listening.addresses import mask_url
from relais.listening.models import Alert, AlertChannel
from relais.listening.tests.receiver import Receiver

pytestmark = pytest.mark.django_db

SECRET_URL = "http://127.0.0.1:9/services/T000/B000/s3cret-token"


@pytest.fixture
def receiver(settings):
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def allow_local(settings):
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}


def raw_row(channel: AlertChannel) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT * FROM {AlertChannel._meta.db_table} WHERE id = %s",  # noqa: S608
            [channel.pk],
        )
        return repr(cursor.fetchone())


@pytest.mark.usefixtures("allow_local")
def test_the_address_is_stored_encrypted_and_read_back(workspace, owner):
    channel = do_create_channel(owner, workspace, name="Ops", kind="webhook", target=SECRET_URL)
    stored = raw_row(channel)
    assert "s3cret-token" not in stored
    assert "127.0.0.1" not in stored
    assert AlertChannel.objects.get(pk=channel.pk).target == SECRET_URL


@pytest.mark.usefixtures("allow_local")
def test_the_interface_shows_only_scheme_and_host(workspace, owner, client):
    do_create_channel(owner, workspace, name="Ops", kind="webhook", target=SECRET_URL)
    client.force_login(owner)
    page = client.get(f"/w/{workspace.slug}/listening/alerts/").content.decode()
    assert "http://127.0.0.1/…" in page
    assert "s3cret-token" not in page
    assert "/services/" not in page


def test_masking_keeps_tokens_out():
    assert mask_url("mailtos://ops:pa55@mail.example.com") == "mailtos://mail.example.com/…"
    assert mask_url("tgram://123456:ABCDEF/987") == "tgram:///…"  # the host is a bot token
    assert mask_url("json://10.0.0.5:8080/hook") == "json://10.0.0.5/…"
    assert mask_url("https://example.com") == "https://example.com"


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("webhook", "http://127.0.0.1:8000/hook"),
        ("webhook", "http://localhost/hook"),
        ("webhook", "http://169.254.169.254/latest/meta-data/"),
        ("webhook", "http://[::1]/hook"),
        ("apprise", "json://127.0.0.1/hook"),
        ("apprise", "xmls://10.1.2.3/hook"),
        ("apprise", "form://localhost:9000/hook"),
        ("apprise", "mailto://user:pw@192.168.1.10"),
        ("apprise", "ntfy://localhost/alerts"),
    ],
)
def test_private_destinations_are_refused(workspace, owner, kind, target):
    with pytest.raises(ValidationFailedError) as refused:
        do_create_channel(owner, workspace, name="x", kind=kind, target=target)
    assert "private" in str(refused.value) or "address" in str(refused.value)
    assert not AlertChannel.objects.exists()


def test_a_deployment_can_allow_its_own_network(workspace, owner, settings):
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": True}
    channel = do_create_channel(
        owner, workspace, name="x", kind="webhook", target="http://127.0.0.1:8000/hook"
    )
    assert channel.target == "http://127.0.0.1:8000/hook"


def test_an_apprise_web_hook_delivers_to_a_real_receiver(workspace, owner, receiver):
    port = receiver.httpd.server_address[1]
    channel = do_create_channel(
        owner, workspace, name="Chat", kind="apprise", target=f"json://127.0.0.1:{port}/notify"
    )
    query = do_create_query(owner, workspace, name="Free", text="free")
    alert = Alert.objects.create(
        workspace=workspace,
        query=query,
        metric="volume",
        started_at=query.created_at,
        detected_at=query.created_at,
        observed=20,
        expected=1,
        peak=20,
    )
    delivery.send(channel, delivery.notice_payload(alert, "opened", "/alerts"), "secret")
    (notice,) = receiver.received
    assert notice.path == "/notify"
    assert "Free" in json.loads(notice.body)["title"]


PUBLIC_ADDRESS = "93.184.215.14"


class Resolver:
    """Stands in for DNS: answers each of `names` with the address it is set to (given
    numerically, so no query leaves the machine); other names go to the system resolver."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, names: dict[str, str]) -> None:
        self.names = names
        self.system = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return self.system(self.names.get(host, host), port, *args, **kwargs)


def an_alert(owner, workspace) -> Alert:
    query = do_create_query(owner, workspace, name="Free", text="free")
    return Alert.objects.create(
        workspace=workspace,
        query=query,
        metric="volume",
        started_at=query.created_at,
        detected_at=query.created_at,
        observed=20,
        expected=1,
        peak=20,
    )


@pytest.fixture
def local_receiver(settings):
    """A receiver on 127.0.0.1, with private destinations refused as in production."""
    settings.RELAIS = {**settings.RELAIS, "ALLOW_PRIVATE_DESTINATIONS": False}
    server = Receiver()
    yield server
    server.close()


def test_an_apprise_name_rebound_to_a_private_address_after_the_checks_is_refused(
    workspace, owner, monkeypatch, local_receiver
):
    port = local_receiver.httpd.server_address[1]
    resolver = Resolver(monkeypatch, {"hooks.example.com": PUBLIC_ADDRESS})
    channel = do_create_channel(
        owner, workspace, name="Chat", kind="apprise", target=f"json://hooks.example.com:{port}/n"
    )
    checked = delivery.check_apprise_destination

    def check_then_rebind(url: str) -> None:
        checked(url)  # the name is public when checked just before the send...
        resolver.names["hooks.example.com"] = "127.0.0.1"  # ...and private right after

    monkeypatch.setattr(delivery, "check_apprise_destination", check_then_rebind)
    payload = delivery.notice_payload(an_alert(owner, workspace), "opened", "/alerts")
    with pytest.raises(delivery.DeliveryError, match=r"private address \(127\.0\.0\.1\)"):
        delivery.send(channel, payload, "secret")
    assert local_receiver.received == []


def test_an_apprise_chat_host_naming_a_private_address_is_refused_at_send(
    workspace, owner, monkeypatch, local_receiver
):
    """Chat kinds are checked by address when saved; their names are checked when sending."""
    port = local_receiver.httpd.server_address[1]
    Resolver(monkeypatch, {"chat.intranet.example": "127.0.0.1"})
    channel = do_create_channel(
        owner,
        workspace,
        name="Chat",
        kind="apprise",
        target=f"ntfy://chat.intranet.example:{port}/ops",
    )
    payload = delivery.notice_payload(an_alert(owner, workspace), "opened", "/alerts")
    with pytest.raises(delivery.DeliveryError, match="private address"):
        delivery.send(channel, payload, "secret")
    assert local_receiver.received == []


def test_a_channel_unreadable_after_a_key_change_says_so(workspace, owner, receiver, settings):
    channel = do_create_channel(owner, workspace, name="x", kind="webhook", target=receiver.url())
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    channel = AlertChannel.objects.get(pk=channel.pk)
    assert channel.masked_target == ""
    with pytest.raises(delivery.DeliveryError, match="add the channel again"):
        delivery.send(channel, {"event": "alert.opened"}, signing_key(workspace.pk))
    assert receiver.received == []


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_addresses_and_reverses(workspace):
    executor = MigrationExecutor(connection)
    before, after = (
        [("listening", "0002_mention_search")],
        [("listening", "0003_encrypt_channel_targets")],
    )
    try:
        executor.migrate(before)
        old_state = executor.loader.project_state(before).apps
        old_state.get_model("listening", "AlertChannel").objects.create(
            workspace_id=workspace.pk, name="Old", kind="webhook", target=SECRET_URL
        )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new_model = executor.loader.project_state(after).apps.get_model("listening", "AlertChannel")
        token = new_model.objects.get().target_token
        assert "s3cret" not in token
        assert AlertChannel.objects.get().target == SECRET_URL
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old_model = executor.loader.project_state(before).apps.get_model(
            "listening", "AlertChannel"
        )
        assert old_model.objects.get().target == SECRET_URL
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
