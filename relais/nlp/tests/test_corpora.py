"""The hand-labelled intent/reason training set must never leak into the gold sets it is
evaluated on, and must use only the labels of the labelling guide."""

from __future__ import annotations

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
    assert {"train_fr.jsonl", "train_en.jsonl"} <= set(corpora.data_hashes())
