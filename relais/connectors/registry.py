"""Network key -> connector class. A new network is one module in ``networks/`` listed here."""

from typing import TYPE_CHECKING

from relais.connectors.base import AccountContext, Connector
from relais.connectors.networks.sandbox import SandboxConnector

if TYPE_CHECKING:
    from relais.connectors.models import ConnectedAccount

CONNECTORS: dict[str, type[Connector]] = {
    connector.key: connector for connector in (SandboxConnector,)
}


def connector_class(network: str) -> type[Connector]:
    try:
        return CONNECTORS[network]
    except KeyError:
        raise KeyError(f"no connector for network {network!r}") from None


def connector_for(account: "ConnectedAccount") -> Connector:
    """A connector acting for a stored account."""
    context = AccountContext(
        workspace_id=account.workspace_id, handle=account.handle, settings=account.settings
    )
    return connector_class(account.network)(context)


def network_choices() -> list[tuple[str, str]]:
    return [(key, cls.display_name) for key, cls in sorted(CONNECTORS.items())]
