"""Listening query language: syntax, errors with positions, canonical text, shared tokenizer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relais.listening import query
from relais.listening.query import (
    MAX_NESTING,
    MAX_QUERY_LENGTH,
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
    QuerySyntaxError,
    Word,
    is_anchored,
    normalize,
    parse_query,
    to_text,
    token_text,
    tokenize,
)

# --- tokenizer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Vol ANNULÉ par Air France!", ["vol", "annule", "par", "air", "france"]),
        ("#AirFrance @AirFrance_FR merci", ["#airfrance", "@airfrance_fr", "merci"]),
        ("mail me at jo@example.com", ["mail", "me", "at", "jo", "example", "com"]),
        ("C# and F#", ["c", "and", "f"]),
        ("cc @alice.bsky.social.", ["cc", "@alice.bsky.social"]),
        ("wi-fi 10:30", ["wi", "fi", "10", "30"]),
        ("can\u200bcel", ["cancel"]),
        ("\u202eecnarf ria", ["ecnarf", "ria"]),
        ("\uff21\uff29\uff32 \ufb01nance", ["air", "finance"]),  # full-width, ligature
        ("Straße", ["strasse"]),
        ("😡" * 5000, []),
        ("\ud800 lone \udfff surrogates", ["lone", "surrogates"]),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_tokenize_long_hostile_text() -> None:
    text = ("x\u200d😀\u202e#tag @h " * 2000)[:20_000]
    assert len(tokenize(text)) > 1000


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(st.text())
def test_tokens_retokenize_to_themselves(text: str) -> None:
    for token in tokenize(text):
        assert tokenize(token) == [token]


# Texts made of what the tokenizer's special cases are about: sigils before, after and between
# words, handles going on with dots and hyphens, e-mail addresses, case, every kind of separator.
ascii_pieces = st.sampled_from(
    [
        "Air",
        "fr",
        "_",
        "42",
        "#",
        "@",
        ".",
        "-",
        "#a",
        "@b",
        "@c.d",
        "@e-",
        "x@y.z",
        "C#",
        " ",
        "\t",
    ]
)
ascii_texts = st.one_of(
    st.lists(st.one_of(ascii_pieces, st.characters(max_codepoint=127)), max_size=20).map("".join),
    st.text(),
)


@settings(max_examples=500)
@given(ascii_texts)
def test_token_text_is_the_tokens_joined(text: str) -> None:
    assert token_text(text) == f" {' '.join(tokenize(text))} "


@settings(max_examples=500)
@given(ascii_texts.filter(str.isascii))
def test_lower_case_ascii_pattern_is_the_word_pattern(text: str) -> None:
    lowered = text.lower()
    assert query._LOWER_ASCII_TOKEN_PATTERN.findall(lowered) == query._ASCII_TOKEN_PATTERN.findall(
        lowered
    )


# --- syntax ----------------------------------------------------------------------------------

FRANCE = Phrase(("air", "france"))


@pytest.mark.parametrize(
    ("text", "root"),
    [
        ("airfrance", Word("airfrance")),
        ("AirFrance", Word("airfrance")),
        ("Élan", Word("elan")),
        ('"Air  France"', FRANCE),
        ('"airfrance"', Word("airfrance")),
        ("wi-fi", Phrase(("wi", "fi"))),
        ('"love #AirFrance"', Phrase(("love", "#airfrance"))),
        ("#AirFrance", Hashtag("airfrance")),
        ("@AirFrance", Mention("airfrance")),
        ("@alice.bsky.social", Mention("alice.bsky.social")),
        ("cancel*", Prefix("cancel")),
        ("Annul*", Prefix("annul")),
        ("a b", And((Word("a"), Word("b")))),
        ("a AND b", And((Word("a"), Word("b")))),
        ("a and b", And((Word("a"), Word("and"), Word("b")))),
        ("a OR b", Or((Word("a"), Word("b")))),
        ("a b OR c", Or((And((Word("a"), Word("b"))), Word("c")))),
        ("a (b OR c)", And((Word("a"), Or((Word("b"), Word("c")))))),
        ("a NOT b", And((Word("a"), Not(Word("b"))))),
        ("a AND NOT NOT b", And((Word("a"), Not(Not(Word("b")))))),
        ("((a))", Word("a")),
        ("a lang:FR", And((Word("a"), LangFilter("fr")))),
        ("a network:Bluesky", And((Word("a"), NetworkFilter("bluesky")))),
        ("from:@AirFrance", AuthorFilter("airfrance")),
        ("from:airfrance", AuthorFilter("airfrance")),
        ("a lang:fr OR lang:en", Or((And((Word("a"), LangFilter("fr"))), LangFilter("en")))),
        (
            '("air france" OR #airfrance) AND NOT job* lang:fr',
            And((Or((FRANCE, Hashtag("airfrance"))), Not(Prefix("job")), LangFilter("fr"))),
        ),
    ],
)
def test_parse(text: str, root: Node) -> None:
    if not is_anchored(root):
        with pytest.raises(QuerySyntaxError):
            parse_query(text)
        return
    assert parse_query(text) == Query(root)


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "the query is empty", 0),
        ("   ", "the query is empty", 0),
        ("(air france", "'(' is never closed", 0),
        ("a (b", "'(' is never closed", 2),
        ("air france)", "')' has no matching '('", 10),
        (")", "')' has no matching '('", 0),
        ("()", "parentheses are empty", 0),
        ("air AND", "'AND' must be followed by a term, found nothing", 4),
        ("air OR", "'OR' must be followed by a term", 4),
        ("air NOT", "'NOT' must be followed by a term", 4),
        ("air AND OR b", "'AND' must be followed by a term, found 'OR'", 4),
        ("(a OR) b", "'OR' must be followed by a term, found ')'", 3),
        ("OR air", "'OR' needs a term on its left", 0),
        ("(AND a)", "'AND' needs a term on its left", 1),
        ("NOT job*", "would match almost every post", 0),
        ("NOT a NOT b", "would match almost every post", 0),
        ("lang:fr", "would match almost every post", 0),
        ("air OR NOT job", "would match almost every post", 7),
        ("air OR (lang:fr network:x)", "would match almost every post", 7),
        ("air foo:bar", "unknown filter 'foo:'", 4),
        ("https://example.com", "unknown filter 'https:'", 0),
        ("air lang:", "'lang:' must be followed by a value", 9),
        ("air lang:french", "2- or 3-letter code", 9),
        ("air network:blusky", "unknown network 'blusky'", 12),
        ("from:@", "'from:' must be followed by a handle", 5),
        ("from:@a b", None, None),
        ("from:#tag", "'from:' must be followed by a handle", 5),
        ("air *", "'*' must follow the beginning of a word", 4),
        ("air ca*", "at least 3 letters before the '*'", 4),
        ("air c*t", "'*' is only allowed at the end of a word", 5),
        ("air ca**", "'*' is only allowed at the end of a word", 6),
        ("air #cancel*", "can only end a single plain word", 4),
        ("air wi-fi*", "can only end a single plain word", 4),
        ('air "france', "quote is never closed", 4),
        ('air ""', "quotes contain nothing", 4),
        ("air !!!", "'!!!' has no letters or digits", 4),
        ("air -job", "to exclude a term, write NOT job", 4),
        ("(" * (MAX_NESTING + 1) + "a" + ")" * (MAX_NESTING + 1), "levels of nesting", MAX_NESTING),
        ("a " + "NOT " * (MAX_NESTING + 1) + "b", "levels of nesting", 2 + 4 * MAX_NESTING),
        ("a" * (MAX_QUERY_LENGTH + 1), "longer than", MAX_QUERY_LENGTH),
    ],
)
def test_syntax_errors(text: str, message: str | None, position: int | None) -> None:
    if message is None:  # a valid neighbour of the error cases, to show where the line is
        parse_query(text)
        return
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(text)
    assert message in raised.value.message
    assert raised.value.position == position
    assert f"position {position}" in str(raised.value)


def test_leftmost_mistake_is_reported() -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query('a) "unterminated')
    assert raised.value.position == 1


# --- canonical text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (
            '("Air France" OR #AirFrance) AND NOT job* lang:FR',
            '("air france" OR #airfrance) AND NOT job* AND lang:fr',
        ),
        ("a b OR c", "(a AND b) OR c"),
        ("(a OR b) OR c", "(a OR b) OR c"),
        ("a NOT (b OR c)", "a AND NOT (b OR c)"),
        ("from:AirFrance wi-fi", 'from:@airfrance AND "wi fi"'),
    ],
)
def test_to_text(text: str, canonical: str) -> None:
    assert to_text(parse_query(text)) == canonical
    assert parse_query(canonical) == parse_query(text)


def _is_plain_word(token: str) -> bool:
    return tokenize(token) == [token] and token[0] not in "#@"


plain_words = st.one_of(
    st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True),
    st.text(st.characters(categories=("L", "Nd")), min_size=1, max_size=6).map(normalize),
).filter(_is_plain_word)
stems = plain_words.filter(lambda word: len(word) >= 3)
handles = st.from_regex(r"[a-z0-9_]{1,10}(\.[a-z0-9]{1,6}){0,2}", fullmatch=True)
phrase_tokens = st.one_of(plain_words, plain_words.map("#".__add__), handles.map("@".__add__))

leaves: st.SearchStrategy[Node] = st.one_of(
    plain_words.map(Word),
    st.lists(phrase_tokens, min_size=2, max_size=3).map(lambda tokens: Phrase(tuple(tokens))),
    plain_words.map(Hashtag),
    handles.map(Mention),
    stems.map(Prefix),
    st.sampled_from(["en", "fr", "deu"]).map(LangFilter),
    st.sampled_from(["bluesky", "mastodon", "x"]).map(NetworkFilter),
    handles.map(AuthorFilter),
)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    operands = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(children.map(Not), operands.map(And), operands.map(Or))


query_trees: st.SearchStrategy[Node] = st.recursive(leaves, _extend, max_leaves=10)


def anchored(root: Node) -> Node:
    """Give a too-broad generated tree the positive term the parser insists on."""
    return root if is_anchored(root) else And((Word("brand"), root))


@given(query_trees.map(anchored))
def test_generated_trees_round_trip_through_text(root: Node) -> None:
    assert parse_query(to_text(Query(root))) == Query(root)


query_alphabet = st.sampled_from(
    [*list('()"*:#@-._ \t\u200bÉé😀'), "AND", "OR", "NOT", "lang:", "from:", "network:", "air"]
)


@settings(max_examples=300)
@given(st.one_of(st.text(), st.lists(query_alphabet, max_size=25).map("".join)))
def test_parser_raises_only_syntax_errors(text: str) -> None:
    try:
        query = parse_query(text)
    except QuerySyntaxError as error:
        position = error.position
    else:
        assert parse_query(to_text(query)) == query
        return
    assert 0 <= position <= len(text)
