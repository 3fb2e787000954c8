"""Potential reach of a cascade: the DEDUPLICATED union of the forwarders' followers.

Commercial tools add up follower counts, so a person following three forwarders is counted
three times. When follower lists are known, the union is exact: follower ids are marked in a
bitset (one byte per account of the audience, numpy), which costs one pass over the lists. When
some lists are unknown, only the sum of follower counts can be given, labelled an upper bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

IdArray = NDArray[np.integer]


@dataclass(frozen=True)
class Reach:
    forwarders: int
    upper_bound: int  # the sum of follower counts: what counting without overlap removal gives
    unique: int | None  # None unless every forwarder's followers are known

    @property
    def exact(self) -> bool:
        return self.unique is not None

    @property
    def overlap(self) -> int:
        return self.upper_bound - self.unique if self.unique is not None else 0


def union_size(follower_lists: Sequence[IdArray], universe: int | None = None) -> int:
    """Distinct ids over every list; ids in [0, universe) use a bitset, others a sort."""
    if not follower_lists:
        return 0
    ids = np.concatenate(follower_lists)
    if universe is None:
        return int(np.unique(ids).size)
    marked = np.zeros(universe, dtype=np.bool_)
    marked[ids] = True
    return int(np.count_nonzero(marked))


@dataclass(frozen=True)
class FollowerGraph:
    """Followers of each account as compressed rows (ids are dense, 0..size-1)."""

    indptr: NDArray[np.int64]
    followers: NDArray[np.int32]

    @property
    def size(self) -> int:
        return len(self.indptr) - 1

    def followers_of(self, node: int) -> NDArray[np.int32]:
        return self.followers[self.indptr[node] : self.indptr[node + 1]]

    def follower_counts(self, nodes: IdArray) -> NDArray[np.int64]:
        return self.indptr[nodes + 1] - self.indptr[nodes]

    def followers_of_all(self, nodes: IdArray) -> NDArray[np.int32]:
        """Every follower row of ``nodes`` concatenated, gathered without a Python loop."""
        starts = self.indptr[nodes]
        lengths = self.indptr[nodes + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, dtype=np.int32)
        row_offsets = np.cumsum(lengths) - lengths
        positions = np.arange(total) - np.repeat(row_offsets - starts, lengths)
        return self.followers[positions]

    def reach(self, forwarders: IdArray) -> Reach:
        nodes = np.unique(np.asarray(forwarders, dtype=np.int64))
        return Reach(
            forwarders=int(nodes.size),
            upper_bound=int(self.follower_counts(nodes).sum()),
            unique=union_size([self.followers_of_all(nodes)], universe=self.size),
        )


def reach_of_counts(follower_counts: Sequence[int | None]) -> Reach:
    """Follower lists unknown: the sum of the counts we have is an upper bound, not a reach."""
    return Reach(
        forwarders=len(follower_counts),
        upper_bound=sum(count or 0 for count in follower_counts),
        unique=None,
    )
