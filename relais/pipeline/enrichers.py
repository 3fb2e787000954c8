"""The ordered enrichment step, run on new posts before they are inserted.

An enricher fills the enrichment fields of posts in place (language, sentiment, intent, reason,
entities, and ``enriched_by`` naming the model version). Running before the insert means the
enrichment is written by the same statement that stores the post: no second pass over the rows.
"""

from collections.abc import Sequence
from typing import Protocol

from relais import nlp
from relais.pipeline.models import Post


class Enricher(Protocol):
    name: str

    def enrich(self, posts: Sequence[Post]) -> None: ...


class NlpEnricher:
    """Language, sentiment, intent, complaint reason and entities from ``relais.nlp``.

    The detected language replaces what the network declared: clients often declare their
    interface language, not the post's; the declared one stays in the raw payload.
    """

    name = nlp.MODEL_VERSION

    def enrich(self, posts: Sequence[Post]) -> None:
        for post, result in zip(posts, nlp.enrich_texts([p.text for p in posts]), strict=True):
            post.lang = result.lang[:8]
            post.sentiment = result.sentiment
            post.sentiment_score = result.sentiment_score
            post.intent = result.intent
            post.reason = result.reason or ""
            post.entities = result.entities
            post.enriched_by = self.name


ENRICHERS: list[Enricher] = [NlpEnricher()]


def enrich_posts(posts: Sequence[Post]) -> None:
    if not posts:
        return
    for enricher in ENRICHERS:
        enricher.enrich(posts)


def current_enrichment() -> str:
    """What ``enriched_by`` says of a post the current enrichers just handled."""
    return ENRICHERS[-1].name if ENRICHERS else ""
