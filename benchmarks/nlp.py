"""Relais enrichment against VADER, TextBlob, py3langid and lingua on the same test sets.

    .venv/bin/python benchmarks/nlp.py [--quick]

Prints a table, then ONE JSON object on the last line. Throughput is measured pinned to one
core, median of repeats. Peers are optional benchmark-only packages (see docs/nlp.md).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.metrics import accuracy_score, f1_score, recall_score

from relais.nlp import corpora, evaluate
from relais.nlp.enrich import enrich_with
from relais.nlp.model import ARTIFACT_DIR, shipped

Polarity = Callable[[str], float]
UMSAB_LANGS = ("ar", "de", "en", "es", "fr", "hi", "it", "pt")


def label(polarity: float, cut: float) -> str:
    return "positive" if polarity >= cut else "negative" if polarity <= -cut else "neutral"


def macro_recall(gold: list[str], predicted: list[str]) -> float:
    return float(recall_score(gold, predicted, average="macro"))


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    return float(f1_score(gold, predicted, average="macro"))


def peer_sentiment(name: str, polarity: Polarity, cut: float, quick: bool) -> dict[str, float]:
    sets = {
        "tweeteval_sentiment_macro_recall": (corpora.tweeteval("test"), macro_recall),
        "umsab_fr_macro_f1": (corpora.umsab("test", "fr"), macro_f1),
        "airline_accuracy": (corpora.airline("test"), accuracy_score),
    }
    figures = {}
    for key, (all_rows, metric) in sets.items():
        rows = all_rows[:2000] if quick else all_rows
        gold = [r["label"] for r in rows]
        predicted = [label(polarity(r["text"]), cut) for r in rows]
        figures[f"{name}_{key}"] = evaluate.percent(metric(gold, predicted))
    texts = evaluate.throughput_texts()[: 3000 if quick else 10000]
    figures[f"{name}_posts_per_second_one_core"] = evaluate.posts_per_second(
        lambda batch: [polarity(t) for t in batch], texts, repeats=3
    )
    return figures


def peers(quick: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        vader = SentimentIntensityAnalyzer()
        figures |= peer_sentiment(
            "vader", lambda t: vader.polarity_scores(t)["compound"], 0.05, quick
        )
    except ImportError:
        print("vaderSentiment not installed: skipped", file=sys.stderr)
    try:
        from textblob import TextBlob

        figures |= peer_sentiment("textblob", lambda t: TextBlob(t).sentiment.polarity, 0.05, quick)
    except ImportError:
        print("textblob not installed: skipped", file=sys.stderr)
    return figures | peer_langid(quick)


def peer_langid(quick: bool) -> dict[str, float]:
    rows = corpora.umsab("test")
    rows = rows[::4] if quick else rows
    gold = [r["lang"] for r in rows]
    figures: dict[str, float] = {}
    try:
        import py3langid

        py3langid.set_languages(list(UMSAB_LANGS))
        started = time.perf_counter()
        predicted = [py3langid.classify(r["text"])[0] for r in rows]
        figures["py3langid_restricted_8_accuracy"] = evaluate.percent(
            accuracy_score(gold, predicted)
        )
        figures["py3langid_posts_per_second"] = round(
            len(rows) / (time.perf_counter() - started), 1
        )
    except ImportError:
        print("py3langid not installed: skipped", file=sys.stderr)
    try:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        languages = [
            Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in UMSAB_LANGS
        ]
        detector = LanguageDetectorBuilder.from_languages(*languages).build()
        started = time.perf_counter()
        found = [detector.detect_language_of(r["text"]) for r in rows]
        predicted = [f.iso_code_639_1.name.lower() if f else "und" for f in found]
        figures["lingua_restricted_8_accuracy"] = evaluate.percent(accuracy_score(gold, predicted))
        figures["lingua_posts_per_second"] = round(len(rows) / (time.perf_counter() - started), 1)
    except ImportError:
        print("lingua not installed: skipped", file=sys.stderr)
    return figures


# Run in a fresh interpreter: RSS after importing the enrichment code (numpy, scipy), then after
# loading the artifacts and enriching one post (lazy tables built). The difference is what
# the models cost a worker; sklearn and the corpora are never imported on this path.
MEMORY_PROBE = """
import json
def rss_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
import relais.nlp.enrich as enrich
before = rss_mb()
enrich.enrich_texts(['warm-up post @brand #tag http://x.y'])
print(json.dumps({'before': before, 'after': rss_mb()}))
"""


def model_memory() -> dict[str, float]:
    root = Path(__file__).resolve().parent.parent
    output = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, check=True, cwd=root
    ).stdout
    probe = json.loads(output.strip().splitlines()[-1])
    return {
        "models_resident_memory_mb": round(probe["after"] - probe["before"], 1),
        "enrichment_process_resident_memory_mb": round(probe["after"], 1),
    }


def relais_figures(quick: bool) -> dict[str, float]:
    model = shipped()
    figures = evaluate.quality(model)
    texts = evaluate.throughput_texts()
    figures["posts_per_second_one_core"] = evaluate.posts_per_second(
        lambda batch: enrich_with(model, batch),
        texts[:6000] if quick else texts,
        repeats=3 if quick else 7,
    )
    figures |= model_memory()
    figures["benchmark_peak_resident_memory_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    figures["artifact_mb"] = round(sum(p.stat().st_size for p in ARTIFACT_DIR.iterdir()) / 2**20, 2)
    return figures


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    figures = relais_figures(quick)
    figures |= peers(quick)
    for name, value in figures.items():
        print(f"{name:50} {value}")
    print(
        json.dumps({"model_version": shipped().version, "quick": quick, **figures}, sort_keys=True)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
