"""Turn raw post texts into Enrichment records: language, sentiment, intent, reason, entities."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from relais.nlp.entities import extract_batch
from relais.nlp.model import Model, shipped

# A post needs this many letters (outside handles and links) before a language is claimed.
MIN_LETTERS = 2
MIN_LANGUAGE_CONFIDENCE = 0.35
LANGUAGE_TEXT_CHARS = 2000
NON_TEXT = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")
LETTER = re.compile(r"[^\W\d_]")
LAST_LETTER = 0x32400  # no code point at or above this is a letter (Unicode 15)
# Scripts used by one main language are decided by the script: the language head only knows
# the eight UMSAB languages (Latin, Arabic and Devanagari scripts). Ranges are end-exclusive.
SCRIPT_LANGUAGES = (
    ("ja", ((0x3040, 0x3100),)),
    ("ko", ((0xAC00, 0xD7B0),)),
    ("zh", ((0x4E00, 0xA000),)),
    ("th", ((0x0E00, 0x0E80),)),
    ("el", ((0x0370, 0x0400),)),
    ("he", ((0x0590, 0x0600),)),
    ("ru", ((0x0400, 0x0500),)),
)
# Letters of a script the language head does not know, but that no single language owns.
OTHER_SCRIPTS = ((0x0500, 0x0590),)
PLAIN_LETTER = 1
OTHER_SCRIPT_LETTER = 2 + len(SCRIPT_LANGUAGES)
LETTER_CLASSES = OTHER_SCRIPT_LETTER + 1
SENTIMENT_HEAD_BY_LANG = {"en": "sentiment_en", "fr": "sentiment_fr"}
MULTILINGUAL_SENTIMENT = "sentiment_multi"
COMPLAINT = "complaint"
SEPARATOR = "\n"


@dataclass(frozen=True)
class Enrichment:
    lang: str
    sentiment: str
    sentiment_score: float
    intent: str
    reason: str | None
    entities: dict[str, list[str]] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _letter_classes() -> np.ndarray:
    """Class of every code point: 0 not a letter, PLAIN_LETTER, 2 + the index of its script in
    SCRIPT_LANGUAGES, or OTHER_SCRIPT_LETTER. Built once (about 0.1 s) so that a batch's letters
    are counted with array operations instead of a regular expression per post."""
    classes = np.zeros(0x110000, dtype=np.uint8)
    every_char = "".join(map(chr, range(LAST_LETTER)))
    letters = np.fromiter((m.start() for m in LETTER.finditer(every_char)), dtype=np.int64)
    classes[letters] = PLAIN_LETTER
    ranges = [(2 + index, spans) for index, (_, spans) in enumerate(SCRIPT_LANGUAGES)]
    for letter_class, spans in [*ranges, (OTHER_SCRIPT_LETTER, OTHER_SCRIPTS)]:
        for first, end in spans:
            block = classes[first:end]
            block[block == PLAIN_LETTER] = letter_class
    return classes


def _letter_counts(texts: list[str]) -> np.ndarray:
    """(posts, LETTER_CLASSES) counts of letters outside links, handles and hashtags."""
    joined = SEPARATOR.join(t[:LANGUAGE_TEXT_CHARS].replace(SEPARATOR, " ") for t in texts)
    # Patterns never match across the separator (a whitespace), so posts stay apart.
    joined = NON_TEXT.sub(" ", joined)
    codes = np.frombuffer(joined.encode("utf-32-le", "replace"), dtype=np.uint32)
    post = np.cumsum(codes == ord(SEPARATOR))
    classes = _letter_classes()[codes]
    letters = classes > 0
    cells = post[letters] * LETTER_CLASSES + classes[letters]
    counts = np.bincount(cells, minlength=len(texts) * LETTER_CLASSES)
    return counts.reshape(len(texts), LETTER_CLASSES)


def _languages(model: Model, texts: list[str], probabilities: np.ndarray) -> list[str]:
    """Too few letters: 'und'; mostly one script of SCRIPT_LANGUAGES: its language; otherwise
    the language head, when it is confident enough."""
    labels = np.array([*model.heads["lang"].labels, "und", *(lang for lang, _ in SCRIPT_LANGUAGES)])
    undetermined = len(model.heads["lang"].labels)
    choice = probabilities.argmax(axis=1)
    confident = probabilities[np.arange(len(texts)), choice] >= MIN_LANGUAGE_CONFIDENCE
    choice[~confident] = undetermined
    counts = _letter_counts(texts)
    total = counts.sum(axis=1)
    has_other_script = counts[:, 2:].sum(axis=1) > 0
    # The first script (in SCRIPT_LANGUAGES order) holding at least half the letters wins.
    for index in reversed(range(len(SCRIPT_LANGUAGES))):
        owns = has_other_script & (counts[:, 2 + index] * 2 >= total)
        choice[owns] = undetermined + 1 + index
    choice[total < MIN_LETTERS] = undetermined
    return labels[choice].tolist()


def _sentiments(
    model: Model, langs: list[str], scores: np.ndarray, language_probabilities: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Labels and polarities (P(pos) - P(neg)).

    A post whose language the head decided is scored by the language heads in proportion to
    the language probabilities (English head for P(en), French head for P(fr), the
    multilingual head for the rest): an English post that the language head hesitates to call
    romanised Hindi keeps the English head's share instead of losing it all. Posts of other
    scripts and undetermined ones get the multilingual head.
    """
    lang_labels = model.heads["lang"].labels
    head_shares = np.zeros((len(langs), 2), dtype=np.float32)
    for column, lang in enumerate(SENTIMENT_HEAD_BY_LANG):
        head_shares[:, column] = language_probabilities[:, lang_labels.index(lang)]
    decided_by_head = np.isin(np.array(langs), lang_labels)
    head_shares[~decided_by_head] = 0.0
    blended = model.probabilities(scores, MULTILINGUAL_SENTIMENT) * (
        1.0 - head_shares.sum(axis=1, keepdims=True)
    )
    for column, head in enumerate(SENTIMENT_HEAD_BY_LANG.values()):
        blended += model.probabilities(scores, head) * head_shares[:, [column]]
    labels = model.heads[MULTILINGUAL_SENTIMENT].labels  # the trainer gives every head SENTIMENTS
    polarity = np.clip(
        blended[:, labels.index("positive")] - blended[:, labels.index("negative")], -1.0, 1.0
    )
    return [labels[i] for i in blended.argmax(axis=1)], np.round(polarity, 4)


