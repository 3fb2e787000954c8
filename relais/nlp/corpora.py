"""Readers for the corpora shipped in ``relais/nlp/data`` and the gold sets in ``relais/nlp/gold``.

Only training and evaluation read these; enrichment never does.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).parent / "data"
GOLD_DIR = Path(__file__).parent / "gold"
LABELLED_DIR = Path(__file__).parent / "labelled"  # hand-labelled intent/reason TRAINING posts
CORPORA = (
    "semeval_en", "tweeteval_sentiment", "umsab", "airline", "traffic_fr", "traffic_en",
    "unlabelled_en",
)  # fmt: skip
UNLABELLED_EN = "unlabelled_en"  # tweets without sentiment labels; the teacher labels them
TEACHER_EN = DATA_DIR / "teacher_en.npz"  # written by tools/nlp_teacher.py
GOLD_SETS = ("gold_fr", "gold_en")
LABELLED_SETS = ("train_fr", "train_en")

Row = dict[str, Any]


def read(name: str) -> list[Row]:
    with gzip.open(DATA_DIR / f"{name}.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _read_lines(path: Path) -> list[Row]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read_gold(name: str) -> list[Row]:
    return _read_lines(GOLD_DIR / f"{name}.jsonl")


def hand_labelled() -> list[Row]:
    """The intent/reason training posts, labelled by hand like the gold sets and disjoint
    from them (see docs/nlp.md)."""
    return [row for name in LABELLED_SETS for row in _read_lines(LABELLED_DIR / f"{name}.jsonl")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_hashes() -> dict[str, str]:
    """sha256 of every input file, recorded in the artifacts' metadata."""
    files = [DATA_DIR / f"{name}.jsonl.gz" for name in CORPORA]
    files += [
        GOLD_DIR / f"{name}.jsonl" for name in GOLD_SETS if (GOLD_DIR / f"{name}.jsonl").exists()
    ]
    files += [LABELLED_DIR / f"{name}.jsonl" for name in LABELLED_SETS]
    files += [TEACHER_EN, DATA_DIR / "lexicon_fr.tsv", DATA_DIR / "vectors_fr.npz"]
    return {path.name: digest(path) for path in files}


class StaleTeacherLabelsError(RuntimeError):
    """The teacher's probabilities were computed from another unlabelled corpus."""


def teacher_probabilities() -> np.ndarray:
    """(unlabelled posts, 3) teacher probabilities of negative / neutral / positive, in the
    order of the unlabelled corpus they were computed from."""
    with np.load(TEACHER_EN) as stored:
        probabilities, source_sha256 = stored["probs"], str(stored["source_sha256"])
    if source_sha256 != digest(DATA_DIR / f"{UNLABELLED_EN}.jsonl.gz"):
        raise StaleTeacherLabelsError(
            f"{TEACHER_EN.name} labels another {UNLABELLED_EN}.jsonl.gz: "
            "re-run `tools/nlp_teacher.py label` (docs/nlp.md)"
        )
    return probabilities.astype(np.float64)


def tweeteval(split: str) -> list[Row]:
    return [row for row in read("tweeteval_sentiment") if row["split"] == split]


def semeval_train() -> list[Row]:
    """The SemEval pool minus the tweets that TweetEval uses for validation."""
    return [row for row in read("semeval_en") if not row["in_tweeteval_val"]]


def umsab(split: str, lang: str | None = None) -> list[Row]:
    return [
        row
        for row in read("umsab")
        if row["split"] == split and (lang is None or row["lang"] == lang)
    ]


def airline(split: str) -> list[Row]:
    return [row for row in read("airline") if row["split"] == split]
