"""Variables in canned and suggested replies: {customer_name}, {agent_name}, {ticket}."""

from __future__ import annotations

from relais.accounts.models import User
from relais.inbox.models import Conversation

VARIABLES = ("customer_name", "agent_name", "ticket")


def values_for(conversation: Conversation, agent: User) -> dict[str, str]:
    customer = conversation.customer
    return {
        "customer_name": (customer.name.split() or [customer.handle])[0],
        "agent_name": agent.first_name or agent.username,
        "ticket": f"#{conversation.pk}",
    }


def fill(text: str, values: dict[str, str]) -> str:
    """Replace known variables only; other braces in the text are left as written."""
    for name in VARIABLES:
        text = text.replace("{" + name + "}", values.get(name, ""))
    return text
