"""Match posts against many listening queries at firehose speed.

A post is cut into tokens by the query language's own tokenizer and written as " tok1 tok2 … ",
one space before, between and after every token (`query.token_text`). Every term of every query
is one key of a single Aho-Corasick automaton (pyahocorasick, in C): a word, hashtag or handle is
" tok ", a phrase " tok1 tok2 ", a wildcard " stem" (a token starting with the stem). Tokens hold
no spaces, so a key occurs in that text exactly where its term is present: one pass finds every
term of every query the post holds, with no boundary check and no phrase to confirm. Each query
is filed under anchors, terms of which every post it matches holds one (or its from: author);
only the queries filed under a term found are evaluated, as closures over the set of terms found.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Generic, TypeVar

import ahocorasick

from relais.listening.query import (
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
    token_text,
    tokenize,
)

QueryId = TypeVar("QueryId", bound=Hashable)


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

# A compiled query reads the ids of the terms the post holds, and the post for its filters.
_Predicate = Callable[[set[int], MatchablePost], bool]


def _term_key(node: Node) -> str | None:
    """The automaton key of a term: where it occurs in a post's " tok1 tok2 … " text."""
    match node:
        case Word(text):
            return f" {text} "
        case Hashtag(tag):
            return f" #{tag} "
        case Mention(handle):
            return f" @{handle} "
        case Phrase(tokens):
            return f" {' '.join(tokens)} "
        case Prefix(stem):
            return f" {stem}"
    return None


def _network_key(network: str | None) -> str:
    return (network or "").lower()


class _Compiler:
    """Gives every distinct term of every query one id, and compiles queries over those ids."""

    def __init__(self) -> None:
        self.term_ids: dict[str, int] = {}

    def term_id(self, key: str) -> int:
        return self.term_ids.setdefault(key, len(self.term_ids))

    def compile(self, node: Node) -> _Predicate:  # noqa: PLR0911 - one return per node kind
        match node:
            case LangFilter(code):
                return lambda found, post: _primary_language(post.lang) == code
            case NetworkFilter(network):
                return lambda found, post: _network_key(post.network) == network
            case AuthorFilter(handle):
                return lambda found, post: _author_key(post.author_handle) == handle
            case Not(operand):
                inner = self.compile(operand)
                return lambda found, post: not inner(found, post)
            case And(operands):
                return self._all_of(operands)
            case Or(operands):
                return self._any_of(operands)
        key = _term_key(node)
        if key is None:
            raise TypeError(f"not a query node: {node!r}")
        term = self.term_id(key)
        return lambda found, post: term in found

    def _split(self, operands: tuple[Node, ...], nested: type[And | Or]) -> _Parts:
        """Sort operands into what set operations in C can check and what needs a call.

        Terms and negated terms become sets of ids; so does each `nested` operand made of terms
        only (an OR of terms inside an AND, an AND of terms inside an OR): the common query
        shapes then cost one call. Filters come before subtrees, being cheaper.
        """
        parts = _Parts()
        others = []
        for operand in operands:
            if (key := _term_key(operand)) is not None:
                parts.terms.add(self.term_id(key))
            elif isinstance(operand, Not) and (key := _term_key(operand.operand)) is not None:
                parts.negated.add(self.term_id(key))
            elif isinstance(operand, nested) and (group := self._term_group(operand)):
                parts.groups.append(group)
            else:
                others.append(operand)
        others.sort(key=lambda node: isinstance(node, And | Or | Not))
        parts.predicates = [self.compile(operand) for operand in others]
        return parts

    def _term_group(self, node: And | Or) -> frozenset[int] | None:
        keys = [_term_key(operand) for operand in node.operands]
        if None in keys:
            return None
        return frozenset(self.term_id(key) for key in keys if key is not None)

    # Plain loops rather than all()/any() over a generator: this is the hot path, and a generator
    # costs more than the two or three predicates it would iterate.
    def _all_of(self, operands: tuple[Node, ...]) -> _Predicate:
        parts = self._split(operands, Or)
        required, excluded = frozenset(parts.terms), frozenset(parts.negated)
        one_of_each, predicates = parts.groups, parts.predicates

        def check_all(found: set[int], post: MatchablePost) -> bool:
            if not found.issuperset(required) or (excluded and not found.isdisjoint(excluded)):
                return False
            for one_of in one_of_each:
                if found.isdisjoint(one_of):
                    return False
            for predicate in predicates:  # noqa: SIM110 - see above
                if not predicate(found, post):
                    return False
            return True

        return check_all

    def _any_of(self, operands: tuple[Node, ...]) -> _Predicate:
        parts = self._split(operands, And)
        sufficient, absent_suffices = frozenset(parts.terms), frozenset(parts.negated)
        all_of_any, predicates = parts.groups, parts.predicates

        def check_any(found: set[int], post: MatchablePost) -> bool:
            if not found.isdisjoint(sufficient):
                return True
            if absent_suffices and not found.issuperset(absent_suffices):
                return True
            for all_of in all_of_any:
                if found.issuperset(all_of):
                    return True
            for predicate in predicates:  # noqa: SIM110 - see above
                if predicate(found, post):
                    return True
            return False

        return check_any