def _argmax_labels(model: Model, scores: np.ndarray, head: str) -> list[str]:
    labels = model.heads[head].labels
    return [labels[i] for i in scores[:, model.heads[head].columns].argmax(axis=1)]


def enrich_texts(texts: list[str]) -> list[Enrichment]:
    """Enrich a batch of posts; any string (empty, huge, broken surrogates) is defined."""
    return enrich_with(shipped(), texts)


def enrich_with(model: Model, texts: list[str]) -> list[Enrichment]:
    if not texts:
        return []
    texts = [text if isinstance(text, str) else "" for text in texts]
    scores = model.score_texts(texts)
    language_probabilities = model.probabilities(scores, "lang")
    langs = _languages(model, texts, language_probabilities)
    sentiments, polarities = _sentiments(model, langs, scores, language_probabilities)
    intents = _argmax_labels(model, scores, "intent")
    reasons = _argmax_labels(model, scores, "reason")
    return [
        Enrichment(
            lang=lang,
            sentiment=sentiment,
            sentiment_score=score,
            intent=intent,
            reason=reason if intent == COMPLAINT else None,
            entities=entities,
        )
        for entities, lang, sentiment, score, intent, reason in zip(
            extract_batch(texts),
            langs,
            sentiments,
            polarities.tolist(),
            intents,
            reasons,
            strict=True,
        )
    ]
