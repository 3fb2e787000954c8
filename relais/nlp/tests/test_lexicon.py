"""The lexicon prior: rated words land in their word buckets and push their class."""

from __future__ import annotations

import numpy as np

from relais.nlp import lexicon
from relais.nlp.features import FeatureConfig, featurise, word_bucket

CONFIG = FeatureConfig(bits=16)


def test_a_word_bucket_is_a_feature_of_every_post_holding_the_word() -> None:
    bucket = word_bucket("génial", CONFIG.bits)
    assert bucket is not None
    assert bucket in featurise(["c'est génial, merci"], CONFIG).indices


def test_only_single_normalised_words_get_a_bucket() -> None:
    for word in ("(-:", "Bien", "deux mots", "", "2025"):
        assert word_bucket(word, CONFIG.bits) is None


def test_the_shipped_french_lexicon_reads_as_rated_words() -> None:
    words = lexicon.read_lexicon(lexicon.LEXICON_FR)
    assert len(words) > 8000
    assert words["génial"] > 0 > words["nul"]
    assert all(word_bucket(word, 18) is not None for word in words)


def test_the_prior_scores_a_post_by_its_rated_words() -> None:
    rated = {"super": 2.5, "bravo": 2.0, "nul": -2.5, "horrible": -3.0}
    texts = ["super film", "bravo à tous", "film nul", "horrible journée", "le film", "la journée"]
    labels = ["positive", "positive", "negative", "negative", "neutral", "neutral"]
    classes = ("negative", "neutral", "positive")
    weights, bias = lexicon.lexicon_prior(rated, texts * 3, labels * 3, classes, CONFIG)
    scores = np.asarray(featurise(["quel super match", "match horrible"], CONFIG) @ weights) + bias
    assert [classes[i] for i in scores.argmax(axis=1)] == ["positive", "negative"]
    # Folded into the word buckets only: a post with no rated word gets the bias alone.
    assert np.allclose(featurise(["le match"], CONFIG) @ weights, 0.0)
