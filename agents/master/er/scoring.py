r"""Fellegi–Sunter scoring: m by EM, u from random pairs, term-frequency adjustment, probabilities.

The model. A pair of rows is a match (M) or not (U). Comparison c puts the pair in level ℓ_c (see
``agents.master.er.compare``). With

    m_{c,ℓ} = P(level ℓ on c | M),   u_{c,ℓ} = P(level ℓ on c | U),   λ = P(M) for a pair of random rows,

and the comparisons taken as independent given the class, the pair's match weight is

    W = Σ_c w_{c,ℓ_c},   w_{c,ℓ} = log2(m_{c,ℓ} / u_{c,ℓ}),

and its match probability is P(M | levels) = 1 / (1 + 2^-(W + log2(λ / (1 - λ)))), a sigmoid of the
summed weights plus the prior's log-odds. The null level (either value missing) is no evidence: w = 0, and
it is left out of the estimates (m and u are distributions over the other levels).

u. Pairs of random rows are almost all non-matches, so the share of each level among them estimates u
(drawn in content order, so the draw does not depend on the row order). Exact agreement is counted rather
than sampled: on a column with c_v rows holding value v among N rows with a value, the share of pairs that
agree is û = A / P with A = Σ_v c_v(c_v − 1)/2 and P = N(N − 1)/2 (what random pairs estimate, without
the sampling error). A small file cannot tell that share apart from its own duplicates (three people
with two rows each agree on e-mail in a fifth of their pairs, though strangers almost never share one),
so for the identifying roles (e-mail, phone, national id, id, date of birth) û is blended with a
population prior u₀ (``EXACT_U_PRIOR``, the chance that two different people share one) as a Beta prior
worth k = ``PRIOR_PAIRS`` pairs:

    u_exact = (A + k u₀) / (P + k),

the posterior mean: a file of ~45 rows (1,000 pairs) counts as much as the prior, and on thousands of
rows the data decide alone. Names, places and categories have no such prior (a file of one family or one
town is its own population: thirty "John Smith"s in thirty rows make the name tell nothing), so there
u_exact = (A + α) / (P + 2α), α = ``PSEUDO_PAIRS`` (never 0). The other non-null levels share the rest,
1 − u_exact, as the random pairs share it. The location comparison (several columns) keeps the random
pairs' shares.

m and λ by EM over the candidate pairs, u fixed. The blocking keys are functions of the compared values,
so being a candidate says nothing the levels do not: a candidate's match probability is the one above,
with the population's λ and u. Pairs outside the candidates disagree nearly everywhere and are non-matches
(blocking recall ≈ 1), so the EM over all n(n-1)/2 pairs reduces to the candidates. The pairs are grouped
by their level vector (pattern k, with n_k pairs), so an iteration costs the number of distinct patterns:

    E: p_k = λ Π_c m_{c,ℓ_kc} / (λ Π_c m_{c,ℓ_kc} + (1-λ) Π_c u_{c,ℓ_kc})
    M: λ = Σ_k n_k p_k / (all pairs)
       m_{c,ℓ} = (Σ_{k: ℓ_kc=ℓ} n_k p_k + α) / (Σ_{k: ℓ_kc≠null} n_k p_k + α L_c)

with α = 0.5 pseudo-pairs (no level has probability 0, so no weight is infinite) and L_c the number of
non-null levels, plus 10 pseudo-matches spread as the starting m (a Dirichlet prior: nothing next to the
thousands of matches of a real file, but it keeps a file of twenty rows from learning m out of one pair).
It stops when no m moves more than ``tolerance`` and λ by less than that share of itself, or after
``max_iterations``. Why not EM on u too, over the candidates (the textbook mixture):
candidates were chosen because they agree on something (a name, a phone), so among non-matching
candidates agreement on one field makes agreement on another *less* likely; with u learnt there, two
agreements together count for less than they should, and on data where many people share a street EM
settles on "same phone" as the match class and drops every duplicate that changed its number. Splink
likewise fixes u from random pairs.

Term-frequency adjustment. For comparisons with ``tf`` (names), an exact agreement on value v is
weighted log2(m_{c,exact} / u_{c,exact}) + log2(u*_c / f_v), where f_v is v's share of the column's
non-null values and u*_c = Σ_v f_v² the chance that two random records agree exactly: a rare surname
(f_v < u*_c) weighs more, a common one less, and on average over agreeing random pairs it changes little.

Column weights (``match_key_weights``, 0–100) multiply a comparison's weights by weight / 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PSEUDO_PAIRS = 0.5
PRIOR_PAIRS = 1000.0
EXACT_U_PRIOR: dict[str, float] = {
    "email": 1e-6,
    "phone": 1e-5,
    "national_id": 1e-7,
    "id": 1e-6,
    "date_of_birth": 5e-5,
}
"""u₀ for the identifying roles: the chance that two different people agree exactly (orders of magnitude: a
shared household phone in ~100,000 pairs, a birth date in ~20,000)."""
M_PRIOR_PAIRS = 10.0
BITS_PER_LEVEL = 3
MAX_PACKED_COMPARISONS = 63 // BITS_PER_LEVEL


@dataclass
class FellegiSunter:
    """A fitted model: ``prior`` (λ, the match probability of a pair of random rows), per comparison the
    arrays ``m`` and ``u`` over its levels (index 0, null, holds 1.0), the EM ``iterations``, whether it
    ``converged``, and ``expected_matches`` (λ × all pairs)."""

    prior: float
    m: list[np.ndarray]
    u: list[np.ndarray]
    iterations: int = 0
    converged: bool = False
    expected_matches: float = 0.0

    def level_weights(self) -> list[np.ndarray]:
        """log2(m/u) per comparison and level; 0 for the null level."""
        weights = []
        for m, u in zip(self.m, self.u, strict=True):
            weight = np.log2(m / u)
            weight[0] = 0.0
            weights.append(weight)
        return weights


def level_shares(levels: np.ndarray, level_counts: Sequence[int]) -> list[np.ndarray]:
    """Per comparison, each non-null level's share among pairs whose level is not null (with the EM's
    pseudo-count); index 0 holds 1.0."""
    shares = []
    for index, count in enumerate(level_counts):
        tally = np.bincount(levels[:, index], minlength=count).astype(np.float64)
        shares.append(_normalised(tally))
    return shares


def agreement(codes: np.ndarray) -> tuple[float, float]:
    """(A, P): the pairs of rows that agree exactly and all pairs, among rows with a value (``codes``: a
    column's value codes, -1 null)."""
    present = codes[codes >= 0]
    counts = np.bincount(present).astype(np.float64) if present.size else np.zeros(0)
    return float((counts * (counts - 1)).sum() / 2.0), present.size * (present.size - 1) / 2.0


def with_exact_u(
    shares: np.ndarray, agreeing: float, pairs: float, prior: float | None, prior_pairs: float = PRIOR_PAIRS
) -> np.ndarray:
    """u over a comparison's levels: exact agreement (A + k u₀) / (P + k) with A = ``agreeing``, P = ``pairs``,
    u₀ = ``prior``, k = ``prior_pairs`` (without a prior: (A + α) / (P + 2α)); the other non-null levels
    rescaled from ``shares`` (the random pairs' shares, see :func:`level_shares`) to share the rest. Index 0
    (null) holds 1.0."""
    if prior is None:
        exact = (agreeing + PSEUDO_PAIRS) / (pairs + 2 * PSEUDO_PAIRS)
    else:
        exact = (agreeing + prior_pairs * prior) / (pairs + prior_pairs)
    u = shares.copy()
    u[1] = exact
    rest = shares[2:].sum()
    if len(u) > 2:
        u[2:] = shares[2:] / rest * (1.0 - exact) if rest > 0 else (1.0 - exact) / (len(u) - 2)
    u[0] = 1.0
    return u


def estimate(
    levels: np.ndarray,
    level_counts: Sequence[int],
    u: list[np.ndarray],
    total_pairs: float,
    *,
    max_iterations: int = 100,
    tolerance: float = 1e-5,
    match_share_start: float = 0.05,
) -> FellegiSunter:
    """m and λ by EM over the candidates' level vectors ``levels`` (pairs × comparisons, int), u fixed,
    ``total_pairs`` the pairs the candidates were drawn from. Starts with m = 0.9 on exact agreement,
    halving down the other levels, and λ = ``match_share_start`` of the candidates over all pairs."""
    patterns, counts = _patterns(levels)
    m_start = [_m_start(count) for count in level_counts]
    m = m_start
    total_pairs = max(total_pairs, float(len(levels)), 1.0)
    prior = _clip(match_share_start * len(levels) / total_pairs)
    iterations, converged = 0, False
    while iterations < max_iterations and len(counts):
        iterations += 1
        match_weight = counts * _posterior(patterns, m, u, prior)
        new_prior = _clip(float(match_weight.sum()) / total_pairs)
        new_m = [
            _weighted_shares(patterns[:, c], match_weight, n, M_PRIOR_PAIRS * start)
            for c, (n, start) in enumerate(zip(level_counts, m_start, strict=True))
        ]
        moved = max((float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True)), default=0.0)
        relative = abs(new_prior - prior) / prior
        prior, m = new_prior, new_m
        if moved < tolerance and relative < tolerance:
            converged = True
            break
    return FellegiSunter(prior, m, u, iterations, converged, prior * total_pairs)


