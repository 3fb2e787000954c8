"""Rebuild relais/publishing/data/ from ../shared/data (developer-only; the product never reads it).

- audience_graph.npz: the follow graph among the followers of one brand account (MIT), as
  compressed sparse rows: the followers of node ``u`` are ``followers[indptr[u]:indptr[u + 1]]``.
- calibration.json: statistics of real repost cascades (Twitter15/16 propagation trees): the
  share of forwards at each depth, the delay between a
  forward and the one it came from, and cascade sizes. Only these aggregates are shipped.

Usage: .venv/bin/python tools/build_audience_data.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "relais" / "publishing" / "data"
GRAPH = "bofa_careers"
QUANTILES = 101
MAX_DEPTH = 6


def build_graph(shared: Path) -> dict[str, int]:
    with gzip.open(
        shared / "twitter-brand-follower-graphs" / "brand_follower_nodes.tsv.gz", "rt"
    ) as f:
        nodes = sorted(
            int(r["node_id"]) for r in csv.DictReader(f, delimiter="\t") if r["graph"] == GRAPH
        )
    index = {node: position for position, node in enumerate(nodes)}
    followers: dict[int, list[int]] = defaultdict(list)
    with gzip.open(
        shared / "twitter-brand-follower-graphs" / "brand_follower_edges.tsv.gz", "rt"
    ) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["graph"] == GRAPH:
                # Read as "src follows dst": dst's followers are the srcs (see SOURCE.md).
                followers[index[int(row["dst"])]].append(index[int(row["src"])])
    indptr = np.zeros(len(nodes) + 1, dtype=np.int64)
    flat: list[int] = []
    for node in range(len(nodes)):
        flat.extend(sorted(followers[node]))
        indptr[node + 1] = len(flat)
    np.savez_compressed(
        OUT / "audience_graph.npz",
        indptr=indptr,
        followers=np.asarray(flat, dtype=np.int32),
    )
    return {"nodes": len(nodes), "edges": len(flat)}


def cascade_statistics(shared: Path) -> dict[str, object]:
    depth_counts: Counter[int] = Counter()
    delays: list[float] = []
    sizes: list[int] = []
    folder = shared / "twitter15-16-propagation-trees"
    for name in ("twitter15", "twitter16"):
        with gzip.open(folder / f"{name}_propagation_edges.tsv.gz", "rt") as f:
            reader = csv.DictReader(f, delimiter="\t")
            cascades: dict[str, list[dict[str, str]]] = defaultdict(list)
            for row in reader:
                cascades[row["cascade_root_tweet_id"]].append(row)
        for edges in cascades.values():
            depth_of = {}
            size = 0
            for edge in edges:
                if edge["parent_uid"] == "ROOT":
                    depth_of[(edge["child_uid"], edge["child_tweet_id"])] = 0
                    continue
                parent = depth_of.get((edge["parent_uid"], edge["parent_tweet_id"]), 0)
                depth = parent + 1
                depth_of[(edge["child_uid"], edge["child_tweet_id"])] = depth
                depth_counts[min(depth, MAX_DEPTH)] += 1
                delay = float(edge["child_delay_min"]) - float(edge["parent_delay_min"])
                if delay >= 0:
                    delays.append(delay)
                size += 1
            sizes.append(size)
    total = sum(depth_counts.values())
    probabilities = np.linspace(0, 1, QUANTILES)
    return {
        "cascades": len(sizes),
        "forwards": total,
        "depth_share": {str(d): round(depth_counts[d] / total, 5) for d in range(1, MAX_DEPTH + 1)},
        "delay_minutes_quantiles": [round(float(q), 3) for q in np.quantile(delays, probabilities)],
        "cascade_size_quantiles": [int(q) for q in np.quantile(sizes, probabilities)],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    shared = parser.parse_args().shared
    OUT.mkdir(parents=True, exist_ok=True)
    graph = build_graph(shared)
    calibration = {"graph": graph, **cascade_statistics(shared)}
    (OUT / "calibration.json").write_text(json.dumps(calibration, indent=1) + "\n")
    print(json.dumps({k: v for k, v in calibration.items() if "quantiles" not in k}))


if __name__ == "__main__":
    main()
