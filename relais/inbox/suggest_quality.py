"""Measuring suggested replies on held-out real threads of the shipped sandbox sets.

For each brand account, its (customer message, brand reply) pairs are split by time: the
oldest 80 % build the index, the newest 20 % are the questions. A suggestion set *hits* when
the brand's actual reply is among the three (same template once names, addressee, links and
signature are set aside), and is *close* when one suggestion has a cosine similarity of at
least ``CLOSE_SIMILARITY`` with the actual reply (word TF-IDF fitted on the brand's replies).
The baseline suggests the brand's three most frequent recent replies to everyone.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from sklearn.feature_extraction.text import TfidfVectorizer

from relais.inbox.suggest import Pair, ReplyIndex, template_of
from relais.sandbox.dataset import load_rows

CLOSE_SIMILARITY = 0.5
TRAIN_SHARE = 0.8
MIN_PAIRS = 25
NOISE = re.compile(r"https?://\S+|\{\w+\}|\^")
NON_WORD = re.compile(r"\W+")


@dataclass(frozen=True)
class Quality:
    dataset: str
    questions: int
    brands: int
    hit_at_3: float
    close_at_3: float
    baseline_hit_at_3: float
    baseline_close_at_3: float
    p50_ms: float
    p95_ms: float


def dataset_pairs(name: str) -> dict[str, list[tuple[datetime, Pair]]]:
    """Brand replies to customers in a shipped set, by brand handle, with their time."""
    rows = load_rows(name).rows
    by_id = {row.id: row for row in rows}
    pairs: dict[str, list[tuple[datetime, Pair]]] = defaultdict(list)
    for row in rows:
        parent = by_id.get(row.in_reply_to or "")
        if row.author.is_brand and parent is not None and not parent.author.is_brand:
            pairs[row.author.handle].append(
                (row.time, Pair(parent.text, row.text, parent.author.name))
            )
    return pairs


def _normal(text: str) -> str:
    return NON_WORD.sub(" ", NOISE.sub("", text.lower())).strip()


def evaluate(name: str) -> Quality:
    asked = hits = close = base_hits = base_close = 0
    latencies: list[float] = []
    brands = 0
    for items in dataset_pairs(name).values():
        if len(items) < MIN_PAIRS:
            continue
        brands += 1
        items.sort(key=lambda item: item[0])
        cut = int(len(items) * TRAIN_SHARE)
        train, test = [p for _, p in items[:cut]], [p for _, p in items[cut:]]
        index = ReplyIndex(train)
        replies = TfidfVectorizer(sublinear_tf=True).fit(
            [_normal(template_of(p.answer, p.customer_name)) for _, p in items]
        )
        recent = Counter(template_of(p.answer, p.customer_name) for p in train[-200:])
        baseline = [template for template, _count in recent.most_common(3)]
        for pair in test:
            started = time.perf_counter()
            suggested = [s.template for s in index.suggest(pair.question, k=3)]
            latencies.append((time.perf_counter() - started) * 1000)
            actual = _normal(template_of(pair.answer, pair.customer_name))
            asked += 1
            hits += actual in {_normal(t) for t in suggested}
            base_hits += actual in {_normal(t) for t in baseline}
            close += _best_similarity(replies, actual, suggested) >= CLOSE_SIMILARITY
            base_close += _best_similarity(replies, actual, baseline) >= CLOSE_SIMILARITY
    latencies.sort()
    return Quality(
        dataset=name,
        questions=asked,
        brands=brands,
        hit_at_3=round(hits / asked, 3),
        close_at_3=round(close / asked, 3),
        baseline_hit_at_3=round(base_hits / asked, 3),
        baseline_close_at_3=round(base_close / asked, 3),
        p50_ms=round(latencies[len(latencies) // 2], 2),
        p95_ms=round(latencies[int(len(latencies) * 0.95)], 2),
    )


def _best_similarity(replies: TfidfVectorizer, actual: str, suggested: list[str]) -> float:
    if not suggested:
        return 0.0
    vectors = replies.transform([actual, *(_normal(t) for t in suggested)])
    return float((vectors[0] @ vectors[1:].T).toarray().max())
