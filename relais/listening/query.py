"""Listening queries: a small boolean language over words, phrases, hashtags and handles.

Grammar (NOT binds tighter than AND, AND tighter than OR; juxtaposition means AND)::

    query    := or_expr END
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*
    unary    := "NOT" unary | primary
    primary  := "(" or_expr ")" | term | filter
    term     := word | '"' text '"' | #hashtag | @handle | stem*
    filter   := lang:CODE | network:NAME | from:@handle

Operators are upper case; lower-case "and", "or", "not" are ordinary words. An unquoted term means
the same as the quoted one: both are cut into tokens by `tokenize`, the very function that cuts
posts, so `wi-fi` is the phrase "wi fi" and `#airfrance` matches exactly the posts whose text yields
that hashtag token. Matching is therefore case-insensitive and accent-insensitive by construction.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum, auto
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise

MIN_STEM_LENGTH = 3
MAX_QUERY_LENGTH = 10_000
MAX_NESTING = 50
KNOWN_NETWORKS = frozenset(
    {"archive", "bluesky", "facebook", "instagram", "linkedin", "mastodon", "rss", "sandbox", "x"}
)

# One token pattern for posts and queries alike. Words are tried first because they are most tokens;
# the look-behind keeps e-mail addresses and "C#" from producing handles or hashtags; handles may
# carry dots and hyphens (alice.bsky.social).
_LEXICAL_RULE = r"\w+|(?<!\w)(?:#\w+|@\w+(?:[.\-]\w+)*)"
_TOKEN_PATTERN = re.compile(_LEXICAL_RULE)
# The same pattern restricted to ASCII is the same tokenizer on ASCII text, only faster.
_ASCII_TOKEN_PATTERN = re.compile(_LEXICAL_RULE, re.ASCII)
# And on lower-case ASCII text, where a word character is [a-z0-9_]: an explicit class, and
# possessive repeats (nothing follows them that could make giving characters back succeed), save
# the regular expression engine work on every incoming post.
_LOWER_ASCII_TOKEN_PATTERN = re.compile(
    r"[a-z0-9_]++|(?<![a-z0-9_])(?:#[a-z0-9_]++|@[a-z0-9_]++(?:[.\-][a-z0-9_]++)*+)"
)


@functools.cache
def _ignorable_characters() -> dict[int, None]:
    """Combining marks (accents once NFKD splits them off) and invisible format characters.

    Format characters (zero-width spaces and joiners, bidi overrides, soft hyphens) are dropped
    rather than treated as separators so that "can\u200bcel" cannot slip past a query for "cancel".
    Built on the first non-ASCII text from the Unicode database, not from any user input; a
    translation table beats a character class of two thousand code points by a wide margin.
    """
    return {
        code_point: None
        for code_point in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code_point)) in {"Mn", "Me", "Cf"}
    }


def normalize(text: str) -> str:
    """Fold case, accents and compatibility forms: "Élan", "élan" and "ÉLAN" compare equal."""
    if text.isascii():
        return text.lower()
    # NFKD before casefold splits accents off; NFKD after re-splits what casefold composed (İ -> i̇).
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return folded.translate(_ignorable_characters())


def tokenize(text: str) -> list[str]:
    """Cut text into normalized tokens: words, "#hashtag" and "@handle" (sigils kept)."""
    if text.isascii():  # the common case, tested first: this runs once per incoming post
        return _LOWER_ASCII_TOKEN_PATTERN.findall(text.lower())
    normalized = normalize(text)
    pattern = _ASCII_TOKEN_PATTERN if normalized.isascii() else _TOKEN_PATTERN
    return pattern.findall(normalized)


# ASCII text in which every "#" and "@" follows a non-word character and precedes a word character,
# and no handle goes on with a dot or hyphen, cuts into exactly its runs of [A-Za-z0-9_#@]: a sigil
# can then only open a run, a run opened by one is a whole hashtag or handle, and every other
# character separates tokens. This finds the texts where that does not hold.
_SIGIL_EXCEPTION = re.compile(
    r"[#@](?:(?<=[A-Za-z0-9_][#@])|(?![A-Za-z0-9_])|(?<=@)[A-Za-z0-9_]++[.\-][A-Za-z0-9_])"
)
# Lower-cases ASCII letters and turns every other byte that is not [a-z0-9_#@] into a space.
_RUNS_TABLE = bytes(
    byte if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) in "_#@") else ord(" ")
    for byte in range(256)
).lower()


def token_text(text: str) -> str:
    """The text's tokens joined by single spaces, with a space before and after: " tok1 tok2 ".

    The same as joining `tokenize(text)`, which it falls back to, but most posts are plain ASCII
    whose tokens are its runs of word characters and sigils (see above): splitting bytes costs a
    third of running the token pattern, and this runs once per incoming post.
    """
    if text.isascii() and _SIGIL_EXCEPTION.search(text) is None:
        return f" {b' '.join(text.encode().translate(_RUNS_TABLE).split()).decode()} "
    return f" {' '.join(tokenize(text))} "


# ---------------------------------------------------------------------------------------------
# Syntax tree


@dataclass(frozen=True, slots=True)
class Word:
    text: str


@dataclass(frozen=True, slots=True)
class Phrase:
    """Two or more consecutive tokens; tokens may be hashtags or handles ("love #airfrance")."""

    tokens: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hashtag:
    tag: str  # without the "#"


@dataclass(frozen=True, slots=True)
class Mention:
    handle: str  # without the "@"


@dataclass(frozen=True, slots=True)
class Prefix:
    stem: str  # cancel* has stem "cancel"


@dataclass(frozen=True, slots=True)
class LangFilter:
    code: str


@dataclass(frozen=True, slots=True)
class NetworkFilter:
    network: str


@dataclass(frozen=True, slots=True)
class AuthorFilter:
    handle: str  # without the "@"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Term = Word | Phrase | Hashtag | Mention | Prefix
Filter = LangFilter | NetworkFilter | AuthorFilter
Node = Term | Filter | Not | And | Or


@dataclass(frozen=True, slots=True)
class Query:
    root: Node


class QuerySyntaxError(ValueError):
    """A query that cannot be parsed; `position` is the 0-based index of the mistake in the text.

    The message is translated when it is read, into the language active then (the reader's),
    not when the query is parsed; the parts taken from the query are inserted untranslated.
    """

    def __init__(self, template: _StrOrPromise, position: int, **params: str | int) -> None:
        super().__init__(template, position)
        self.template = template  # a lazy translation with named placeholders
        self.params = params
        self.position = position

    @property
    def message(self) -> str:
        return str(self.template) % self.params

    def __str__(self) -> str:
        return _("%(message)s (at position %(position)d)") % {
            "message": self.message,
            "position": self.position,
        }


# ---------------------------------------------------------------------------------------------
# Lexer


class _Kind(Enum):
    OPEN = auto()
    CLOSE = auto()
    AND = auto()
    OR = auto()
    NOT = auto()
    OPERAND = auto()
    END = auto()


_OPERATORS = {"AND": _Kind.AND, "OR": _Kind.OR, "NOT": _Kind.NOT}
_BARE_STOPS = frozenset('()"')


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: _Kind
    position: int
    text: str
    node: Node | None = None


def _lex(source: str) -> Iterator[_Lexeme]:
    """Yield lexemes lazily so that the leftmost mistake is the one reported."""
    index = 0
    while index < len(source):
        char = source[index]
        if char.isspace():
            index += 1
        elif char in "()":
            yield _Lexeme(_Kind.OPEN if char == "(" else _Kind.CLOSE, index, char)
            index += 1
        elif char == '"':
            end = source.find('"', index + 1)
            if end < 0:
                raise QuerySyntaxError(_("this quote is never closed"), index)
            text = source[index + 1 : end]
            yield _Lexeme(_Kind.OPERAND, index, text, _quoted_term(text, index))
            index = end + 1
        else:
            end = index
            while (
                end < len(source) and not source[end].isspace() and source[end] not in _BARE_STOPS
            ):
                end += 1
            yield _bare_lexeme(source[index:end], index)
            index = end
    yield _Lexeme(_Kind.END, len(source), "")


def _bare_lexeme(text: str, position: int) -> _Lexeme:
    if text in _OPERATORS:
        return _Lexeme(_OPERATORS[text], position, text)
    return _Lexeme(_Kind.OPERAND, position, text, _bare_operand(text, position))


def _bare_operand(text: str, position: int) -> Node:
    name, colon, value = text.partition(":")
    if colon and name.isascii() and name.isalpha():
        return _filter(name.lower(), value, position)
    if text.endswith("*"):
        return _prefix(text, position)
    if "*" in text:
        raise QuerySyntaxError(
            _("'*' is only allowed at the end of a word"), position + text.index("*")
        )
    if len(text) > 1 and text[0] == "-" and text[1] != "-":
        # A search-engine habit; taken as a word it would silently include what was meant excluded.
        raise QuerySyntaxError(_("to exclude a term, write NOT %(term)s"), position, term=text[1:])
    return _term_from_text(text, position)


def _quoted_term(text: str, position: int) -> Node:
    if not text.strip():
        raise QuerySyntaxError(_("the quotes contain nothing to search for"), position)
    return _term_from_text(text, position)


def _term_from_text(text: str, position: int) -> Node:
    tokens = tokenize(text)
    if not tokens:
        raise QuerySyntaxError(
            _("'%(text)s' has no letters or digits to search for"), position, text=text
        )
    if len(tokens) > 1:
        return Phrase(tuple(tokens))
    return _atom(tokens[0])


def _atom(token: str) -> Word | Hashtag | Mention:
    if token[0] == "#":
        return Hashtag(token[1:])
    if token[0] == "@":
        return Mention(token[1:])
    return Word(token)


def _prefix(text: str, position: int) -> Prefix:
    stem = text[:-1]
    if not stem:
        raise QuerySyntaxError(
            _("'*' must follow the beginning of a word, as in cancel*"), position
        )
    if "*" in stem:
        raise QuerySyntaxError(
            _("'*' is only allowed at the end of a word"), position + stem.index("*")
        )
    tokens = tokenize(stem)
    if len(tokens) != 1 or tokens[0][0] in "#@":
        raise QuerySyntaxError(_("'*' can only end a single plain word, as in cancel*"), position)
    if len(tokens[0]) < MIN_STEM_LENGTH:
        raise QuerySyntaxError(
            _("a word ending in '*' needs at least %(count)d letters before the '*'"),
            position,
            count=MIN_STEM_LENGTH,
        )
    return Prefix(tokens[0])


def _filter(name: str, value: str, position: int) -> Node:
    value_position = position + len(name) + 1
    if name not in {"lang", "network", "from"}:
        raise QuerySyntaxError(
            _(
                "unknown filter '%(name)s:' (known filters: lang:, network:, from:);"
                " put text in quotes to search for it"
            ),
            position,
            name=name,
        )
    if not value:
        raise QuerySyntaxError(
            _("'%(name)s:' must be followed by a value"), value_position, name=name
        )
    if name == "lang":
        return _lang_filter(value, value_position)
    if name == "network":
        return _network_filter(value, value_position)
    return _author_filter(value, value_position)


def _lang_filter(value: str, position: int) -> LangFilter:
    code = value.lower()
    if not (code.isascii() and code.isalpha() and 2 <= len(code) <= 3):
        raise QuerySyntaxError(_("a language is a 2- or 3-letter code, as in lang:fr"), position)
    return LangFilter(code)


def _network_filter(value: str, position: int) -> NetworkFilter:
    network = value.lower()
    if network not in KNOWN_NETWORKS:
        known = ", ".join(sorted(KNOWN_NETWORKS))
        raise QuerySyntaxError(
            _("unknown network '%(network)s' (known networks: %(known)s)"),
            position,
            network=value,
            known=known,
        )
    return NetworkFilter(network)


def _author_filter(value: str, position: int) -> AuthorFilter:
    handle = value if value.startswith("@") else "@" + value
    tokens = tokenize(handle)
    if tokens != [normalize(handle)]:
        raise QuerySyntaxError(
            _("'from:' must be followed by a handle, as in from:@airfrance"), position
        )
    return AuthorFilter(tokens[0][1:])


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
    """Recursive descent over the lazy lexeme stream, one lexeme of look-ahead."""

    def __init__(self, source: str) -> None:
        self._lexemes = _lex(source)
        self._previous: _Lexeme | None = None
        self._current = next(self._lexemes)
        self._depth = 0
        # Start of each node in the source, keyed by identity, to point at a too-broad part.
        self.positions: dict[int, int] = {}

    def parse(self) -> Node:
        root = self._or_expression()
        if self._current.kind is _Kind.CLOSE:
            raise QuerySyntaxError(_("this ')' has no matching '('"), self._current.position)
        return root

    def _advance(self) -> _Lexeme:
        self._previous, self._current = self._current, next(self._lexemes)
        return self._previous

    def _located(self, node: Node, position: int) -> Node:
        self.positions.setdefault(id(node), position)
        return node

    def _or_expression(self) -> Node:
        start = self._current.position
        operands = [self._and_expression()]
        while self._current.kind is _Kind.OR:
            self._advance()
            operands.append(self._and_expression())
        return self._located(operands[0] if len(operands) == 1 else Or(tuple(operands)), start)

    def _and_expression(self) -> Node:
        start = self._current.position
        operands = [self._unary()]
        while self._current.kind in {_Kind.AND, _Kind.OPERAND, _Kind.OPEN, _Kind.NOT}:
            if self._current.kind is _Kind.AND:
                self._advance()
            operands.append(self._unary())
        return self._located(operands[0] if len(operands) == 1 else And(tuple(operands)), start)

    def _unary(self) -> Node:
        if self._current.kind is not _Kind.NOT:
            return self._primary()
        operator = self._advance()
        self._enter(operator)
        operand = self._unary()
        self._depth -= 1
        return self._located(Not(operand), operator.position)

    def _primary(self) -> Node:
        if self._current.kind is _Kind.OPERAND:
            lexeme = self._advance()
            assert lexeme.node is not None
            return self._located(lexeme.node, lexeme.position)
        if self._current.kind is _Kind.OPEN:
            return self._group()
        raise self._missing_operand()

    def _group(self) -> Node:
        opening = self._advance()
        self._enter(opening)
        inner = self._or_expression()
        if self._current.kind is not _Kind.CLOSE:
            raise QuerySyntaxError(_("this '(' is never closed"), opening.position)
        self._advance()
        self._depth -= 1
        self.positions[id(inner)] = opening.position  # a group starts at its parenthesis
        return inner

    def _enter(self, lexeme: _Lexeme) -> None:
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise QuerySyntaxError(
                _("more than %(count)d levels of nesting"), lexeme.position, count=MAX_NESTING
            )

    def _missing_operand(self) -> QuerySyntaxError:
        """Explain why a term was expected but not found, pointing at the culprit."""
        current, previous = self._current, self._previous
        if previous is None and current.kind is _Kind.END:
            return QuerySyntaxError(_("the query is empty"), 0)
        if previous is not None and previous.kind in {_Kind.AND, _Kind.OR, _Kind.NOT}:
            return _dangling_operator(previous, current)
        if previous is not None and previous.kind is _Kind.OPEN:
            if current.kind is _Kind.CLOSE:
                return QuerySyntaxError(_("the parentheses are empty"), previous.position)
            if current.kind is _Kind.END:
                return QuerySyntaxError(_("this '(' is never closed"), previous.position)
        if current.kind is _Kind.CLOSE:
            return QuerySyntaxError(_("this ')' has no matching '('"), current.position)
        return QuerySyntaxError(
            _("'%(operator)s' needs a term on its left"), current.position, operator=current.text
        )


def _dangling_operator(operator: _Lexeme, found: _Lexeme) -> QuerySyntaxError:
    if found.kind is _Kind.END:
        return QuerySyntaxError(
            _("'%(operator)s' must be followed by a term, found nothing"),
            operator.position,
            operator=operator.text,
        )
    return QuerySyntaxError(
        _("'%(operator)s' must be followed by a term, found '%(found)s'"),
        operator.position,
        operator=operator.text,
        found=found.text,
    )


def is_anchored(node: Node) -> bool:
    """True when every post the node matches must contain a positive term or come from an author.

    Unanchored queries (NOT-only, language-only) would match a large share of the firehose.
    """
    match node:
        case Not() | LangFilter() | NetworkFilter():
            return False
        case And(operands):
            return any(is_anchored(operand) for operand in operands)
        case Or(operands):
            return all(is_anchored(operand) for operand in operands)
        case _:
            return True


def _too_broad_part(node: Node) -> Node:
    """The outermost part that makes an unanchored node unanchored, to point the user at it."""
    if isinstance(node, Or):
        return _too_broad_part(next(op for op in node.operands if not is_anchored(op)))
    return node


def parse_query(text: str) -> Query:
    """Parse a listening query, or raise QuerySyntaxError pointing at the mistake."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            _("the query is longer than %(count)d characters"),
            MAX_QUERY_LENGTH,
            count=MAX_QUERY_LENGTH,
        )
    parser = _Parser(text)
    root = parser.parse()
    if not is_anchored(root):
        raise QuerySyntaxError(
            _(
                "this would match almost every post: add a word, phrase, hashtag, handle or"
                " from: filter that is not negated"
            ),
            parser.positions[id(_too_broad_part(root))],
        )
    return Query(root)


# ---------------------------------------------------------------------------------------------
# Canonical text


def to_text(query: Query) -> str:
    """Canonical text: normalized terms, explicit AND, parentheses wherever operands nest."""
    return _node_text(query.root)


def _node_text(node: Node) -> str:  # noqa: PLR0911 - one return per node kind reads best
    match node:
        case Word(text):
            return text
        case Phrase(tokens):
            return '"' + " ".join(tokens) + '"'
        case Hashtag(tag):
            return "#" + tag
        case Mention(handle):
            return "@" + handle
        case Prefix(stem):
            return stem + "*"
        case LangFilter(code):
            return "lang:" + code
        case NetworkFilter(network):
            return "network:" + network
        case AuthorFilter(handle):
            return "from:@" + handle
        case Not(operand):
            return "NOT " + _grouped(operand)
        case And(operands):
            return " AND ".join(_grouped(operand) for operand in operands)
        case Or(operands):
            return " OR ".join(_grouped(operand) for operand in operands)
    raise TypeError(f"not a query node: {node!r}")


def _grouped(node: Node) -> str:
    text = _node_text(node)
    return f"({text})" if isinstance(node, And | Or) else text
