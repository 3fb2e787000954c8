from __future__ import annotations

import numpy as np

from relais.nlp.entities import extract, extract_batch
from relais.nlp.features import FeatureConfig, featurise


def test_entities_of_a_care_post() -> None:
    found = extract("@Freebox ma Freebox Pop coupe encore #panne https://t.co/x1. merci @user_2")
    assert found == {
        "handles": ["Freebox", "user_2"],
        "hashtags": ["panne"],
        "links": ["https://t.co/x1"],
        "products": ["Freebox Pop"],
    }


def test_handle_inside_link_is_not_a_handle() -> None:
    assert extract("see https://x.com/@brand#top")["handles"] == []


def test_batch_keeps_posts_apart() -> None:
    first, second = extract_batch(["@a line\nbreak", "#b iphone"])
    assert first["handles"] == ["a"]
    assert first["hashtags"] == []
    assert second["hashtags"] == ["b"]
    assert second["products"] == ["iPhone"]


def test_features_do_not_depend_on_batch_or_process() -> None:
    config = FeatureConfig(bits=18)
    alone = featurise(["Panne internet 😡"], config)
    together = featurise(["something else", "Panne internet 😡"], config)[1]
    alone.sum_duplicates()
    together.sum_duplicates()
    assert np.array_equal(alone.indices, together.indices)
    assert np.allclose(alone.data, together.data)
    again = featurise(["Panne internet 😡"], config)
    again.sum_duplicates()
    assert np.array_equal(alone.indices, again.indices)


def test_empty_batch_has_no_rows() -> None:
    assert featurise([]).shape[0] == 0


def test_longest_product_alias_wins_and_words_stay_whole() -> None:
    assert extract("ma freebox pop et la freebox")["products"] == ["Freebox Pop", "Freebox"]
    assert extract("freebox popcorn")["products"] == ["Freebox"]
    assert extract("xbox one x")["products"] == ["Xbox One"]
    assert extract("superfreebox")["products"] == []


def _features(text: str) -> set[int]:
    matrix = featurise([text], FeatureConfig(bits=18))
    return set(matrix.indices.tolist())


def test_long_repeats_and_white_space_do_not_make_new_features() -> None:
    assert _features("soooooooo  good!!!!!!!") == _features("sooo good!!!")
    assert _features("  hello \t world ") == _features("hello world")


def test_repeats_never_merge_posts() -> None:
    matrix = featurise(["", "", "", "", "aaaaaa"], FeatureConfig(bits=18))
    assert matrix.shape[0] == 5
    assert set(matrix[4].indices.tolist()) == _features("aaa")
    assert set(matrix[0].indices.tolist()) == _features("")


def test_coarse_features_are_the_fine_ones_shifted() -> None:
    from relais.nlp.features import coarsen

    texts = ["Panne internet 😡 @Free", "great flight, thanks @united!", ""]
    fine = coarsen(featurise(texts, FeatureConfig(bits=20)), 18)
    coarse = featurise(texts, FeatureConfig(bits=18))
    fine.sum_duplicates()
    coarse.sum_duplicates()
    assert fine.shape == coarse.shape
    assert np.array_equal(fine.indptr, coarse.indptr)
    assert np.array_equal(fine.indices, coarse.indices)
    assert np.allclose(fine.data, coarse.data)
