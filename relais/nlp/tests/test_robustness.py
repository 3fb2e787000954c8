"""Any string gets a defined enrichment: never an exception, always values in range."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relais.nlp import Enrichment, enrich_texts
from relais.nlp.keywords import INTENTS, REASONS

SENTIMENTS = {"negative", "neutral", "positive"}
AWKWARD = [
    "",
    "   ",
    "😡😡😡",
    "🙂",
    "https://t.co/abc",
    "x" * 20_000,
    "Merci @Freebox, but my internet is still down ce soir!",
    "broken \ud800 surrogate \udfff",
    "zero\u200bwidth\u200d joiner\ufeff",
    "\u202eRTL override\u202c مرحبا بكم",
    "\x00\x01\x1b[31m control",
    "\n\n\t",
    "İstanbul İİİ freebox",
    "#",
    "@",
]


def assert_well_formed(result: Enrichment) -> None:
    assert isinstance(result.lang, str)
    assert result.lang == "und" or len(result.lang) == 2
    assert result.sentiment in SENTIMENTS
    assert -1.0 <= result.sentiment_score <= 1.0
    assert result.intent in INTENTS
    assert (result.reason is None) == (result.intent != "complaint")
    assert result.reason is None or result.reason in REASONS
    assert set(result.entities) == {"handles", "hashtags", "links", "products"}
    assert all(isinstance(v, list) for v in result.entities.values())


def test_awkward_inputs_get_defined_outputs() -> None:
    results = enrich_texts(AWKWARD)
    assert len(results) == len(AWKWARD)
    for result in results:
        assert_well_formed(result)


def test_text_without_letters_has_undetermined_language() -> None:
    empty, spaces, emoji, *_ = enrich_texts(["", "   ", "😡😡😡", "https://t.co/abc"])
    assert empty.lang == spaces.lang == emoji.lang == "und"


def test_empty_batch() -> None:
    assert enrich_texts([]) == []


def test_batch_order_does_not_change_results() -> None:
    texts = ["I love it", "c'est nul, panne encore", "¿dónde está mi paquete?"]
    forward = enrich_texts(texts)
    backward = enrich_texts(texts[::-1])[::-1]
    assert forward == backward


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=8))
def test_any_unicode_batch(texts: list[str]) -> None:
    results = enrich_texts(texts)
    assert len(results) == len(texts)
    for result in results:
        assert_well_formed(result)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0xD800, max_codepoint=0xDFFF)))
def test_lone_surrogates(text: str) -> None:
    assert_well_formed(enrich_texts([text])[0])