@dataclass
class _Parts:
    """The operands of an AND or OR, sorted by how they are checked (see `_Compiler._split`)."""

    terms: set[int] = field(default_factory=set)
    negated: set[int] = field(default_factory=set)
    groups: list[frozenset[int]] = field(default_factory=list)
    predicates: list[_Predicate] = field(default_factory=list)


# An anchor is ("term", automaton key) or ("author", handle).
_Anchor = tuple[str, str]


def _anchors(node: Node) -> frozenset[_Anchor] | None:
    """Positive terms of which every matching post holds at least one; None if there are none."""
    match node:
        case AuthorFilter(handle):
            return frozenset({("author", handle)})
        case And(operands):
            choices = [anchors for op in operands if (anchors := _anchors(op)) is not None]
            return min(choices, key=_anchor_cost, default=None)
        case Or(operands):
            branches = [_anchors(operand) for operand in operands]
            if any(branch is None for branch in branches):
                return None
            return frozenset().union(*(branch for branch in branches if branch is not None))
    key = _term_key(node)
    return None if key is None else frozenset({("term", key)})


def _anchor_cost(anchors: frozenset[_Anchor]) -> int:
    """Fewer anchors select fewer posts; a phrase fewer than a word, a long word fewer than a
    short one, and a wildcard stem (an open-ended set of tokens) the most."""
    return sum(_one_anchor_cost(*anchor) for anchor in anchors)


def _one_anchor_cost(kind: str, key: str) -> int:
    if kind == "author":
        return 4
    if key[-1] != " ":
        return 12  # a wildcard stem
    if key.count(" ") > 2:
        return 1  # a phrase
    return 4 if len(key) > 6 else 6


# ---------------------------------------------------------------------------------------------
# Matcher

# The automaton yields (end index, value) for each key found; the value is the term's id.
_term_of_hit = operator.itemgetter(1)


class Matcher(Generic[QueryId]):
    """Queries compiled into one automaton; `match` returns ids in the order queries were given."""

    def __init__(self, queries: Iterable[tuple[QueryId, Query]]) -> None:
        compiler = _Compiler()
        self._query_ids: list[QueryId] = []
        self._predicates: list[_Predicate] = []
        filed: dict[str, list[int]] = {}
        self._by_author: dict[str, list[int]] = {}
        for query_id, query in queries:
            anchors = _anchors(query.root)
            if anchors is None:
                raise ValueError(f"query {query_id!r} has no positive term to index it by")
            index = len(self._query_ids)
            self._query_ids.append(query_id)
            self._predicates.append(compiler.compile(query.root))
            for kind, key in anchors:
                (filed if kind == "term" else self._by_author).setdefault(key, []).append(index)
        # Indexed by term id: the queries filed under the term (most terms file none).
        self._queries_by_term: list[tuple[int, ...]] = [
            tuple(filed.get(key, ())) for key in compiler.term_ids
        ]
        automaton = ahocorasick.Automaton()
        for key, term in compiler.term_ids.items():
            automaton.add_word(key, term)
        automaton.make_automaton()
        # Yields (end index, term id) for each key found in a text. An automaton needs one key
        # at least: with only from: queries, no term is ever found.
        self._search: Callable[[str], Iterable[tuple[int, int]]] = (
            automaton.iter if compiler.term_ids else lambda text: ()
        )

    def match(self, post: MatchablePost) -> list[QueryId]:
        return self.match_many((post,))[0]

    def match_many(self, posts: Iterable[MatchablePost]) -> list[list[QueryId]]:
        # One loop over the batch with everything it reads held in locals: per post, attribute
        # look-ups and method calls are a measurable share of the 10 µs budget.
        search, by_author = self._search, self._by_author
        filed_under = self._queries_by_term.__getitem__
        predicates, query_ids = self._predicates, self._query_ids
        results: list[list[QueryId]] = []
        for post in posts:
            found = set(map(_term_of_hit, search(token_text(post.text))))
            candidates = set(chain.from_iterable(map(filed_under, found)))
            if by_author:
                candidates.update(by_author.get(_author_key(post.author_handle), ()))
            if not candidates:
                results.append([])
            elif len(candidates) == 1:
                [index] = candidates
                results.append([query_ids[index]] if predicates[index](found, post) else [])
            else:
                results.append(
                    [query_ids[i] for i in sorted(candidates) if predicates[i](found, post)]
                )
        return results


def match_query(query: Query, post: MatchablePost) -> bool:
    """Whether one query matches one post, by the reference semantics."""
    return evaluate(query.root, tokenize_post(post))
