"""How the heads' outputs become an enrichment: language rules and the sentiment blend."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from relais.nlp.enrich import _languages, _sentiments, enrich_with
from relais.nlp.model import shipped

SENTIMENTS = ("negative", "neutral", "positive")


def test_scripts_decide_their_languages() -> None:
    texts = [
        "Привет, как дела?",
        "こんにちは世界",
        "안녕하세요",
        "שלום לכולם",
        "Καλημέρα σας",
        "@a #b",
    ]
    model = shipped()
    languages = _languages(model, texts, model.probabilities(model.score_texts(texts), "lang"))
    assert languages == ["ru", "ja", "ko", "he", "el", "und"]


def test_sentiment_blends_the_heads_by_language_probability() -> None:
    model = shipped()
    texts = ["I love this phone", "c'est vraiment nul", "ye movie bahut achhi thi yaar"]
    scores = model.score_texts(texts)
    languages = model.probabilities(scores, "lang")
    labels, polarity = _sentiments(model, ["en", "fr", "hi"], scores, languages)
    lang_labels = model.heads["lang"].labels
    english = languages[:, [lang_labels.index("en")]]
    french = languages[:, [lang_labels.index("fr")]]
    expected = (
        english * model.probabilities(scores, "sentiment_en")
        + french * model.probabilities(scores, "sentiment_fr")
        + (1 - english - french) * model.probabilities(scores, "sentiment_multi")
    )
    assert labels == [SENTIMENTS[i] for i in expected.argmax(axis=1)]
    assert np.allclose(polarity, (expected[:, 2] - expected[:, 0]).round(4), atol=1e-4)


def test_posts_of_other_scripts_get_the_multilingual_head() -> None:
    model = shipped()
    texts = ["Привет, как дела?"]
    scores = model.score_texts(texts)
    labels, polarity = _sentiments(model, ["ru"], scores, model.probabilities(scores, "lang"))
    multi = model.probabilities(scores, "sentiment_multi")[0]
    assert labels == [SENTIMENTS[int(multi.argmax())]]
    assert polarity[0] == round(float(multi[2] - multi[0]), 4)


def test_enrichment_fields_are_plain_python_values() -> None:
    (result,) = enrich_with(shipped(), ["@Freebox toujours en panne depuis hier !"])
    assert isinstance(result.sentiment_score, float)
    assert result.lang == "fr"


def test_enrichment_never_imports_the_training_libraries() -> None:
    """sklearn alone would add about 70 MB to every worker that enriches posts."""
    probe = "import sys, relais.nlp.enrich; print('sklearn' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
