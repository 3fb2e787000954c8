"""The hand-labelled intent/reason training set must never leak into the gold sets it is
evaluated on, and must use only the labels of the labelling guide."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from relais.nlp import corpora, keywords


def test_hand_labelled_training_posts_are_disjoint_from_gold() -> None:
    gold = [row for name in corpora.GOLD_SETS for row in corpora.read_gold(name)]
    labelled = corpora.hand_labelled()
    gold_texts = {row["text"].strip().lower() for row in gold}
    assert not {row["id"] for row in labelled} & {row["id"] for row in gold}
    assert not {row["text"].strip().lower() for row in labelled} & gold_texts


def test_hand_labels_follow_the_guide() -> None:
    labelled = corpora.hand_labelled()
    assert len(labelled) >= 1400
    for row in labelled:
        assert row["intent"] in keywords.INTENTS
        if row["intent"] == "complaint":
            assert row["reason"] in keywords.REASONS
        else:
            assert row["reason"] is None


def test_training_inputs_are_hashed_for_the_artifacts() -> None:
    hashed = set(corpora.data_hashes())
    assert {
        "train_fr.jsonl",
        "train_en.jsonl",
        "unlabelled_en.jsonl.gz",
        "teacher_en.npz",
    } <= hashed


def test_no_sentiment_evaluation_tweet_is_among_the_unlabelled_ones() -> None:
    from relais.nlp.data_import import comparable

    evaluation = {comparable(row["text"]) for row in corpora.read("tweeteval_sentiment")}
    unlabelled = {comparable(row["text"]) for row in corpora.read(corpora.UNLABELLED_EN)}
    assert len(unlabelled) > 100_000
    assert not evaluation & unlabelled


def test_the_teacher_labelled_every_shipped_unlabelled_tweet() -> None:
    probabilities = corpora.teacher_probabilities()
    assert probabilities.shape == (len(corpora.read(corpora.UNLABELLED_EN)), 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=0.01)


def test_teacher_labels_of_another_unlabelled_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unlabelled = tmp_path / f"{corpora.UNLABELLED_EN}.jsonl.gz"
    unlabelled.write_bytes(gzip.compress(b'{"source": "x", "text": "great day"}\n'))
    labels = tmp_path / "teacher_en.npz"
    probs = np.array([[0.1, 0.2, 0.7]], dtype=np.float16)
    np.savez(labels, probs=probs, source_sha256=corpora.digest(unlabelled))
    monkeypatch.setattr(corpora, "DATA_DIR", tmp_path)
    monkeypatch.setattr(corpora, "TEACHER_EN", labels)
    assert corpora.teacher_probabilities().shape == (1, 3)
    unlabelled.write_bytes(gzip.compress(b'{"source": "x", "text": "awful day"}\n'))
    with pytest.raises(corpora.StaleTeacherLabelsError, match="re-run"):
        corpora.teacher_probabilities()


def test_the_shipped_artifacts_were_trained_on_the_shipped_data() -> None:
    """A changed corpus, teacher file or lexicon needs `relais nlp train` before it lands."""
    from relais.nlp import MODEL_VERSION
    from relais.nlp.model import ARTIFACT_DIR, META_FILE

    meta = json.loads((ARTIFACT_DIR / META_FILE).read_text())
    assert meta["version"] == MODEL_VERSION
    assert meta["data_sha256"] == corpora.data_hashes()
