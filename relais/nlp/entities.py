"""Entities a post names: handles, hashtags, links and products (from a shipped gazetteer).

One combined regular expression scans the whole batch in a single pass; links come first in
the alternation so a handle or hashtag inside a URL is not reported on its own.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate
from pathlib import Path

PRODUCTS_FILE = Path(__file__).parent / "products.json"
KINDS = ("handles", "hashtags", "links", "products")
LINK = r"(?P<links>\b(?:https?://|www\.)[^\s<>\"']+)"
HANDLE = r"(?<![\w@])@(?P<handles>\w{1,50})"
HASHTAG = r"(?<![\w#&])#(?P<hashtags>\w*[^\W\d_]\w*)"
TRAILING_PUNCTUATION = ".,;:!?)]}'\"…"
SEPARATOR = "\n"


@lru_cache(maxsize=1)
def _scanners() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, str]]:
    """Markup scanner, and product scanner (aliases longest first, so 'freebox pop' beats
    'freebox'); products are matched on lower-cased text, cheaper than a case-blind pattern."""
    catalogue: dict[str, list[str]] = json.loads(PRODUCTS_FILE.read_text(encoding="utf-8"))
    canonical = {alias.lower(): name for name, aliases in catalogue.items() for alias in aliases}
    aliases = "|".join(map(re.escape, sorted(canonical, key=len, reverse=True)))
    products = re.compile(rf"(?<![\w@#])(?:{aliases})(?!\w)")
    return re.compile("|".join((LINK, HANDLE, HASHTAG))), products, canonical


def _lower_keeping_offsets(text: str) -> str:
    """Lower case, except characters whose lower case is longer (as 'İ'): offsets must not move."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)


def extract_batch(texts: list[str]) -> list[dict[str, list[str]]]:
    """Entities of each post in order of first appearance, without duplicates."""
    markup, products, canonical = _scanners()
    joined = SEPARATOR.join(text.replace(SEPARATOR, " ") for text in texts)
    starts = [0, *accumulate(len(text) + 1 for text in texts)]
    found: list[list[list[str]]] = [[[], [], [], []] for _ in texts]
    for match in markup.finditer(joined):
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "links":
            value = value.rstrip(TRAILING_PUNCTUATION)
        found[bisect_right(starts, match.start()) - 1][KINDS.index(kind)].append(value)
    for match in products.finditer(_lower_keeping_offsets(joined)):
        found[bisect_right(starts, match.start()) - 1][3].append(canonical[match.group()])
    return [
        {
            kind: list(dict.fromkeys(values)) if values else values
            for kind, values in zip(KINDS, post, strict=True)
        }
        for post in found
    ]


def extract(text: str) -> dict[str, list[str]]:
    return extract_batch([text])[0]
