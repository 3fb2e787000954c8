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