def match_weights(model: FellegiSunter, levels: np.ndarray, *, scales: Sequence[float]) -> np.ndarray:
    """W per pair: Σ_c scale_c · w_{c,ℓ} (term-frequency adjustments are added by the caller, see
    :func:`tf_adjustment`)."""
    total = np.zeros(len(levels), dtype=np.float64)
    for index, weights in enumerate(model.level_weights()):
        total += scales[index] * weights[levels[:, index]]
    return total


def tf_adjustment(codes: np.ndarray, left: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """log2(u* / f_v) for pairs agreeing exactly (``exact``) on value v (code ``codes[left]``), 0 elsewhere;
    ``codes`` are a column's value codes (-1 null) per row."""
    present = codes[codes >= 0]
    adjustment = np.zeros(len(left), dtype=np.float64)
    if present.size == 0:
        return adjustment
    frequency = np.bincount(present).astype(np.float64) / present.size
    agreement = float(np.square(frequency).sum())
    agreeing = codes[left[exact]]
    adjustment[exact] = np.log2(agreement / frequency[agreeing])
    return adjustment


def probabilities(weights: np.ndarray, prior: float) -> np.ndarray:
    """1 / (1 + 2^-(W + log2(λ/(1-λ))))."""
    odds = np.clip(weights + np.log2(prior / (1.0 - prior)), -1000.0, 1000.0)
    return 1.0 / (1.0 + np.exp2(-odds))


def _patterns(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct level vectors and how many pairs have each."""
    if levels.shape[1] <= MAX_PACKED_COMPARISONS:
        # each vector packed into one integer, a column at a time (no pairs x comparisons int64 copy), then
        # one sort of integers; the patterns are unpacked from the distinct keys
        shifts = np.arange(levels.shape[1], dtype=np.int64) * BITS_PER_LEVEL
        packed = np.zeros(len(levels), dtype=np.int64)
        for column, shift in enumerate(shifts):
            packed |= levels[:, column].astype(np.int64) << shift
        packed.sort()
        starts = np.flatnonzero(np.concatenate([[True], packed[1:] != packed[:-1]])) if len(packed) else packed
        counts = np.diff(np.append(starts, len(packed)))
        patterns = (packed[starts][:, None] >> shifts) & ((1 << BITS_PER_LEVEL) - 1)
        return patterns.astype(np.int64), counts.astype(np.float64)
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    return patterns.astype(np.int64), counts.astype(np.float64)


def _clip(prior: float) -> float:
    return min(max(prior, 1e-15), 0.5)


def _posterior(patterns: np.ndarray, m: list[np.ndarray], u: list[np.ndarray], prior: float) -> np.ndarray:
    log_m = np.zeros(len(patterns))
    log_u = np.zeros(len(patterns))
    for c in range(patterns.shape[1]):
        log_m += np.log(m[c][patterns[:, c]])
        log_u += np.log(u[c][patterns[:, c]])
    log_odds = np.log(prior) + log_m - np.log(1.0 - prior) - log_u
    return 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700.0, 700.0)))


def _weighted_shares(column: np.ndarray, weights: np.ndarray, count: int, prior: np.ndarray) -> np.ndarray:
    return _normalised(np.bincount(column, weights=weights, minlength=count).astype(np.float64) + prior)


def _normalised(tally: np.ndarray) -> np.ndarray:
    """Shares of levels 1.. with the pseudo-count; level 0 (null) set to 1.0, which no estimate uses."""
    shares = tally.copy()
    shares[0] = 0.0
    shares[1:] += PSEUDO_PAIRS
    shares /= shares[1:].sum()
    shares[0] = 1.0
    return shares


def _m_start(count: int) -> np.ndarray:
    start = np.zeros(count)
    start[1] = 0.9
    rest = np.array([0.5**k for k in range(1, count - 1)])
    start[2:] = 0.1 * rest / rest.sum() if rest.size else 0.0
    start[0] = 1.0
    return start
