"""Sampling agrees with the density: histograms of 10^6 draws against the grid density.

For each stack the window [a, b]^2 is cut into M x M cells. ``Flow.sample`` gives the
empirical cell frequencies p_hat; ``flowviz.evaluate`` gives each cell's probability q
by the midpoint rule on 8 x 8 sub-cells (a grid of 8M points per axis placed at the
sub-cell centres). One more cell holds everything outside the window, with
q_out = 1 - sum(q): the test also checks that the density integrates to 1. The total
variation distance

    TV = 1/2 (sum_c |p_hat_c - q_c| + |p_hat_out - q_out|)

must stay below a bound computed for each stack from three parts, none guessed:

1. Monte-Carlo noise, its expectation: E|p_hat_c - q_c| <= sqrt(q_c (1 - q_c) / n) by
   Jensen, and <= 2 q_c by the triangle inequality; so E[TV] <= 1/2 sum_c min(both).
   (About sqrt(cells / n) / 2 when the mass is spread over the cells.)
2. Monte-Carlo noise, its deviation: one draw moves TV by at most 1/n, so McDiarmid's
   inequality gives P(TV - E[TV] > t) <= exp(-2 n t^2); t = sqrt(ln(10^6) / (2 n))
   makes a false alarm a one-in-a-million event.
3. Discretisation of q: the midpoint rule with 2 x 2, 4 x 4 and 8 x 8 sub-cells gives
   q_2, q_4, q_8 with D_k = sum_c |q_k - q_2k|. Its error falls like h^p, so the measured
   rho = D_2 / D_4 is about 2^p (p = 2 for smooth densities, nearer 1 across the jumps
   of a uniform base or a kink), and the error of q_8 is about D_4 / (rho - 1); rho is
   floored at 2 (p >= 1), which makes the estimate at most D_4. An error e_c in the q_c
   moves TV by at most 1/2 (sum |e_c| + |sum e_c|) <= sum |e_c|.

The sampler and the density share only the layers' forward maps; a wrong inverse, a
wrong log-det or a wrong base shifts TV far beyond these bounds
(``test_the_bound_catches_a_wrong_density``: one parameter 5 % off fails it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import flowviz
from flowviz.flow import Flow

N_SAMPLES = 1_000_000
CELLS = 40
FALSE_ALARM = 1e-6

STACKS = {
    "planar-radial": (
        {"type": "gaussian", "mean": [0.3, -0.2], "cov": [[1.0, 0.4], [0.4, 0.8]]},
        [
            {"type": "planar", "w": [2.0, 1.0], "u": [-0.35, -0.1], "b": 0.5},
            {"type": "radial", "center": [0.5, 0.0], "alpha": 0.6, "beta": 1.5},
        ],
        (-5.0, 5.0),
    ),
    "banana-spline": (
        {"type": "gaussian"},
        [
            {
                "type": "coupling",
                "condition_on": 0,
                "shift": {"poly": [-1, 0, 1]},
                "log_scale": {"sin": [0.3, 1, 0]},
            },
            {
                "type": "spline",
                "bound": 3,
                "widths": [1, 2, 1, 2],
                "heights": [2, 1, 2, 1],
                "derivatives": [0.4, 2.5, 0.7],
            },
        ],
        (-4.0, 6.0),
    ),
    "mixture-swirl": (
        {
            "type": "mixture",
            "components": [
                {"mean": [-1.5, 0], "cov": [[0.4, 0], [0, 0.4]]},
                {"mean": [1.5, 0.5], "cov": [[0.6, -0.2], [-0.2, 0.5]]},
            ],
            "weights": [1, 2],
        },
        [
            {"type": "swirl", "center": [0, 0], "strength": 3.0, "radius": 1.5},
            {"type": "sinh_arcsinh", "skew": 0.3, "tailweight": 0.9},
        ],
        (-5.0, 5.0),
    ),
    "uniform-planar": (
        {"type": "uniform", "low": [-1.5, -1.0], "high": [1.5, 2.0]},
        [
            {"type": "affine", "matrix": [[1.0, 0.5], [-0.3, 0.8]], "shift": [0.2, 0]},
            {"type": "planar", "w": [1.0, -1.5], "u": [0.8, 0.5], "b": 0.0},
        ],
        (-4.0, 4.0),
    ),
    "kinks": (
        {"type": "gaussian", "mean": [0.5, 0.5]},
        [
            {"type": "leaky_relu", "negative_slope": 0.4},
            {"type": "piecewise_linear", "dims": [0], "knots": [-0.5, 1.0], "slopes": [1.5, 0.5, 2.0]},
            {"type": "rotation", "degrees": 25},
        ],
        (-5.0, 7.0),
    ),
}


def cell_probabilities(base: dict, layers: list, lo: float, hi: float, sub: int) -> np.ndarray:
    """(CELLS, CELLS) cell probabilities [row = y cell, column = x cell] by the midpoint rule on sub x sub sub-cells."""
    h = (hi - lo) / (CELLS * sub)
    view = {"xlim": [lo + h / 2, hi - h / 2], "ylim": [lo + h / 2, hi - h / 2], "resolution": CELLS * sub}
    density = flowviz.evaluate({"base": base, "layers": layers, "view": view})["density"]
    return density.reshape(CELLS, sub, CELLS, sub).sum((1, 3)) * h * h


def reference_probabilities(base: dict, layers: list, lo: float, hi: float) -> tuple[np.ndarray, float]:
    """q_8, and the estimate of its discretisation error's share of TV (part 3 above)."""
    q2, q4, q8 = (cell_probabilities(base, layers, lo, hi, sub) for sub in (2, 4, 8))
    d2, d4 = np.abs(q2 - q4).sum(), np.abs(q4 - q8).sum()
    rho = max(d2 / d4, 2.0)
    return q8, d4 / (rho - 1.0)


