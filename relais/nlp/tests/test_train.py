"""The trainer's building blocks on small data it makes itself (the full training is the
`relais nlp train` command; its figures are guarded by test_quality_guards)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from relais.nlp import train


def test_balanced_weights_scale_each_class_by_its_rarity() -> None:
    data = train.Examples(
        ["w", "x", "y", "z"], ["a", "a", "a", "b"], [1.0, 1.0, 1.0, 2.0], [1.0] * 4
    )
    # n / (classes x count): 4 / 6 for "a", 4 / 2 for "b", times the given weights.
    assert np.allclose(train.balanced_weights(data), [2 / 3, 2 / 3, 2 / 3, 4.0])


def test_soft_labels_count_each_post_by_its_class_probabilities() -> None:
    hard = train.examples([{"text": "fine"}, {"text": "bad"}], lambda r: "a")
    soft = train.soft_examples(["meh"], np.array([[0.25, 0.75]]), ("a", "b"), 2.0)
    data = hard + soft
    assert data.labels == ["a", "a", "a", "b"]
    assert data.shares == [1.0, 1.0, 0.25, 0.75]
    # "a" holds 2.25 posts and "b" 0.75 of the 3: each weighted by its share and its rarity.
    weights = train.balanced_weights(data)
    assert np.allclose(weights, [3 / 4.5, 3 / 4.5, 2 * 0.25 * 3 / 4.5, 2 * 0.75 * 3 / 1.5])


def test_log_count_ratios_point_to_the_class_a_feature_occurs_in() -> None:
    texts = ["great great day", "great fun", "awful day", "awful mess"]
    labels = ["pos", "pos", "neg", "neg"]
    features = train.matrix(texts)
    ratios = train.log_count_ratios(features, labels, ("neg", "pos"), [1.0] * len(texts))
    only_positive = sorted(
        set(train.matrix(["great"]).indices) - set(train.matrix(texts[2:]).indices)
    )
    assert only_positive
    assert (ratios[only_positive, 1] > 0).all()
    assert (ratios[only_positive, 0] < 0).all()


def test_a_soft_label_counts_in_the_ratios_by_its_share() -> None:
    texts = ["great day", "awful day", "lovely", "lovely"]
    labels = ["pos", "neg", "pos", "neg"]
    # "lovely" is 90 % positive by the teacher: its n-grams lean positive, not even.
    ratios = train.log_count_ratios(train.matrix(texts), labels, ("neg", "pos"), [1, 1, 0.9, 0.1])
    lovely_only = sorted(
        set(train.matrix(["lovely"]).indices) - set(train.matrix(texts[:2]).indices)
    )
    assert lovely_only
    assert (ratios[lovely_only, 1] > 0).all()
    assert (ratios[lovely_only, 0] < 0).all()


def test_log_count_ratio_fit_separates_a_toy_task() -> None:
    texts = ["i love it", "love love this", "so good", "i hate it", "hate this", "so bad"] * 5
    labels = ["positive", "positive", "positive", "negative", "negative", "negative"] * 5
    data = train.examples([{"text": t} for t in texts], lambda _: "")
    data = train.Examples(texts, labels, data.weights, data.shares)
    weights, bias = train.fit_log_count_ratio(data, ("negative", "positive"), 1e-4)
    scores = np.asarray(train.matrix(["love it", "hate it"]) @ weights) + bias
    assert scores.argmax(axis=1).tolist() == [1, 0]


def test_a_model_with_a_fine_block_survives_saving(tmp_path: Path) -> None:
    from relais.nlp.features import FeatureConfig
    from relais.nlp.model import FineBlock, Head, Model, load, save

    rng = np.random.default_rng(0)
    heads = {"a": Head("a", ("x", "y"), 0), "b": Head("b", ("x", "y", "z"), 2)}
    fine = FineBlock(12, 2, rng.normal(size=(1 << 12, 3)).astype(np.float32))
    coarse = rng.normal(size=(1 << 10, 5)).astype(np.float32)
    coarse[:, 2:] = 0.0
    model = Model("v", FeatureConfig(10), heads, coarse, np.zeros(5, np.float32), fine)
    save(model, {}, tmp_path)
    loaded = load(tmp_path)
    assert loaded.fine is not None
    assert loaded.fine.bits == 12
    texts = ["so good", "awful service", "bof"]
    # int16 storage: scores agree to a small fraction of the weights' range.
    assert np.allclose(loaded.score_texts(texts), model.score_texts(texts), atol=1e-3)
    assert model.score_texts(texts)[:, 2:].any()


def test_the_rows_of_a_soft_label_become_one_post_with_its_distribution() -> None:
    hard = train.examples([{"text": "fine"}, {"text": "fine"}], lambda r: "b", weight=2.0)
    soft = train.soft_examples(["meh"], np.array([[0.25, 0.75]]), ("a", "b"), 3.0)
    texts, targets, weights = train.posts_with_targets(hard + soft, ("a", "b"))
    # Two identical consecutive hard rows count as one post of twice the weight.
    assert texts == ["fine", "meh"]
    assert np.allclose(targets, [[0.0, 1.0], [0.25, 0.75]])
    assert np.allclose(weights, [4.0, 3.0])
