"""Text length as each network counts it, so the composer refuses exactly what the network would.

- Bluesky: 300 graphemes (a flag or a family emoji is one).
- X: 280 weighted: most of Latin, punctuation and symbols weigh 1, everything else (CJK, emoji
  sequences...) weighs 2, and any link weighs 23 whatever its length.
- Mastodon: 500 characters (code points), links count 23, ``@user@domain`` counts its local part.
- The sandbox: whatever its connector says.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import regex

from relais.connectors.base import AccountContext
from relais.connectors.registry import CONNECTORS

URL = regex.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", regex.IGNORECASE)
GRAPHEME = regex.compile(r"\X")
MASTODON_MENTION = regex.compile(r"(@[\w.]+)@[\w.-]+\w", regex.ASCII)
LINK_WEIGHT = 23
# X's counting: these code point ranges weigh 1, the rest 2 (twitter-text configuration v3).
X_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


@dataclass(frozen=True)
class NetworkRule:
    key: str
    label: str
    limit: int


def bluesky_length(text: str) -> int:
    return len(GRAPHEME.findall(text))


def x_length(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    without_links = URL.sub("", text)
    links = len(URL.findall(text))
    total = links * LINK_WEIGHT
    # An emoji sequence (a grapheme made of emoji) weighs 2 as a whole, as X counts it.
    for grapheme in GRAPHEME.findall(without_links):
        if regex.match(r"\p{Extended_Pictographic}|\p{Regional_Indicator}", grapheme):
            total += 2
            continue
        total += sum(_x_weight(char) for char in grapheme)
    return total


def _x_weight(char: str) -> int:
    point = ord(char)
    return 1 if any(low <= point <= high for low, high in X_LIGHT_RANGES) else 2


def mastodon_length(text: str) -> int:
    links = len(URL.findall(text))
    text = MASTODON_MENTION.sub(r"\1", URL.sub("", text))
    return len(text) + links * LINK_WEIGHT


RULES: dict[str, tuple[NetworkRule, Callable[[str], int]]] = {
    "bluesky": (NetworkRule("bluesky", "Bluesky", 300), bluesky_length),
    "x": (NetworkRule("x", "X", 280), x_length),
    "mastodon": (NetworkRule("mastodon", "Mastodon", 500), mastodon_length),
}


@dataclass(frozen=True)
class Count:
    network: str
    label: str
    length: int
    limit: int

    @property
    def over(self) -> bool:
        return self.length > self.limit

    @property
    def left(self) -> int:
        return self.limit - self.length


def count_for(network: str, text: str) -> Count:
    """The length of ``text`` and the limit on ``network``, counted the network's way."""
    if network in RULES:
        rule, measure = RULES[network]
        return Count(network, rule.label, measure(text), rule.limit)
    # Other networks count as their connector does; counting needs no account.
    connector = CONNECTORS[network](AccountContext(workspace_id=0, handle=""))
    return Count(
        network,
        connector.display_name,
        connector.text_length(text),
        connector.limits.max_text_length,
    )


def preview_networks() -> list[str]:
    """Networks the composer shows a count for: the counted ones and every connector."""
    return sorted(set(RULES) | set(CONNECTORS))
