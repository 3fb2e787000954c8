"""The non-linear expert: it learns, it only moves what a batch touches, it survives saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from relais.nlp import mlp
from relais.nlp.features import FeatureConfig, featurise
from relais.nlp.model import ExpertBlock, Head, Model, load, save

CONFIG = FeatureConfig(bits=12)
TEXTS = ["i love it", "love love this", "so good", "i hate it", "hate this", "so bad"] * 10
TARGETS = np.array([[0.0, 1.0], [0.1, 0.9], [0.0, 1.0], [1.0, 0.0], [0.9, 0.1], [1.0, 0.0]] * 10)


def fitted() -> mlp.MlpHead:
    features = featurise(TEXTS, CONFIG)
    features.sum_duplicates()
    return mlp.fit_mlp(features, TARGETS, np.ones(len(TEXTS)), seed=1)


def test_the_expert_learns_a_toy_task_from_soft_targets() -> None:
    log_p = fitted().log_probabilities(featurise(["love it", "hate it"], CONFIG))
    assert np.allclose(np.exp(log_p).sum(axis=1), 1.0)
    assert log_p.argmax(axis=1).tolist() == [1, 0]


def test_buckets_no_post_holds_keep_their_initial_embedding() -> None:
    head = fitted()
    initial = np.random.default_rng(1).normal(0.0, 0.05, head.embedding.shape)
    seen = np.unique(featurise(TEXTS, CONFIG).indices)
    unseen = np.setdiff1d(np.arange(head.embedding.shape[0]), seen)
    assert np.allclose(head.embedding[unseen], initial[unseen].astype(np.float32))
    assert not np.allclose(head.embedding[seen], initial[seen].astype(np.float32))


def test_a_model_with_an_expert_scores_the_same_after_saving(tmp_path: Path) -> None:
    head = fitted()
    weights = np.random.default_rng(0).normal(size=(1 << CONFIG.bits, 2)).astype(np.float32)
    expert = ExpertBlock("s", head, np.array([0.2, -0.1], dtype=np.float32))
    model = Model(
        "v", CONFIG, {"s": Head("s", ("neg", "pos"), 0)}, weights, np.zeros(2), None, expert
    )
    save(model, {}, tmp_path)
    loaded = load(tmp_path)
    texts = ["so good", "awful", "bof"]
    before = model.probabilities(model.score_texts(texts), "s")
    after = loaded.probabilities(loaded.score_texts(texts), "s")
    assert np.allclose(before.sum(axis=1), 1.0)
    assert np.allclose(before, after, atol=1e-3)
