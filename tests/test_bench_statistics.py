"""The benchmark's head-to-head statistic: an exact signed-rank p-value, checked on cases known by hand."""

from __future__ import annotations

import itertools

import pytest

from bench.bench_http import signed_rank_p


def enumerated_p(differences: list[float]) -> float:
    """The same p-value by brute force over every sign pattern of the ranked magnitudes."""
    nonzero = [d for d in differences if d != 0]
    magnitudes = sorted(abs(d) for d in nonzero)
    rank = {m: (magnitudes.index(m) + len(magnitudes) - magnitudes[::-1].index(m) + 1) / 2 for m in magnitudes}
    negative = sum(rank[abs(d)] for d in nonzero if d < 0)
    ranks = [rank[abs(d)] for d in nonzero]
    patterns = list(itertools.product((0, 1), repeat=len(ranks)))
    return sum(sum(r for r, s in zip(ranks, signs, strict=True) if s) <= negative for signs in patterns) / len(patterns)


def test_all_positive_is_one_pattern_in_two_to_the_n() -> None:
    assert signed_rank_p([3.0, 1.0, 2.0, 5.0, 4.0]) == pytest.approx(1 / 32)


def test_all_negative_is_certain() -> None:
    assert signed_rank_p([-1.0, -2.0, -3.0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "differences",
    [
        [185, 528, -8, -165, 318, 316, 0, -37, 284, -49, 626, 178, 352, -7, 284],  # a real run: ties, a zero
        [1, -1, 2, -2, 3],
        [5, -4, 3, -2, 1, 0, 0],
    ],
)
def test_matches_enumeration_with_ties_and_zeros(differences: list[float]) -> None:
    assert signed_rank_p(differences) == pytest.approx(enumerated_p(differences))
