"""Network key -> connector class. A new network is one module in ``networks/`` listed here."""

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from relais.connectors.base import AccountContext, Connector
from relais.connectors.credentials import UnreadableCredentialsError, decrypt_credentials
from relais.connectors.networks.bluesky import BlueskyConnector
from relais.connectors.networks.facebook import FacebookPageConnector, InstagramConnector
from relais.connectors.networks.mastodon import MastodonConnector
from relais.connectors.networks.rss import RssConnector
from relais.connectors.networks.sandbox import SandboxConnector
from relais.connectors.networks.x import XConnector

if TYPE_CHECKING:
    from relais.connectors.models import ConnectedAccount

logger = logging.getLogger(__name__)

CONNECTORS: dict[str, type[Connector]] = {
    connector.key: connector
    for connector in (
        SandboxConnector,
        BlueskyConnector,
        MastodonConnector,
        RssConnector,
        XConnector,
        FacebookPageConnector,
        InstagramConnector,
    )
}


def connector_class(network: str) -> type[Connector]:
    try:
        return CONNECTORS[network]
    except KeyError:
        raise KeyError(f"no connector for network {network!r}") from None


def connector_for(account: "ConnectedAccount") -> Connector:
    """A connector acting for a stored account, with its credentials decrypted.

    Credentials the network renews while the connector works (a refreshed session) are
    encrypted and stored again at once, whichever code path triggered the renewal.
    """

    def save(credentials: dict[str, Any]) -> None:
        from relais.connectors.actions import do_store_credentials

        do_store_credentials(account, credentials)

    def renew(change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        from relais.connectors.actions import do_renew_credentials

        return do_renew_credentials(account, change)

    try:
        credentials = decrypt_credentials(account.credentials)
    except UnreadableCredentialsError:
        # Written under another secret key: the network will refuse the empty credentials and
        # the account moves to "reconnect needed" like any revoked one.
        logger.warning("credentials of %r cannot be decrypted", account)
        credentials = {}
    context = AccountContext(
        workspace_id=account.workspace_id,
        handle=account.handle,
        settings=account.settings,
        credentials=credentials,
        save_credentials=save,
        renew_credentials=renew,
    )
    cls = connector_class(account.network)
    if getattr(cls, "metered", False):
        # A network that bills every call charges it to the workspace's monthly budget.
        from relais.connectors.budget import WorkspaceBudget

        return cls(context, meter=WorkspaceBudget(account.workspace_id, account.network))  # type: ignore[call-arg]
    return cls(context)


def network_choices() -> list[tuple[str, str]]:
    return [(key, cls.display_name) for key, cls in sorted(CONNECTORS.items())]
