"""The training benchmark's data sets: each true density is a density of the points it samples.

bench/train.py scores learners by test NLL minus the true entropy, so a wrong
log-density (a missing Jacobian of the user frame, a normalising constant) would
shift every gap. Checked independently of the formulas: the density integrates
to 1 on a fine grid, and it predicts the histogram of its own samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.train_sets import HELD_OUT, TUNING, bench_sets

SETS = bench_sets()


def test_both_halves_are_large_enough():
    halves = [s.half for s in SETS.values()]
    assert len(SETS) >= 12
    assert halves.count(TUNING) >= 7 and halves.count(HELD_OUT) >= 7


@pytest.mark.parametrize("name", sorted(SETS))
def test_density_integrates_to_one_and_matches_its_samples(name):
    bench = SETS[name]
    rng = np.random.default_rng(7)
    x = bench.sample(40_000, rng)
    low, high = np.percentile(x, 0.05, axis=0), np.percentile(x, 99.95, axis=0)
    low, high = low - 0.25 * (high - low), high + 0.25 * (high - low)
    # quadrature densities cost ~1e4 terms a point: a coarser grid (still finer than their noise)
    n = 120 if bench.quadrature_check is not None else 200
    gx, gy = np.linspace(low[0], high[0], n), np.linspace(low[1], high[1], n)
    cell = (gx[1] - gx[0]) * (gy[1] - gy[0])
    points = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    density = np.exp(bench.log_density(points))
    # Midpoint sums: smooth densities to ~1e-3; the uniform shapes lose or gain part of each
    # edge cell (up to perimeter x cell side / 2 area: 3% for the L); the tails beyond the box
    # hold under 0.5% of the heaviest-tailed set's mass (Student t with 4 degrees of freedom).
    assert density.sum() * cell == pytest.approx(1.0, abs=0.04)

    bins = 12
    counts, ex, ey = np.histogram2d(x[:, 0], x[:, 1], bins=bins, range=[[low[0], high[0]], [low[1], high[1]]])
    predicted = np.zeros((bins, bins))
    ix = np.clip(np.searchsorted(ex, points[:, 0]) - 1, 0, bins - 1)
    iy = np.clip(np.searchsorted(ey, points[:, 1]) - 1, 0, bins - 1)
    np.add.at(predicted, (ix, iy), density * cell)
    # Total variation between the sample histogram and the density's bin masses: sampling
    # noise is about sum sqrt(p_i / N) / 2 <= sqrt(bins^2 / N) / 2 = 0.03 for 144 bins and
    # 40 000 points; a wrong density (a swapped axis, a missing factor) is off by far more.
    assert 0.5 * np.abs(predicted / predicted.sum() - counts / len(x)).sum() < 0.04


@pytest.mark.parametrize("name", [n for n, s in SETS.items() if s.quadrature_check is not None])
def test_quadrature_has_converged(name):
    bench = SETS[name]
    x = bench.sample(100, np.random.default_rng(3))
    assert bench.quadrature_check(x) < 1e-6


def test_user_frame_moves_the_log_density_by_the_log_determinant():
    """log p is in the user's coordinates: a set drawn in pixels has entropy = unit-frame entropy + log|det A|."""
    ring = SETS["ring"]  # in the canvas frame: scale (80, -80)
    x = ring.sample(20_000, np.random.default_rng(0))
    unit = (x - np.array([350.0, 250.0])) / np.array([80.0, -80.0])
    r = np.linalg.norm(unit, axis=1)
    # radius ~ N(2, 0.15^2) (truncation at 0 is 13 sigma away), angle uniform: p = N(r) / (2 pi r)
    log_unit = -0.5 * ((r - 2.0) / 0.15) ** 2 - 0.5 * np.log(2 * np.pi) - np.log(0.15) - np.log(2 * np.pi * r)
    np.testing.assert_allclose(ring.log_density(x), log_unit - 2 * np.log(80.0), atol=1e-9)
