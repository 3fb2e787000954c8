"""Per-word class scores averaged over a post's known words: the run-time half of the French
word vectors (relais.nlp.wordvectors fits them; this module needs no sklearn)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from relais.nlp.features import coarsen
from relais.nlp.mlp import log_softmax


@dataclass(frozen=True)
class WordScores:
    """One score per known word and class; a post scores the mean over its word tokens that
    are known (the bias alone when none is), as log-probabilities."""

    bits: int
    buckets: np.ndarray  # (words,) int32, sorted, unique: the words' unigram buckets
    scores: np.ndarray  # (words, classes) float32
    bias: np.ndarray  # (classes,) float32

    def log_probabilities(self, unigrams: sp.csr_matrix) -> np.ndarray:
        """From the posts' unigrams hashed at ``bits`` or finer."""
        coarse = coarsen(unigrams, self.bits)
        return log_softmax(mean_over_known_words(coarse, self.buckets, self.scores) + self.bias)


def mean_over_known_words(
    unigrams: sp.csr_matrix, buckets: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """(posts, columns of ``values``): the mean of ``values`` over each post's word tokens whose
    bucket is one of ``buckets`` (zeros for a post with none)."""
    posts = np.repeat(np.arange(unigrams.shape[0]), np.diff(unigrams.indptr))
    found = np.minimum(np.searchsorted(buckets, unigrams.indices), len(buckets) - 1)
    known = buckets[found] == unigrams.indices
    occurrences = sp.csr_matrix(
        (np.ones(known.sum(), dtype=np.float32), (posts[known], found[known])),
        shape=(unigrams.shape[0], len(buckets)),
    )
    counts = np.asarray(occurrences.sum(axis=1)).ravel()
    return np.asarray(occurrences @ values / np.maximum(counts, 1)[:, None], dtype=np.float32)
