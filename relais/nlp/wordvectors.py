"""French word vectors as a second opinion for the French sentiment head, folded into one score
per word (relais.nlp.wordscores) so that enrichment only averages a post's word scores.

The French head learns from about 2,000 labelled tweets, so many words of a new post were never
seen in training; fastText vectors trained on web French (tools/nlp_french_vectors.py) place
them near words that were. A logistic regression over the mean vector of a post's known words
is fitted on the French head's posts; being linear in that mean, it equals the mean of one score
per word and class, which is all the artifacts keep (docs/nlp.md "Session 7: French vectors").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from relais.nlp.features import FeatureConfig, featurise_with_unigrams
from relais.nlp.wordscores import WordScores, mean_over_known_words

VECTORS_FR = Path(__file__).parent / "data" / "vectors_fr.npz"
# The finest features' unigram buckets: 100,000 words in 2**20 buckets, about 5 % share one.
BITS = 20


@dataclass(frozen=True)
class WordVectors:
    words: list[str]  # most frequent first
    vectors: np.ndarray  # (words, dims) float32


def write_vectors(
    words: list[str],
    rows: np.ndarray,
    codes: np.ndarray,
    scale: np.ndarray,
    path: Path = VECTORS_FR,
) -> None:
    """``rows[i]`` is the row of ``codes`` (int8, times ``scale`` per dimension) of word i."""
    np.savez_compressed(path, words=np.array(words), rows=rows, codes=codes, scale=scale)


def read_vectors(path: Path = VECTORS_FR) -> WordVectors:
    with np.load(path) as stored:
        table = stored["codes"].astype(np.float32) * stored["scale"]
        return WordVectors([str(w) for w in stored["words"]], table[stored["rows"]])


def word_buckets(vectors: WordVectors, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique buckets, the word kept at each): where two words share a bucket, the more
    frequent one keeps it."""
    _, unigrams = featurise_with_unigrams(vectors.words, FeatureConfig(bits))
    assert unigrams.nnz == len(vectors.words), "every word is one token (checked on export)"
    buckets, first = np.unique(unigrams.indices, return_index=True)
    return buckets.astype(np.int32), first


def fit_word_scores(
    vectors: WordVectors,
    texts: list[str],
    labels: list[str],
    classes: tuple[str, ...],
    *,
    c: float,
    bits: int = BITS,
) -> WordScores:
    """A logistic regression (inverse regularisation ``c``, balanced classes) over the posts'
    mean word vectors, folded into per-word scores."""
    buckets, kept = word_buckets(vectors, bits)
    kept_vectors = vectors.vectors[kept]
    _, unigrams = featurise_with_unigrams(texts, FeatureConfig(bits))
    means = mean_over_known_words(unigrams, buckets, kept_vectors).astype(np.float64)
    scaler = StandardScaler().fit(means)
    head = LogisticRegression(class_weight="balanced", C=c, max_iter=3000)
    head.fit(scaler.transform(means), labels)
    order = [list(head.classes_).index(label) for label in classes]
    coef = head.coef_[order] / scaler.scale_  # in the units of the raw mean vector
    bias = head.intercept_[order] - coef @ scaler.mean_
    scores = kept_vectors.astype(np.float64) @ coef.T
    return WordScores(bits, buckets, scores.astype(np.float32), bias.astype(np.float32))
