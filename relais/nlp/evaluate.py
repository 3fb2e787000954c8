"""Quality and speed figures of a model on the evaluation sets (never on training data)."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sklearn.metrics import accuracy_score, f1_score, recall_score

from relais.nlp import corpora, keywords
from relais.nlp.enrich import Enrichment, enrich_with
from relais.nlp.model import Model

Scorer = Callable[[list[str]], list[Enrichment]]


def percent(value: float) -> float:
    return round(100.0 * value, 2)


def tweeteval_macro_recall(enrich: Scorer) -> float:
    rows = corpora.tweeteval("test")
    predicted = [e.sentiment for e in enrich([r["text"] for r in rows])]
    return percent(recall_score([r["label"] for r in rows], predicted, average="macro"))


def umsab_french_macro_f1(enrich: Scorer) -> float:
    rows = corpora.umsab("test", "fr")
    predicted = [e.sentiment for e in enrich([r["text"] for r in rows])]
    return percent(f1_score([r["label"] for r in rows], predicted, average="macro"))


def airline_accuracy(enrich: Scorer) -> float:
    rows = corpora.airline("test")
    predicted = [e.sentiment for e in enrich([r["text"] for r in rows])]
    return percent(accuracy_score([r["label"] for r in rows], predicted))


def langid_accuracy(enrich: Scorer) -> float:
    rows = corpora.umsab("test")
    predicted = [e.lang for e in enrich([r["text"] for r in rows])]
    return percent(accuracy_score([r["lang"] for r in rows], predicted))


def gold_rows() -> list[corpora.Row]:
    return [row for name in corpora.GOLD_SETS for row in corpora.read_gold(name)]


def intent_reason_f1(
    predict: Callable[[list[str]], list[tuple[str, str | None]]],
) -> dict[str, float]:
    """Macro-F1 of intent on every gold post and of reason on the gold complaints, per language."""
    figures: dict[str, float] = {}
    for name in corpora.GOLD_SETS:
        rows = corpora.read_gold(name)
        predicted = predict([r["text"] for r in rows])
        lang = name.removeprefix("gold_")
        figures[f"intent_{lang}"] = percent(
            f1_score([r["intent"] for r in rows], [p[0] for p in predicted], average="macro")
        )
        complaints = [
            (r, p) for r, p in zip(rows, predicted, strict=True) if r["intent"] == "complaint"
        ]
        figures[f"reason_{lang}"] = percent(
            f1_score(
                [r["reason"] for r, _ in complaints],
                [p[1] or "other" for _, p in complaints],
                average="macro",
            )
        )
    return figures


def model_intent_reason(model: Model) -> Callable[[list[str]], list[tuple[str, str | None]]]:
    """The model's reason head is scored on every gold complaint, intent right or not."""
    from relais.nlp.enrich import _argmax_labels

    def predict(texts: list[str]) -> list[tuple[str, str | None]]:
        scores = model.score_texts(texts)
        return list(
            zip(
                _argmax_labels(model, scores, "intent"),
                _argmax_labels(model, scores, "reason"),
                strict=True,
            )
        )

    return predict


def keyword_intent_reason(texts: list[str]) -> list[tuple[str, str | None]]:
    return [(keywords.intent(t), keywords.reason(t)) for t in texts]


@contextmanager
def one_core() -> Iterator[None]:
    """Pin this process to a single CPU while measuring throughput."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(previous)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def throughput_texts() -> list[str]:
    """Real posts: TweetEval test plus the French and English brand traffic."""
    rows = corpora.tweeteval("test") + corpora.read("traffic_fr") + corpora.read("traffic_en")
    return [r["text"] for r in rows]


def posts_per_second(
    enrich: Callable[[list[str]], Sequence[object]],
    texts: list[str],
    repeats: int = 5,
    batch: int = 1000,
) -> float:
    """Median over repeats of a full pass in batches (the way the pipeline calls enrichment)."""
    enrich(texts[:batch])  # warm-up: lazy loading and table building are not steady state
    rates = []
    with one_core():
        for _ in range(repeats):
            started = time.perf_counter()
            for start in range(0, len(texts), batch):
                enrich(texts[start : start + batch])
            rates.append(len(texts) / (time.perf_counter() - started))
    return round(statistics.median(rates), 1)


def quality(model: Model) -> dict[str, float]:
    def enrich(texts: list[str]) -> list[Enrichment]:
        return enrich_with(model, texts)

    figures = {
        "tweeteval_sentiment_macro_recall": tweeteval_macro_recall(enrich),
        "umsab_fr_macro_f1": umsab_french_macro_f1(enrich),
        "airline_accuracy": airline_accuracy(enrich),
        "langid_accuracy": langid_accuracy(enrich),
    }
    if all((corpora.GOLD_DIR / f"{name}.jsonl").exists() for name in corpora.GOLD_SETS):
        figures |= {
            f"{k}_macro_f1": v for k, v in intent_reason_f1(model_intent_reason(model)).items()
        }
        figures |= {
            f"keyword_{k}_macro_f1": v for k, v in intent_reason_f1(keyword_intent_reason).items()
        }
    return figures
