"""Regression guards on the SHIPPED artifacts: a retrained model that is worse cannot land.

FLOORS are the figures measured on the shipped model (relais-nlp-2025.11.7, minus 0.5 point of
slack; the language floor is its bar); BARS are the issue's targets, all reached since
2025.11.7 (the French one last).
"""

from __future__ import annotations

import pytest

from relais.nlp import evaluate
from relais.nlp.enrich import enrich_with
from relais.nlp.model import Model, shipped

FLOORS = {
    "tweeteval_sentiment_macro_recall": 64.71,
    "umsab_fr_macro_f1": 64.64,
    "airline_accuracy": 82.69,
    "langid_accuracy": 97.0,
    "intent_fr_macro_f1": 59.04,
    "intent_en_macro_f1": 42.79,
    "reason_fr_macro_f1": 36.62,
    "reason_en_macro_f1": 46.83,
}
BARS = {
    "tweeteval_sentiment_macro_recall": 65.0,
    "umsab_fr_macro_f1": 62.0,
    "airline_accuracy": 82.0,
    "langid_accuracy": 97.0,
}
MAX_ARTIFACT_BYTES = 30 * 1024 * 1024


@pytest.fixture(scope="module")
def figures() -> dict[str, float]:
    return evaluate.quality(shipped())


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_no_regression(figures: dict[str, float], name: str) -> None:
    assert figures[name] >= FLOORS[name]


@pytest.mark.parametrize("name", sorted(BARS))
def test_issue_bar(figures: dict[str, float], name: str) -> None:
    assert figures[name] >= BARS[name]


def test_intent_and_reason_are_reported_beside_the_keyword_baseline(
    figures: dict[str, float],
) -> None:
    for key in ("intent_fr", "intent_en", "reason_fr", "reason_en"):
        assert 0.0 <= figures[f"{key}_macro_f1"] <= 100.0
        assert 0.0 <= figures[f"keyword_{key}_macro_f1"] <= 100.0


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_intent_head_beats_the_keyword_baseline(figures: dict[str, float], lang: str) -> None:
    assert figures[f"intent_{lang}_macro_f1"] > figures[f"keyword_intent_{lang}_macro_f1"]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_reason_head_beats_the_keyword_baseline(figures: dict[str, float], lang: str) -> None:
    assert figures[f"reason_{lang}_macro_f1"] > figures[f"keyword_reason_{lang}_macro_f1"]


def test_shipped_artifacts_are_small() -> None:
    from relais.nlp.model import ARTIFACT_DIR

    assert sum(p.stat().st_size for p in ARTIFACT_DIR.iterdir()) < MAX_ARTIFACT_BYTES


def test_model_version_matches_artifacts() -> None:
    from relais.nlp import MODEL_VERSION

    model: Model = shipped()
    assert model.version == MODEL_VERSION


def test_throughput_smoke() -> None:
    """A loose floor only (CI machines are noisy); the real figure comes from the benchmark."""
    model = shipped()
    texts = evaluate.throughput_texts()[:3000]
    assert evaluate.posts_per_second(lambda t: enrich_with(model, t), texts, repeats=1) > 2000