def tv_bound(q: np.ndarray, q_out: float, discretisation: float, n: int) -> float:
    probabilities = np.append(q.ravel(), max(q_out, 0.0))
    expected = 0.5 * np.minimum(np.sqrt(probabilities * (1 - probabilities) / n), 2 * probabilities).sum()
    deviation = math.sqrt(math.log(1 / FALSE_ALARM) / (2 * n))
    return expected + deviation + discretisation


def histogram(samples: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, float]:
    """Cell frequencies [row = y cell, column = x cell] and the fraction outside the window."""
    edges = np.linspace(lo, hi, CELLS + 1)
    counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=[edges, edges])
    p_hat = counts.T / len(samples)  # histogram2d indexes [x cell, y cell]
    return p_hat, 1.0 - p_hat.sum()


def total_variation(p_hat: np.ndarray, p_hat_out: float, q: np.ndarray) -> float:
    return 0.5 * (np.abs(p_hat - q).sum() + abs(p_hat_out - (1.0 - q.sum())))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STACKS))
def test_histogram_of_samples_matches_the_density(name):
    base, layers, (lo, hi) = STACKS[name]
    samples = Flow.from_spec({"base": base, "layers": layers}).sample(N_SAMPLES, seed=12345).numpy()
    assert np.isfinite(samples).all()
    p_hat, p_hat_out = histogram(samples, lo, hi)
    q, discretisation = reference_probabilities(base, layers, lo, hi)
    tv = total_variation(p_hat, p_hat_out, q)
    bound = tv_bound(q, 1.0 - q.sum(), discretisation, N_SAMPLES)
    assert tv <= bound, f"TV {tv:.4f} > bound {bound:.4f} (discretisation part {discretisation:.4f})"
    assert bound < 0.03, "the bound is too loose to mean anything"


@pytest.mark.slow
def test_the_bound_catches_a_wrong_density():
    """Samples of one flow against the density of a flow with one parameter 5 % off: TV exceeds the bound."""
    base, layers, (lo, hi) = STACKS["planar-radial"]
    samples = Flow.from_spec({"base": base, "layers": layers}).sample(N_SAMPLES, seed=7).numpy()
    wrong = [layers[0], {**layers[1], "beta": layers[1]["beta"] * 1.05}]
    p_hat, p_hat_out = histogram(samples, lo, hi)
    q, discretisation = reference_probabilities(base, wrong, lo, hi)
    assert total_variation(p_hat, p_hat_out, q) > tv_bound(q, 1.0 - q.sum(), discretisation, N_SAMPLES)


def test_sampling_is_reproducible_and_pushes_base_draws_forward():
    base, layers, _ = STACKS["mixture-swirl"]
    flow = Flow.from_spec({"base": base, "layers": layers})
    a, b = flow.sample(1000, seed=3), flow.sample(1000, seed=3)
    assert np.array_equal(a.numpy(), b.numpy())
    z = flow.sample_base(1000, seed=3)
    assert np.array_equal(flow.forward(z).numpy(), a.numpy())
    assert not np.array_equal(flow.sample(1000, seed=4).numpy(), a.numpy())
