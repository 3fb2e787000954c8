"""The ordered enrichment step between storing a post and routing it.

An enricher fills the enrichment fields of new posts in place (language, sentiment, intent,
reason, entities). The real models come from ``relais/nlp``; until they are wired in, the list is
empty and posts keep the language their network declared.
"""

from collections.abc import Sequence
from typing import Protocol

from relais.pipeline.models import Post


class Enricher(Protocol):
    name: str

    def enrich(self, posts: Sequence[Post]) -> None: ...


ENRICHERS: list[Enricher] = []


def enrich_posts(posts: Sequence[Post]) -> None:
    for enricher in ENRICHERS:
        enricher.enrich(posts)
