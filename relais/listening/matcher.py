"""Match posts against many listening queries at firehose speed.

Each query is compiled into a predicate plus a set of *anchors*: positive terms such that every post
the query matches contains at least one of them (a word or entity token, a pair of tokens that
must both be present, a wildcard stem, or the author). Posts are tokenized once; the anchors found
in a post select the few candidate queries, and only those are evaluated. A phrase or two required
words are anchored by a pair: a common word then selects only the posts that also hold the other.
A post without anchors costs a tokenization and a few set operations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from relais.listening.query import (
    MIN_STEM_LENGTH,
    And,
    AuthorFilter,
    Hashtag,
    LangFilter,
    Mention,
    NetworkFilter,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Word,
    normalize,
    tokenize,
)

QueryId = TypeVar("QueryId", bound=Hashable)

# Per-token lookups are memoized; the memo is reset when it grows past this many distinct tokens
# so that a stream of junk tokens cannot exhaust memory.
TOKEN_MEMO_LIMIT = 500_000


@dataclass(frozen=True, slots=True)
class MatchablePost:
    text: str
    lang: str | None = None
    network: str | None = None
    author_handle: str | None = None


@dataclass(frozen=True, slots=True)
class TokenizedPost:
    """A post reduced to what queries look at, all normalized like query terms."""

    tokens: list[str]
    token_set: frozenset[str]
    lang: str
    network: str
    author: str


def tokenize_post(post: MatchablePost) -> TokenizedPost:
    tokens = tokenize(post.text)
    return TokenizedPost(
        tokens=tokens,
        token_set=frozenset(tokens),
        lang=_primary_language(post.lang),
        network=(post.network or "").lower(),
        author=_author_key(post.author_handle),
    )


@functools.lru_cache(maxsize=1024)
def _primary_language(lang: str | None) -> str:
    """lang:fr must match posts tagged fr-CA or fr_FR too."""
    return (lang or "").replace("_", "-").partition("-")[0].lower()


@functools.lru_cache(maxsize=65_536)
def _author_key(handle: str | None) -> str:
    return normalize(handle or "").removeprefix("@")


def evaluate(node: Node, post: TokenizedPost) -> bool:  # noqa: PLR0911 - one return per kind
    """Reference semantics: the straightforward reading of a query on one post."""
    match node:
        case Word(text):
            return text in post.token_set
        case Hashtag(tag):
            return "#" + tag in post.token_set
        case Mention(handle):
            return "@" + handle in post.token_set
        case Phrase(tokens):
            width = len(tokens)
            return any(
                tuple(post.tokens[start : start + width]) == tokens
                for start in range(len(post.tokens) - width + 1)
            )
        case Prefix(stem):
            return any(token.startswith(stem) for token in post.token_set)
        case LangFilter(code):
            return post.lang == code
        case NetworkFilter(network):
            return post.network == network
        case AuthorFilter(handle):
            return post.author == handle
        case Not(operand):
            return not evaluate(operand, post)
        case And(operands):
            return all(evaluate(operand, post) for operand in operands)
        case Or(operands):
            return any(evaluate(operand, post) for operand in operands)
    raise TypeError(f"not a query node: {node!r}")


# ---------------------------------------------------------------------------------------------
# Compilation


class _PostView:
    """What compiled predicates read: the post's tokens, and the wildcard stems it satisfies.

    The stems are worked out on first use, by the matcher's `stems_of`: most posts never reach a
    wildcard, and telling which stems their tokens start with is the dearest step left.
    """

    __slots__ = ("_stems", "_stems_of", "author", "lang", "network", "token_set", "tokens")

    def __init__(
        self,
        tokens: list[str],
        token_set: set[str],
        stems_of: Callable[[set[str]], set[str]],
        post: MatchablePost,
        author: str | None,
    ) -> None:
        self.tokens = tokens
        self.token_set = token_set
        self._stems_of = stems_of
        self._stems: set[str] | None = None
        self.lang = _primary_language(post.lang)
        self.network = (post.network or "").lower()
        self.author = _author_key(post.author_handle) if author is None else author

    def stems(self) -> set[str]:
        if self._stems is None:
            self._stems = self._stems_of(self.token_set)
        return self._stems


_Predicate = Callable[[_PostView], bool]

# An anchor is ("token", normalized token), ("pair", token, other token) when both must be
# present, ("stem", wildcard stem) or ("author", handle).
_Anchor = tuple[str, ...]


def _single_token(node: Node) -> str | None:
    """The token a word, hashtag or handle stands for; these compile to set operations."""
    match node:
        case Word(text):
            return text
        case Hashtag(tag):
            return "#" + tag
        case Mention(handle):
            return "@" + handle
    return None


def _compile(node: Node) -> _Predicate:  # noqa: PLR0911 - one return per node kind reads best
    match node:
        case Word() | Hashtag() | Mention():
            token = _single_token(node)
            return lambda view: token in view.token_set
        case Phrase(tokens):
            return _has_run(list(tokens))
        case Prefix(stem):
            return lambda view: stem in view.stems()
        case LangFilter(code):
            return lambda view: view.lang == code
        case NetworkFilter(network):
            return lambda view: view.network == network
        case AuthorFilter(handle):
            return lambda view: view.author == handle
        case Not(operand):
            inner = _compile(operand)
            return lambda view: not inner(view)
        case And(operands):
            return _all_of(operands)
        case Or(operands):
            return _any_of(operands)
    raise TypeError(f"not a query node: {node!r}")


def _has_run(run: list[str]) -> _Predicate:
    first, width = run[0], len(run)

    def contains_run(view: _PostView) -> bool:
        if not view.token_set.issuperset(run):
            return False
        tokens = view.tokens
        start = tokens.index(first)
        while tokens[start : start + width] != run:
            try:
                start = tokens.index(first, start + 1)
            except ValueError:
                return False
        return True

    return contains_run


def _split_operands(operands: tuple[Node, ...]) -> tuple[frozenset[str], list[_Predicate]]:
    """Plain-token operands become one set, checked in C; the rest run cheapest first."""
    tokens = frozenset(token for op in operands if (token := _single_token(op)) is not None)
    others = sorted((op for op in operands if _single_token(op) is None), key=_evaluation_cost)
    return tokens, [_compile(op) for op in others]


def _evaluation_cost(node: Node) -> int:
    """Cheapest first; a wildcard comes last, as the first one a post meets costs the most."""
    match node:
        case Not(operand):
            return _evaluation_cost(operand)
        case LangFilter() | NetworkFilter() | AuthorFilter() | Word() | Hashtag() | Mention():
            return 0
        case Phrase():
            return 1
        case Prefix():
            return 3
    return 2


# Plain loops rather than all()/any() over a generator: this is the hot path, and a generator
# costs more than the two or three predicates it would iterate.
def _all_of(operands: tuple[Node, ...]) -> _Predicate:
    tokens, predicates = _split_operands(operands)

    def check_all(view: _PostView) -> bool:
        if not view.token_set.issuperset(tokens):
            return False
        for predicate in predicates:  # noqa: SIM110 - see above
            if not predicate(view):
                return False
        return True

    return check_all


def _any_of(operands: tuple[Node, ...]) -> _Predicate:
    tokens, predicates = _split_operands(operands)

    def check_any(view: _PostView) -> bool:
        if not view.token_set.isdisjoint(tokens):
            return True
        for predicate in predicates:  # noqa: SIM110 - see above
            if predicate(view):
                return True
        return False

    return check_any


def _anchors(node: Node) -> frozenset[_Anchor] | None:  # noqa: PLR0911
    """Positive terms of which every matching post holds at least one; None if there are none."""
    match node:
        case Word(text):
            return frozenset({("token", text)})
        case Hashtag(tag):
            return frozenset({("token", "#" + tag)})
        case Mention(handle):
            return frozenset({("token", "@" + handle)})
        case Phrase(tokens):
            return frozenset({_token_anchor(_rarest(tokens))})
        case Prefix(stem):
            return frozenset({("stem", stem)})
        case AuthorFilter(handle):
            return frozenset({("author", handle)})
        case And(operands):
            choices = [anchors for op in operands if (anchors := _anchors(op)) is not None]
            # Two words that must both be present select fewer posts than either one.
            required = [anchor[1] for [anchor] in filter(_is_single_token, choices)]
            if len(required) > 1:
                choices.append(frozenset({_token_anchor(_rarest(required))}))
            return min(choices, key=_anchor_cost, default=None)
        case Or(operands):
            branches = [_anchors(operand) for operand in operands]
            if any(branch is None for branch in branches):
                return None
            return frozenset().union(*(branch for branch in branches if branch is not None))
    return None


def _rarest(tokens: Iterable[str]) -> list[str]:
    """At most two distinct tokens, the longest first: the longer, the likelier to be rare."""
    return sorted(dict.fromkeys(tokens), key=len, reverse=True)[:2]


def _token_anchor(tokens: list[str]) -> _Anchor:
    return ("pair", *tokens) if len(tokens) == 2 else ("token", tokens[0])


def _is_single_token(anchors: frozenset[_Anchor]) -> bool:
    return len(anchors) == 1 and next(iter(anchors))[0] == "token"


def _anchor_cost(anchors: frozenset[_Anchor]) -> int:
    """Fewer anchors means fewer candidate hits; a pair selects fewer posts than one token, and a
    stem more tokens than a whole word."""
    costs = {"pair": 1, "token": 2, "author": 2, "stem": 6}
    return sum(costs[anchor[0]] for anchor in anchors)


def _stems(node: Node) -> set[str]:
    match node:
        case Prefix(stem):
            return {stem}
        case Not(operand):
            return _stems(operand)
        case And(operands) | Or(operands):
            return set().union(*(_stems(operand) for operand in operands))
    return set()


# ---------------------------------------------------------------------------------------------
# Matcher


class Matcher(Generic[QueryId]):
    """Queries compiled into token indexes; `match` returns ids in the order queries were given."""

    def __init__(self, queries: Iterable[tuple[QueryId, Query]]) -> None:
        self._query_ids: list[QueryId] = []
        self._predicates: list[_Predicate] = []
        self._by_token: dict[str, list[int]] = {}
        self._by_stem: dict[str, list[int]] = {}
        self._by_author: dict[str, list[int]] = {}
        # Queries anchored by two tokens, filed under the first and then the second.
        self._by_pair: dict[str, dict[str, list[int]]] = {}
        # Every stem of every query, including negated ones, filed under its first letters.
        self._stems_by_head: dict[str, set[str]] = {}
        for query_id, query in queries:
            self._add(query_id, query)
        self._pair_heads = frozenset(self._by_pair)
        self._forget_tokens()

    def _add(self, query_id: QueryId, query: Query) -> None:
        index = len(self._query_ids)
        self._query_ids.append(query_id)
        self._predicates.append(_compile(query.root))
        anchors = _anchors(query.root)
        if anchors is None:
            raise ValueError(f"query {query_id!r} has no positive term to index it by")
        indexes = {"token": self._by_token, "stem": self._by_stem, "author": self._by_author}
        for kind, key, *second in anchors:
            if second:
                self._by_pair.setdefault(key, {}).setdefault(second[0], []).append(index)
            else:
                indexes[kind].setdefault(key, []).append(index)
        for stem in _stems(query.root):
            self._stems_by_head.setdefault(stem[:MIN_STEM_LENGTH], set()).add(stem)

    def _forget_tokens(self) -> None:
        """Reset the per-token memo to the tokens the queries name.

        Which tokens satisfy a wildcard is open-ended, so it is learnt from the stream: `_seen`
        holds every token already looked at; `_queries_by_token` and `_stems_by_token` those that
        select a query or satisfy a stem. Set operations in C then replace a loop over the tokens.
        """
        self._queries_by_token: dict[str, tuple[int, ...]] = {}
        self._stems_by_token: dict[str, frozenset[str]] = {}
        # Key sets kept beside the dicts: set & set is the fastest intersection CPython has.
        self._query_tokens: set[str] = set()
        self._stem_tokens: set[str] = set()
        self._seen: set[str] = set()
        self._learn(self._by_token.keys())

    def _learn(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            stems = frozenset(
                stem
                for stem in self._stems_by_head.get(token[:MIN_STEM_LENGTH], ())
                if token.startswith(stem)
            )
            queries = list(self._by_token.get(token, ()))
            for stem in stems:
                queries.extend(self._by_stem.get(stem, ()))
            if queries:
                self._queries_by_token[token] = tuple(queries)
                self._query_tokens.add(token)
            if stems:
                self._stems_by_token[token] = stems
                self._stem_tokens.add(token)
            self._seen.add(token)

    def match(self, post: MatchablePost) -> list[QueryId]:
        tokens = tokenize(post.text)
        token_set = set(tokens)
        if self._by_stem:  # queries anchored by a stem: learn which tokens satisfy one first
            self._learn_new(token_set)
        hits = map(self._queries_by_token.__getitem__, token_set & self._query_tokens)
        candidates: set[int] = set().union(*hits)
        for head in token_set & self._pair_heads:
            seconds = self._by_pair[head]
            if not seconds.keys().isdisjoint(token_set):  # mostly disjoint: no set built
                for second in seconds.keys() & token_set:
                    candidates.update(seconds[second])
        author = None
        if self._by_author:
            author = _author_key(post.author_handle)
            candidates.update(self._by_author.get(author, ()))
        if not candidates:
            return []
        view = _PostView(tokens, token_set, self._stems_of, post, author)
        predicates, query_ids = self._predicates, self._query_ids
        return [query_ids[index] for index in sorted(candidates) if predicates[index](view)]

    def _learn_new(self, token_set: set[str]) -> None:
        if not token_set.issubset(self._seen):
            # Forget before working out what is new, so that every token of this post is known.
            if len(self._seen) > TOKEN_MEMO_LIMIT:
                self._forget_tokens()
            self._learn(token_set - self._seen)

    def _stems_of(self, token_set: set[str]) -> set[str]:
        self._learn_new(token_set)
        return set().union(*map(self._stems_by_token.__getitem__, token_set & self._stem_tokens))

    def match_many(self, posts: Iterable[MatchablePost]) -> list[list[QueryId]]:
        return [self.match(post) for post in posts]


def match_query(query: Query, post: MatchablePost) -> bool:
    """Whether one query matches one post, by the reference semantics."""
    return evaluate(query.root, tokenize_post(post))
