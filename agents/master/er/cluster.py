"""Clusters: connected components over the links, with a guard against chains of weak links.

Connected components make matching transitive: a–b and b–c put a, b, c together even when a and c look
nothing alike. Real duplicate groups are small and tight; a long component held together by links just
above the threshold is usually several entities chained through look-alikes (two John Smiths sharing a
postcode, each sharing a birth date with a third...). The guard:

1. components over all links (probability ≥ threshold);
2. a component is *loose* when it has more than ``guard_size`` rows and fewer links than ``guard_density``
   of its possible pairs (a chain of k rows has k - 1 links: density 2/k);
3. inside a loose component only *strong* links (probability ≥ ``strong_threshold``) may join groups:
   the strong links form sub-groups, and a weak link is kept only to attach a row that is alone in its
   sub-group to the one sub-group all its weak links point to (a leaf joins a group; a weak link never
   bridges two groups, and a row pulled two ways stays alone);
4. the components over the kept links are the clusters; dropped links go to review.

All of it is array work (scipy's ``connected_components``, numpy grouping), no loop over rows or links.
A cluster's id is the smallest ``ROW_INDEX_COLUMN`` among its rows, so it does not depend on row order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class Clustering:
    """``labels``: a component number per row position; ``kept``: per link, whether it joins the cluster
    (False: dropped by the guard); ``loose_components``: how many components the guard split."""

    labels: np.ndarray
    kept: np.ndarray
    loose_components: int


def components(size: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component number of each of ``size`` nodes over the edges ``left``–``right``."""
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(size, size))
    return connected_components(graph, directed=False)[1]


def cluster(
    size: int,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    *,
    strong_threshold: float,
    guard_size: int,
    guard_density: float,
) -> Clustering:
    """Clusters of ``size`` rows from the links ``left``–``right`` (positions) with their ``probability``,
    guarded as in the module docstring."""
    labels = components(size, left, right)
    rows_per_component = np.bincount(labels, minlength=size)
    link_component = labels[left]
    links_per_component = np.bincount(link_component, minlength=size)
    possible = rows_per_component * (rows_per_component - 1) / 2.0
    loose = (rows_per_component > guard_size) & (links_per_component < guard_density * np.maximum(possible, 1.0))
    in_loose = loose[link_component]
    kept = np.ones(len(left), dtype=bool)
    if not in_loose.any():
        return Clustering(labels, kept, 0)
    strong = probability >= strong_threshold
    sub = components(size, left[in_loose & strong], right[in_loose & strong])
    group_size = np.bincount(sub, minlength=size)
    weak = np.flatnonzero(in_loose & ~strong)
    weak_left, weak_right = left[weak], right[weak]
    # each weak link seen from both ends: (row, the other end's sub-group)
    rows = np.concatenate([weak_left, weak_right])
    targets = np.concatenate([sub[weak_right], sub[weak_left]])
    own = sub[rows]
    across = targets != own
    # rows alone in their sub-group whose weak links (across groups) all point to one group
    order = np.lexsort((targets[across], rows[across]))
    sorted_rows, sorted_targets = rows[across][order], targets[across][order]
    distinct_start = np.ones(len(sorted_rows), dtype=bool)
    distinct_start[1:] = (sorted_rows[1:] != sorted_rows[:-1]) | (sorted_targets[1:] != sorted_targets[:-1])
    distinct_targets = np.bincount(sorted_rows[distinct_start], minlength=size)
    leaf = (group_size == 1) & (distinct_targets == 1)
    within = sub[weak_left] == sub[weak_right]
    kept[weak] = within | leaf[weak_left] | leaf[weak_right]
    return Clustering(components(size, left[kept], right[kept]), kept, int(loose.sum()))
