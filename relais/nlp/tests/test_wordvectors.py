"""French word vectors: pooled over known words, folded into per-word scores, saved with the
model, shipped as one-token words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from relais.nlp import wordscores, wordvectors
from relais.nlp.features import FeatureConfig, featurise_with_unigrams, is_plain_word, word_bucket
from relais.nlp.model import Head, Model, WordScoreBlock, load, save

BITS = 14
CLASSES = ("negative", "neutral", "positive")
# Two dimensions: the first is valence, the second means "a thing"; "bof" is not known.
VECTORS = wordvectors.WordVectors(
    ["super", "génial", "nul", "horrible", "table", "chaise"],
    np.array([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0], [-0.8, 0.1], [0.0, 1.0], [0.1, 0.9]]),
)
TEXTS = ["super", "génial super", "nul", "horrible nul", "table", "chaise table"] * 5
LABELS = ["positive", "positive", "negative", "negative", "neutral", "neutral"] * 5


def unigrams(texts: list[str], bits: int = BITS) -> sp.csr_matrix:
    return featurise_with_unigrams(texts, FeatureConfig(bits))[1]


def test_unigrams_hold_one_entry_per_plain_word_at_its_word_bucket() -> None:
    matrix = unigrams(["c'est #génial génial", "", "🙂"])
    assert np.diff(matrix.indptr).tolist() == [4, 0, 0]
    assert matrix.indices.tolist() == [
        word_bucket(w, BITS) for w in ("c", "est", "génial", "génial")
    ]


def test_plain_words_are_letters_digits_and_marks_left_as_normalised() -> None:
    assert all(is_plain_word(word) for word in ("génial", "naïve", "0h"))
    assert not any(is_plain_word(word) for word in ("", "c'est", "#top", "Paris", "a b", "2h"))


def test_the_mean_counts_known_word_tokens_only() -> None:
    buckets, kept = wordvectors.word_buckets(VECTORS, BITS)
    means = wordscores.mean_over_known_words(
        unigrams(["super super nul bof", "bof bof", ""]), buckets, VECTORS.vectors[kept]
    )
    assert np.allclose(means, [[1 / 3, 0.0], [0.0, 0.0], [0.0, 0.0]])


def test_the_more_frequent_of_two_words_sharing_a_bucket_keeps_it() -> None:
    doubled = wordvectors.WordVectors(["super", "super"], np.array([[1.0, 0.0], [-1.0, 0.0]]))
    buckets, kept = wordvectors.word_buckets(doubled, BITS)
    assert len(buckets) == 1
    assert kept.tolist() == [0]


def test_folded_word_scores_equal_the_regression_over_mean_vectors() -> None:
    scores = wordvectors.fit_word_scores(VECTORS, TEXTS, LABELS, CLASSES, c=1.0, bits=BITS)
    buckets, kept = wordvectors.word_buckets(VECTORS, BITS)
    means = wordscores.mean_over_known_words(unigrams(TEXTS), buckets, VECTORS.vectors[kept])
    scaler = StandardScaler().fit(means)
    head = LogisticRegression(class_weight="balanced", C=1.0, max_iter=3000)
    head.fit(scaler.transform(means), LABELS)
    expected = head.predict_log_proba(scaler.transform(means))
    assert np.allclose(scores.log_probabilities(unigrams(TEXTS)), expected, atol=1e-4)
    unseen = scores.log_probabilities(unigrams(["génial", "horrible", "chaise", "bof"]))
    assert [CLASSES[i] for i in unseen[:3].argmax(axis=1)] == ["positive", "negative", "neutral"]
    assert np.allclose(unseen[3], scores.bias - np.logaddexp.reduce(scores.bias))


def test_finer_unigrams_are_coarsened_to_the_scores_own_size() -> None:
    scores = wordvectors.fit_word_scores(VECTORS, TEXTS, LABELS, CLASSES, c=1.0, bits=BITS)
    texts = ["super table", "nul"]
    assert np.allclose(
        scores.log_probabilities(unigrams(texts, BITS + 4)),
        scores.log_probabilities(unigrams(texts)),
    )


def model_with_word_scores() -> Model:
    scores = wordvectors.fit_word_scores(VECTORS, TEXTS, LABELS, CLASSES, c=1.0, bits=BITS)
    weights = np.random.default_rng(0).normal(size=(1 << BITS, 3)).astype(np.float32) / 10
    heads = {"s": Head("s", CLASSES, 0)}
    words = WordScoreBlock("s", scores, 1.0)
    return Model("v", FeatureConfig(BITS), heads, weights, np.zeros(3, np.float32), words=words)


def test_a_model_with_word_scores_scores_the_same_after_saving(tmp_path: Path) -> None:
    model = model_with_word_scores()
    save(model, {}, tmp_path)
    loaded = load(tmp_path)
    texts = ["super", "horrible chaise", "bof", ""]
    before = model.probabilities(model.score_texts(texts), "s")
    assert np.allclose(before, loaded.probabilities(loaded.score_texts(texts), "s"), atol=1e-3)
    assert before[0].argmax() == CLASSES.index("positive")


def test_a_model_with_word_scores_refuses_features_without_unigrams() -> None:
    model = model_with_word_scores()
    features, _ = featurise_with_unigrams(["super"], FeatureConfig(BITS))
    with pytest.raises(ValueError, match="unigrams"):
        model.scores(features)


def test_the_shipped_vectors_are_frequent_one_token_words() -> None:
    shipped = wordvectors.read_vectors()
    assert shipped.vectors.shape == (len(shipped.words), 300) == (100_000, 300)
    assert shipped.words[:3] == ["de", "la", "et"]
    assert unigrams(shipped.words, wordvectors.BITS).nnz == len(shipped.words)
