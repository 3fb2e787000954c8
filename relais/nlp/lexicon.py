"""A word-valence lexicon as a prior of a sentiment head, at no run-time cost.

Each post gets two numbers, the sums of the positive and of the negative valences found at
its word-unigram buckets; a logistic regression over them is folded back into those buckets,
so enrichment still computes one plain product with the head's weights. French only: the
French head learns from about 2,000 labelled tweets, so 8,788 rated words add what they lack
(docs/nlp.md "Session 6: French").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from relais.nlp.features import FeatureConfig, featurise, word_bucket

LEXICON_FR = Path(__file__).parent / "data" / "lexicon_fr.tsv"


def read_lexicon(path: Path) -> dict[str, float]:
    """word -> valence (negative below zero), from ``word<TAB>valence`` lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {word: float(value) for word, value in (line.split("\t") for line in lines if line)}


def valence_vectors(lexicon: dict[str, float], bits: int) -> np.ndarray:
    """(2**bits, 2): the positive valences and the negative ones (as magnitudes) per bucket."""
    vectors = np.zeros((1 << bits, 2))
    for word, valence in lexicon.items():
        bucket = word_bucket(word, bits)
        if bucket is not None:
            vectors[bucket, 0 if valence > 0 else 1] += abs(valence)
    return vectors


def lexicon_prior(
    lexicon: dict[str, float],
    texts: list[str],
    labels: list[str],
    classes: tuple[str, ...],
    config: FeatureConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(weights, bias) in the layout of a head over ``classes``: the valence sums' logistic
    regression, folded into the word buckets."""
    vectors = valence_vectors(lexicon, config.bits)
    sums = featurise(texts, config) @ vectors
    head = LogisticRegression(class_weight="balanced", max_iter=1000).fit(sums, labels)
    order = [list(head.classes_).index(label) for label in classes]
    weights = vectors @ head.coef_[order].T
    return weights.astype(np.float32), head.intercept_[order].astype(np.float32)
