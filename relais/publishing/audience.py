"""The sandbox audience: SIMULATED followers forwarding a post along a REAL follower graph.

Who can forward from whom comes from a real follow graph among a brand's followers (shipped in
``data/``); how many forward at each depth and how long each forward takes after the one it came
from are drawn from real repost cascades (Twitter15/16), see ``data/SOURCE.md``. Nothing here is
a real person's action: everything this module produces is stored with ``simulated=True``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from relais.publishing.reach import FollowerGraph

DATA = Path(__file__).resolve().parent / "data"
# Real cascades have a years-long tail; a forward later than this is outside any campaign.
LONGEST_DELAY_MINUTES = 7 * 24 * 60.0


@dataclass(frozen=True)
class Calibration:
    depth_share: dict[int, float]
    delay_minutes_quantiles: list[float]
    cascade_size_quantiles: list[int]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            depth_share={int(depth): share for depth, share in data["depth_share"].items()},
            delay_minutes_quantiles=list(data["delay_minutes_quantiles"]),
            cascade_size_quantiles=list(data["cascade_size_quantiles"]),
        )


@cache
def audience_graph() -> FollowerGraph:
    with np.load(DATA / "audience_graph.npz") as data:
        return FollowerGraph(indptr=data["indptr"], followers=data["followers"])


@cache
def calibration() -> Calibration:
    return Calibration.from_json(json.loads((DATA / "calibration.json").read_text()))


@dataclass(frozen=True)
class SimulatedForward:
    node: int
    parent: int | None  # None: forwarded the brand's post itself
    depth: int
    after: timedelta  # since the brand's post, in real (uncompressed) time


def handle_of(node: int) -> str:
    """A simulated follower's name: the graph's ids are anonymised, and so is this."""
    return f"sim-follower-{node}"


def draw_size(rng: np.random.Generator, calib: Calibration) -> int:
    """A cascade size drawn from the real cascade sizes' distribution."""
    return int(np.interp(rng.uniform(0, 100), np.arange(101), calib.cascade_size_quantiles))


def draw_delays(rng: np.random.Generator, calib: Calibration, count: int) -> np.ndarray:
    """Delays from the real distribution, restricted to the campaign-long part of it."""
    quantiles = np.asarray(calib.delay_minutes_quantiles)
    positions = np.arange(quantiles.size)
    highest = float(np.interp(LONGEST_DELAY_MINUTES, quantiles, positions))
    return np.interp(rng.uniform(0, highest, count), positions, quantiles)


def simulate_cascade(
    graph: FollowerGraph, calib: Calibration, size: int, rng: np.random.Generator
) -> list[SimulatedForward]:
    """Depth by depth: depth 1 among the brand's followers, deeper ones among their followers."""
    forwarded = np.zeros(graph.size, dtype=np.bool_)
    minutes = np.zeros(graph.size)
    result: list[SimulatedForward] = []
    previous = np.empty(0, dtype=np.int64)
    for depth in sorted(calib.depth_share):
        wanted = round(size * calib.depth_share[depth])
        if depth == 1:
            candidates = rng.permutation(graph.size)
            parents = np.full(candidates.size, -1)
        else:
            lengths = graph.follower_counts(previous)
            candidates = graph.followers_of_all(previous).astype(np.int64)
            parents = np.repeat(previous, lengths)
            order = rng.permutation(candidates.size)
            candidates, parents = candidates[order], parents[order]
        fresh = ~forwarded[candidates]
        candidates, parents = candidates[fresh], parents[fresh]
        candidates, first = np.unique(candidates, return_index=True)
        parents = parents[first]
        if candidates.size == 0 or wanted == 0:
            break
        chosen = rng.permutation(candidates.size)[:wanted]
        nodes, their_parents = candidates[chosen], parents[chosen]
        delays = draw_delays(rng, calib, nodes.size)
        base = np.where(their_parents >= 0, minutes[np.maximum(their_parents, 0)], 0.0)
        minutes[nodes] = base + delays
        forwarded[nodes] = True
        result += [
            SimulatedForward(
                node=int(node),
                parent=int(parent) if parent >= 0 else None,
                depth=depth,
                after=timedelta(minutes=float(minutes[node])),
            )
            for node, parent in zip(nodes, their_parents, strict=True)
        ]
        previous = nodes
    return sorted(result, key=lambda forward: forward.after)
