"""Turn raw post texts into Enrichment records: language, sentiment, intent, reason, entities."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from relais.nlp.entities import extract_batch
from relais.nlp.model import Model, shipped

# A post needs this many letters (outside handles and links) before a language is claimed.
MIN_LETTERS = 2
MIN_LANGUAGE_CONFIDENCE = 0.35
NON_TEXT = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")
LETTER = re.compile(r"[^\W\d_]")
# Any letter outside the Latin, Arabic and Devanagari blocks: only then are scripts counted.
OTHER_SCRIPT = re.compile("[\u0370-\u05ff\u0e00-\u0e7f\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")
# Scripts used by one main language are decided by the script: the language head only knows
# the eight UMSAB languages (Latin, Arabic and Devanagari scripts).
SCRIPT_LANGUAGES = (
    (re.compile(r"[\u3040-\u30ff]"), "ja"),
    (re.compile(r"[\uac00-\ud7af]"), "ko"),
    (re.compile(r"[\u4e00-\u9fff]"), "zh"),
    (re.compile(r"[\u0e00-\u0e7f]"), "th"),
    (re.compile(r"[\u0370-\u03ff]"), "el"),
    (re.compile(r"[\u0590-\u05ff]"), "he"),
    (re.compile(r"[\u0400-\u04ff]"), "ru"),
)
SENTIMENT_HEAD_BY_LANG = {"en": "sentiment_en", "fr": "sentiment_fr"}
COMPLAINT = "complaint"


@dataclass(frozen=True)
class Enrichment:
    lang: str
    sentiment: str
    sentiment_score: float
    intent: str
    reason: str | None
    entities: dict[str, list[str]] = field(default_factory=dict)


def _letters(text: str) -> str:
    return "".join(LETTER.findall(NON_TEXT.sub(" ", text)))


def _script_language(letters: str) -> str | None:
    """The language of a script that covers at least half the letters, if there is one."""
    if not OTHER_SCRIPT.search(letters):
        return None
    for pattern, lang in SCRIPT_LANGUAGES:
        if len(pattern.findall(letters)) * 2 >= len(letters):
            return lang
    return None


def _languages(model: Model, texts: list[str], scores: np.ndarray) -> list[str]:
    head = model.heads["lang"]
    probabilities = model.probabilities(scores, "lang")
    best = probabilities.argmax(axis=1)
    languages = []
    for text, row, choice in zip(texts, probabilities, best, strict=True):
        letters = _letters(text[:2000])
        if len(letters) < MIN_LETTERS:
            languages.append("und")
        elif script_lang := _script_language(letters):
            languages.append(script_lang)
        elif row[choice] < MIN_LANGUAGE_CONFIDENCE:
            languages.append("und")
        else:
            languages.append(head.labels[choice])
    return languages


def _sentiments(model: Model, langs: list[str], scores: np.ndarray) -> list[tuple[str, float]]:
    """Each post is scored by its language's head, or the multilingual head for the rest."""
    by_head = {
        name: model.probabilities(scores, name)
        for name in ("sentiment_en", "sentiment_fr", "sentiment_multi")
    }
    results = []
    for index, lang in enumerate(langs):
        head = SENTIMENT_HEAD_BY_LANG.get(lang, "sentiment_multi")
        labels = model.heads[head].labels
        row = by_head[head][index]
        polarity = float(row[labels.index("positive")] - row[labels.index("negative")])
        results.append((labels[int(row.argmax())], max(-1.0, min(1.0, polarity))))
    return results


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
    langs = _languages(model, texts, scores)
    sentiments = _sentiments(model, langs, scores)
    intents = _argmax_labels(model, scores, "intent")
    reasons = _argmax_labels(model, scores, "reason")
    return [
        Enrichment(
            lang=lang,
            sentiment=sentiment,
            sentiment_score=round(score, 4),
            intent=intent,
            reason=reason if intent == COMPLAINT else None,
            entities=entities,
        )
        for entities, lang, (sentiment, score), intent, reason in zip(
            extract_batch(texts), langs, sentiments, intents, reasons, strict=True
        )
    ]
