"""Matching semantics on real-looking posts, and the indexed Matcher against the reference."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relais.listening.matcher import MatchablePost, Matcher, match_query
from relais.listening.query import And, Not, Query, QuerySyntaxError, Word, parse_query, to_text
from relais.listening.tests.test_query import anchored, query_trees


def post(
    text: str, lang: str = "fr", network: str = "bluesky", author: str = "voyageur"
) -> MatchablePost:
    return MatchablePost(text=text, lang=lang, network=network, author_handle=author)


EXAMPLE = '("air france" OR #airfrance) AND NOT job* lang:fr'

SEMANTICS = [
    (EXAMPLE, post("Encore 3h de retard avec Air France à CDG..."), True),
    (EXAMPLE, post("Merci #AirFrance pour l'accueil 🙏"), True),
    (EXAMPLE, post("AIR-FRANCE m'a perdu ma valise"), True),
    (EXAMPLE, post("Air France recrute : jobs à Roissy"), False),
    (EXAMPLE, post("Air France delayed again", lang="en"), False),
    (EXAMPLE, post("Air France retard", lang="fr-CA"), True),
    (EXAMPLE, post("l'air de la France profonde"), False),
    (EXAMPLE, post("#AirFranceKLM résultats"), False),
    ("cancel*", post("Flight Cancelled Flightled 😡"), True),
    ("cancel*", post("no cancellation fee", lang="en"), True),
    ("cancel", post("no cancellation fee", lang="en"), False),
    ("cancel", post("they cancel, again", lang="en"), True),
    ("retard", post("RETARD énorme"), True),
    ("énorme", post("RETARD ENORME"), True),
    ("annule", post("vol annulé"), True),
    ("@united", post("@United worst service ever", lang="en"), True),
    ("@united", post("flying united tomorrow", lang="en"), False),
    ("@united", post("@united_fan loves it", lang="en"), False),
    ("#delay", post("#Delayed in Denver", lang="en"), False),
    ("from:@JetBlue thanks", post("Thanks for flying!", author="@jetblue"), True),
    ("from:@JetBlue thanks", post("Thanks for flying!", author="someone"), False),
    ("network:x @delta", post("@Delta hi", network="X"), True),
    ("network:x @delta", post("@Delta hi", network="bluesky"), False),
    ("lang:en @delta", post("@Delta hi", lang=""), False),
    ('"lost luggage"', post("they LOST my luggage", lang="en"), False),
    ('"lost my luggage"', post("they LOST my luggage!!", lang="en"), True),
    ('"my luggage lost"', post("they LOST my luggage", lang="en"), False),
    ("free wifi", post("Wi-Fi was free", lang="en"), False),
    ("free wi-fi", post("Wi-Fi was free", lang="en"), True),
    ("cancel*", post("can\u200bcelled again", lang="en"), True),
]


@pytest.mark.parametrize(("query", "sample", "expected"), SEMANTICS)
def test_semantics(query: str, sample: MatchablePost, expected: bool) -> None:
    parsed = parse_query(query)
    assert match_query(parsed, sample) is expected
    assert Matcher([("q", parsed)]).match(sample) == (["q"] if expected else [])


def test_matcher_returns_ids_in_query_order() -> None:
    matcher = Matcher(
        [
            ("brand", parse_query("@airfrance OR #airfrance")),
            ("delays", parse_query("retard* OR delay*")),
            ("jobs", parse_query("job* lang:fr")),
        ]
    )
    assert matcher.match(post("@AirFrance 2h de retard")) == ["brand", "delays"]
    assert matcher.match_many([post("job dating"), post("rien")]) == [["jobs"], []]


def test_matcher_refuses_a_query_without_positive_term() -> None:
    with pytest.raises(ValueError, match="no positive term"):
        Matcher([("broad", Query(Not(Word("job"))))])


HOSTILE_TEXTS = [
    "",
    "😀" * 20_000,
    "\u202eecnarf ria\u202c and \u2066isolates\u2069",
    "a\u200bi\u200cr\u200d f\u2060rance",
    "x" * 20_000,
    "\ud800\udc00\ud83d lone surrogates \udfff",
    "#" * 5000 + "@" * 5000,
    "e\u0301" * 5000,
    ("air france " * 2000)[:20_000],
    "\x00\x1b[31m control characters",
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_text_is_matched_without_error(text: str) -> None:
    queries = [parse_query(EXAMPLE), parse_query('"france air" OR ecnarf OR air*')]
    matcher = Matcher(list(enumerate(queries)))
    started = time.perf_counter()
    result = matcher.match(post(text))
    assert time.perf_counter() - started < 1.0
    assert result == [i for i, query in enumerate(queries) if match_query(query, post(text))]


# --- the indexed Matcher agrees with the reference evaluator ----------------------------------

VOCABULARY = ["air", "france", "cancel", "cancelled", "vol", "annulé", "job", "jobs", "élan"]
pieces = st.one_of(
    st.sampled_from(VOCABULARY),
    st.sampled_from(VOCABULARY).map(str.upper),
    st.sampled_from(VOCABULARY).map("#".__add__),
    st.sampled_from(["@airfrance", "@alice.bsky.social", "@air"]),
    st.text(max_size=3),
)
separators = st.sampled_from([" ", " ", "  ", "-", ", ", "\u200b", "!", "\n", "'"])
post_texts = st.lists(st.tuples(pieces, separators), max_size=12).map(
    lambda parts: "".join(piece + separator for piece, separator in parts)
)
posts = st.builds(
    MatchablePost,
    text=post_texts,
    lang=st.sampled_from([None, "", "en", "fr", "fr-CA", "FR", "deu"]),
    network=st.sampled_from([None, "x", "bluesky", "Mastodon"]),
    author_handle=st.sampled_from([None, "airfrance", "@AirFrance", "alice.bsky.social"]),
)

vocabulary_queries = st.lists(
    st.sampled_from([*VOCABULARY, '"air france"', "#france", "@airfrance", "canc*", "jobs*"]),
    min_size=1,
    max_size=4,
).map(" OR ".join)


def small_trees() -> st.SearchStrategy[Query]:
    """Random trees, plus trees over a vocabulary that the generated posts often contain."""
    from_vocabulary = st.tuples(vocabulary_queries, st.sampled_from(["", " NOT job*", " lang:fr"]))
    return st.one_of(
        query_trees.map(anchored).map(Query),
        from_vocabulary.map(lambda parts: parse_query(parts[0] + parts[1])),
        st.tuples(from_vocabulary, query_trees).map(
            lambda pair: Query(And((parse_query(pair[0][0]).root, pair[1])))
        ),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(small_trees(), min_size=1, max_size=8), st.lists(posts, min_size=1, max_size=6))
def test_matcher_agrees_with_reference(queries: list[Query], samples: list[MatchablePost]) -> None:
    matcher = Matcher(list(enumerate(queries)))
    expected = [[i for i, q in enumerate(queries) if match_query(q, p)] for p in samples]
    assert matcher.match_many(samples) == expected


@given(st.lists(small_trees(), min_size=1, max_size=4))
def test_canonical_text_matches_like_the_original(queries: list[Query]) -> None:
    sample = post("Air France: vol annulé, cancelled! #france @airfrance jobs élan")
    for query in queries:
        assert match_query(parse_query(to_text(query)), sample) == match_query(query, sample)


# --- posts with tricky text: punctuation, accents, emoji, entities, URLs, casing, Unicode forms --

TRICKY_WORDS = [
    "Air",
    "FRANCE",
    "élan",
    "ÉLAN",
    "e\u0301lan",  # the same word, decomposed
    "\uff46\uff52\uff41\uff4e\uff43\uff45",  # fullwidth "france" folds to "france"
    "cancel",
    "Cancelled",
    "İstanbul",
    "straße",
    "STRASSE",
    "wi",
    "fi",
    "to",
    "first",
    "you",
]
TRICKY_FRAGMENTS = [
    "@alice.bsky.social",
    "alice@air.fr",
    "C#",
    "https://t.co/AirFrance",
    "www.air-france.fr",
    "😡",
    "🇫🇷",
    "l'air",
    "can\u200bcel",
    "soft\u00adhyphen",
    "x#france",
    "#air-france",
    "@air.",
    "@@air",
    "##france",
]
tricky_pieces = st.one_of(
    st.sampled_from(TRICKY_WORDS),
    st.sampled_from(TRICKY_WORDS).map("#".__add__),
    st.sampled_from(TRICKY_WORDS).map("@".__add__),
    st.sampled_from(TRICKY_FRAGMENTS),
    st.text(max_size=3),
)
tricky_separators = st.sampled_from(
    [" ", "", ".", "-", "#", "@", ", ", "\n", "…", "'", "\u00a0", "/", "!!", " . "]
)
tricky_posts = st.builds(
    MatchablePost,
    text=st.lists(st.tuples(tricky_pieces, tricky_separators), max_size=14).map(
        lambda parts: "".join(piece + separator for piece, separator in parts)
    ),
    lang=st.sampled_from([None, "en", "fr-FR"]),
    network=st.sampled_from([None, "x", "Bluesky"]),
    author_handle=st.sampled_from([None, "@Air", "alice.bsky.social"]),
)
query_words = st.sampled_from(
    ["air", "france", "elan", "cancel", "istanbul", "strasse", "wi", "fi", "to", "first", "you"]
)
query_terms = st.one_of(
    query_words,
    query_words.map("#".__add__),
    query_words.map("@".__add__),
    st.just("@alice.bsky.social"),
    st.lists(query_words, min_size=2, max_size=3).map(lambda words: f'"{" ".join(words)}"'),
    st.sampled_from(["canc*", "fra*", "ela*", "fir*"]),
    st.sampled_from(["wi-fi", "air-france", "élan", "FRANCE"]),
)
query_operands = st.one_of(
    query_terms,
    query_terms.map("NOT ".__add__),
    st.sampled_from(["lang:fr", "network:x", "from:@air"]),
)
tricky_queries = st.tuples(
    query_terms, st.lists(st.tuples(st.sampled_from([" ", " OR "]), query_operands), max_size=3)
).map(lambda parts: parts[0] + "".join(operator + operand for operator, operand in parts[1]))


@settings(max_examples=400, deadline=None)
@given(st.lists(tricky_queries, min_size=1, max_size=6), st.lists(tricky_posts, max_size=6))
def test_matcher_agrees_with_reference_on_tricky_text(
    texts: list[str], samples: list[MatchablePost]
) -> None:
    queries = []
    for text in texts:
        try:
            queries.append(parse_query(text))
        except QuerySyntaxError:
            continue  # e.g. "NOT a OR b": too broad; the parser's own tests cover refusals
    matcher = Matcher(list(enumerate(queries)))
    expected = [[i for i, q in enumerate(queries) if match_query(q, p)] for p in samples]
    assert matcher.match_many(samples) == expected


# Queries indexed by two tokens that must both be present (a phrase, or two required words).
PAIRED = [
    ('"to first"', "first to", False),
    ('"to first"', "To first class", True),
    ('"to first"', "to the first", False),
    ('"no no"', "no, NO!", True),
    ('"no no"', "no way", False),
    ("you guys", "guys, you rock", True),
    ("you guys", "you rock", False),
    ('("you guys" OR first) lang:fr', "first!", True),
    ('"you guys" OR @air', "@air you", True),
    ("air france NOT #air", "#air france air", False),
]


@pytest.mark.parametrize(("query", "text", "expected"), PAIRED)
def test_queries_indexed_by_two_tokens(query: str, text: str, expected: bool) -> None:
    parsed = parse_query(query)
    sample = post(text)
    assert match_query(parsed, sample) is expected
    assert Matcher([("q", parsed)]).match(sample) == (["q"] if expected else [])


def test_wildcards_are_matched_on_each_post_of_a_batch() -> None:
    """A post's wildcard stems come from its own tokens, whatever the posts before it held."""
    queries = [
        parse_query("cancel* OR retard*"),
        parse_query("vol NOT annul*"),
        parse_query("again* vol"),
    ]
    matcher = Matcher(list(enumerate(queries)))
    samples = [post("vol annulé, cancelled"), post("cancelled brand new"), post("cancelled again")]
    expected = [[i for i, q in enumerate(queries) if match_query(q, p)] for p in samples]
    assert matcher.match_many(samples) == expected
