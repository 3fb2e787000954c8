import numpy as np

from relais.publishing.audience import audience_graph
from relais.publishing.reach import FollowerGraph, reach_of_counts, union_size


def small_graph() -> FollowerGraph:
    # followers: 0 <- {1, 2}; 1 <- {2, 3}; 2 <- {}; 3 <- {0, 1, 2}
    return FollowerGraph(
        indptr=np.array([0, 2, 4, 4, 7]), followers=np.array([1, 2, 2, 3, 0, 1, 2], dtype=np.int32)
    )


def test_reach_removes_the_overlap_that_a_sum_counts_twice():
    reach = small_graph().reach(np.array([0, 1, 3]))
    assert (reach.unique, reach.upper_bound, reach.overlap) == (4, 7, 3)
    assert reach.exact


def test_union_size_matches_a_python_set_with_and_without_a_universe():
    rng = np.random.default_rng(0)
    lists = [rng.integers(0, 5000, rng.integers(0, 300)) for _ in range(200)]
    expected = len(set().union(*(set(a.tolist()) for a in lists)))
    assert union_size(lists) == union_size(lists, universe=5000) == expected


def test_the_shipped_graph_gives_the_same_reach_as_a_naive_union():
    graph = audience_graph()
    nodes = np.random.default_rng(1).choice(graph.size, 2000, replace=False)
    naive = set()
    for node in nodes:
        naive.update(graph.followers_of(int(node)).tolist())
    assert graph.reach(nodes).unique == len(naive)


def test_without_follower_lists_the_sum_is_only_an_upper_bound():
    reach = reach_of_counts([120, None, 30])
    assert (reach.unique, reach.upper_bound, reach.exact) == (None, 150, False)
