"""Exact unique reach of a 10,000-share cascade, beside the naive sum and a Python set union.

Usage: .venv/bin/python benchmarks/reach.py [--quick] [--shares N]

The cascade is simulated on the shipped REAL follower graph (the followers of a brand account,
relais/publishing/data/) with depths and delays calibrated on real cascades; the first N shares
in time order are kept. Three ways to count the audience of those sharers are timed in the same
run: the bitset union Relais uses (exact), a Python set union (exact, naive) and the sum of
follower counts (what tools that ignore overlap report: an upper bound). Medians of repeats.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relais.publishing.audience import audience_graph, calibration, simulate_cascade
from relais.publishing.reach import FollowerGraph

SEED = 20161024


T = TypeVar("T")


def median_ms(work: Callable[[], T], repeats: int) -> tuple[float, T]:
    timings = []
    for _repeat in range(repeats):
        start = time.perf_counter()
        result = work()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings), result


def python_set_union(graph: FollowerGraph, sharers: np.ndarray) -> int:
    seen: set[int] = set()
    for node in sharers.tolist():
        seen.update(graph.followers_of(node).tolist())
    return len(seen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--shares", type=int, default=10_000)
    args = parser.parse_args()
    repeats = 5 if args.quick else 21
    graph = audience_graph()
    cascade = simulate_cascade(
        graph, calibration(), int(args.shares * 1.1), np.random.default_rng(SEED)
    )
    if len(cascade) < args.shares:
        sys.exit(f"the graph gave a cascade of {len(cascade)} shares only")
    sharers = np.asarray([step.node for step in cascade[: args.shares]], dtype=np.int64)

    unique_ms, reach = median_ms(lambda: graph.reach(sharers), repeats)
    set_ms, set_unique = median_ms(lambda: python_set_union(graph, sharers), repeats)
    sum_ms, summed = median_ms(lambda: int(graph.follower_counts(sharers).sum()), repeats)
    assert reach.unique == set_unique, (reach, set_unique)
    depths = np.bincount([step.depth for step in cascade[: args.shares]]).tolist()[1:]
    print(f"graph: {graph.size} accounts, {graph.followers.size} follow edges (real)")
    print(f"cascade: {args.shares} shares, depths 1..{len(depths)}: {depths}")
    print(f"exact unique reach (bitset): {reach.unique} in {unique_ms:.2f} ms")
    print(f"exact unique reach (Python set): {set_unique} in {set_ms:.2f} ms")
    print(f"sum of followers (upper bound): {summed} in {sum_ms:.3f} ms")
    print(
        json.dumps(
            {
                "shares": args.shares,
                "unique_reach": reach.unique,
                "upper_bound_sum": summed,
                "unique_reach_ms": round(unique_ms, 3),
                "python_set_union_ms": round(set_ms, 3),
                "naive_sum_ms": round(sum_ms, 4),
                "repeats": repeats,
            }
        )
    )


if __name__ == "__main__":
    main()
