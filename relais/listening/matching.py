"""Matching stored posts against a workspace's active queries, with matchers cached per process.

A worker keeps one compiled Matcher per workspace. Before each batch it reads a fingerprint of the
workspace's active queries (how many, latest change); any create, edit or archive changes it, so
every process recompiles on its next batch without needing a message between processes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max

from relais.listening.matcher import MatchablePost, Matcher
from relais.listening.models import ListeningQuery
from relais.listening.query import And, Hashtag, Node, Not, Or, Phrase, Word, parse_query
from relais.pipeline.models import Post

Fingerprint = tuple[int, datetime | None, int | None]


@dataclass(frozen=True)
class CompiledQueries:
    fingerprint: Fingerprint
    matcher: Matcher[int]
    # The words each query searches for: left out of its term counts, where they would always win.
    own_terms: dict[int, frozenset[str]]


_cache: dict[int, CompiledQueries] = {}
_cache_lock = threading.Lock()


def positive_terms(node: Node) -> set[str]:
    match node:
        case Word(text):
            return {text}
        case Hashtag(tag):
            return {"#" + tag}
        case Phrase(tokens):
            return set(tokens)
        case And(operands) | Or(operands):
            return set().union(*(positive_terms(operand) for operand in operands))
        case Not():
            return set()
    return set()


def _fingerprint(workspace_id: int) -> Fingerprint:
    summary = (
        ListeningQuery.objects.in_workspace(workspace_id)
        .filter(active=True)
        .aggregate(count=Count("id"), changed=Max("updated_at"), last=Max("id"))
    )
    return summary["count"], summary["changed"], summary["last"]


def compile_queries(queries: Sequence[ListeningQuery], fingerprint: Fingerprint) -> CompiledQueries:
    parsed = [(query.pk, parse_query(query.text)) for query in queries]
    return CompiledQueries(
        fingerprint=fingerprint,
        matcher=Matcher(parsed),
        own_terms={pk: frozenset(positive_terms(query.root)) for pk, query in parsed},
    )


def compiled_queries(workspace_id: int) -> CompiledQueries | None:
    """The workspace's active queries, compiled; None when it has none."""
    fingerprint = _fingerprint(workspace_id)
    if fingerprint[0] == 0:
        return None
    cached = _cache.get(workspace_id)
    if cached is not None and cached.fingerprint == fingerprint:
        return cached
    queries = list(ListeningQuery.objects.in_workspace(workspace_id).filter(active=True))
    compiled = compile_queries(queries, fingerprint)
    with _cache_lock:
        _cache[workspace_id] = compiled
    return compiled


def forget_workspace(workspace_id: int) -> None:
    with _cache_lock:
        _cache.pop(workspace_id, None)


def matchable(post: Post) -> MatchablePost:
    return MatchablePost(
        text=post.text, lang=post.lang, network=post.network, author_handle=post.author.handle
    )
