"""flowviz.structure against independent truths: autograd Jacobians, dense determinants, perturbations.

- every layer type has a row, measured at random points, and its class's tags hold there;
- the D-dimensional coupling and autoregressive layers: zeros above the diagonal (by
  autograd and by perturbing one input at a time), det J = product of the diagonal =
  exp of the layer's analytic log-det = slogdet of the dense Jacobian, exact inverses;
- the cost experiment: one point per size, the thread count restored, fits that return
  the exponent of synthetic power laws.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flowviz.layers import LAYER_CLASSES
from flowviz.structure import (
    EXAMPLE_PARAMETERS,
    AffineAutoregressive,
    AffineCouplingND,
    CostPoint,
    classify_pattern,
    fit_slope,
    fitted_exponents,
    jacobian_report,
    layer_structures,
    log_det_dense,
    log_det_triangular,
    made_masks,
    pattern_latex,
    powers_of_two,
    random_point,
    tag_agrees,
    time_log_dets,
)


def test_every_layer_type_has_example_parameters():
    """A new layer type fails here until it has a row on the structure page."""
    assert set(LAYER_CLASSES) <= set(EXAMPLE_PARAMETERS)


@pytest.mark.parametrize("seed", range(5))
def test_each_layer_class_tag_holds_at_random_points(seed):
    structures = layer_structures(seed)
    assert [s.type_name for s in structures] == list(LAYER_CLASSES)
    for s in structures:
        assert s.tag_agrees, (s.type_name, s.tag, s.measured, s.jacobian)
        assert s.volume_agrees, (s.type_name, s.abs_det)
        # The layer's own analytic log|det J| against the determinant of autograd's Jacobian.
        assert math.log(s.abs_det) == pytest.approx(s.log_det_layer, abs=1e-10), s.type_name
        assert s.reason


def test_structures_differ_between_draws_but_not_within_one():
    first, again, other = layer_structures(0), layer_structures(0), layer_structures(1)
    assert all(np.array_equal(a.jacobian, b.jacobian) for a, b in zip(first, again, strict=True))
    assert any(a.point != b.point for a, b in zip(first, other, strict=True))


def test_volume_preserving_layers_keep_area_and_the_coupling_is_triangular():
    by_name = {s.type_name: s for s in layer_structures(3)}
    for name in ("shift", "rotation", "swap", "swirl"):
        assert by_name[name].volume_preserving
        assert by_name[name].abs_det == pytest.approx(1.0, abs=1e-12)
    assert by_name["coupling"].measured in ("lower triangular", "upper triangular")
    assert by_name["swap"].measured == "permutation"
    assert by_name["affine"].measured == "full"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ([[1, 0], [0, 1]], "diagonal"),
        ([[1, 0], [1, 1]], "lower triangular"),
        ([[1, 1], [0, 1]], "upper triangular"),
        ([[0, 1], [1, 0]], "permutation"),
        ([[1, 1], [1, 1]], "full"),
        ([[1, 0, 0], [1, 1, 0], [1, 1, 1]], "lower triangular"),
        ([[0, 0, 1], [1, 0, 0], [0, 1, 0]], "permutation"),
    ],
)
def test_classify_pattern(pattern, expected):
    assert classify_pattern(np.array(pattern, dtype=bool)) == expected


def test_tags_and_latex():
    assert tag_agrees("triangular", "lower triangular") and tag_agrees("triangular", "upper triangular")
    assert not tag_agrees("diagonal", "full") and tag_agrees("full", "full")
    latex = pattern_latex(np.array([[True, False], [True, True]]))
    assert latex == r"\begin{pmatrix}\ast & 0 \\ \ast & \ast\end{pmatrix}"


# --------------------------------------------------------------------------- D-dimensional layers

LAYERS = {"coupling": AffineCouplingND, "autoregressive": AffineAutoregressive}


@pytest.mark.parametrize("dim", [2, 3, 6, 9])
@pytest.mark.parametrize("name", LAYERS)
def test_triangular_layer_determinants(name, dim):
    for seed in range(3):
        layer = LAYERS[name](dim, seed=seed)
        point = random_point(dim, seed + 10)
        report = jacobian_report(layer, point)
        # Zeros above the diagonal, exactly: no path in the graph, not a small number.
        assert report.largest_above_diagonal == 0.0
        assert np.all(np.triu(report.jacobian, 1) == 0.0)
        assert report.det_dense == pytest.approx(report.diagonal_product, rel=1e-12)
        assert report.slogdet_sign == 1.0
        assert report.slogdet_log_abs == pytest.approx(report.log_det_layer, abs=1e-12)
        assert report.log_abs_diagonal_sum == pytest.approx(report.log_det_layer, abs=1e-12)
        # And the layer really is nonlinear: the lower triangle is not empty.
        assert np.abs(np.tril(report.jacobian, -1)).max() > 1e-3


@pytest.mark.parametrize("name", LAYERS)
def test_inverse_round_trip_and_log_det_sign(name):
    layer = LAYERS[name](7, seed=4)
    z = torch.randn(50, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        x, log_det = layer.forward_and_log_det(z)
        z_back, log_det_inverse = layer.inverse_and_log_det(x)
    torch.testing.assert_close(z_back, z, rtol=0, atol=1e-12)
    torch.testing.assert_close(log_det_inverse, -log_det, rtol=0, atol=1e-12)


def test_autoregressive_output_depends_only_on_earlier_inputs():
    """Perturb input j: outputs i < j must not move (an independent check of the masks)."""
    dim = 6
    layer = AffineAutoregressive(dim, seed=1)
    z = random_point(dim, 2)
    with torch.no_grad():
        x = layer.forward(z)
        for j in range(dim):
            moved = z.clone()
            moved[j] += 0.37
            change = (layer.forward(moved) - x).abs()
            assert torch.all(change[:j] == 0), j
            assert change[j] > 0


def test_made_masks_connect_output_i_to_inputs_before_i():
    first, second = made_masks(5, 12)
    reach = (second @ first) > 0  # output i <- input j through some hidden unit
    assert not reach[np.triu_indices(5)].any()
    assert reach[np.tril_indices(5, -1)].all()


def test_coupling_passes_its_first_half_through():
    layer = AffineCouplingND(6, seed=0)
    z = random_point(6, 1)
    report = jacobian_report(layer, z)
    np.testing.assert_array_equal(report.jacobian[:3, :3], np.eye(3))
    np.testing.assert_array_equal(report.jacobian[:3, 3:], 0.0)
    np.testing.assert_array_equal(report.jacobian[3:, 3:], np.diag(np.diag(report.jacobian[3:, 3:])))


# --------------------------------------------------------------------------- the cost experiment


def test_log_det_routes_agree_on_a_triangular_matrix():
    matrix = torch.tril(torch.randn(40, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    matrix.diagonal().add_(torch.sign(matrix.diagonal()) * 2)
    assert float(log_det_triangular(matrix)) == pytest.approx(float(log_det_dense(matrix)), abs=1e-10)


def test_time_log_dets_yields_one_point_per_size_and_restores_threads():
    threads = torch.get_num_threads()
    dims = [2, 8, 32, 4096]
    points = list(time_log_dets(dims, repeats=3, dense_max=64))
    assert torch.get_num_threads() == threads
    assert [p.dim for p in points] == dims
    assert all(p.triangular_seconds > 0 for p in points)
    assert all(p.dense_seconds > 0 for p in points[:3])
    assert math.isnan(points[3].dense_seconds)


def test_dense_lu_costs_more_than_the_diagonal_at_large_d():
    (point,) = time_log_dets([512], repeats=3)
    assert point.dense_seconds > 5 * point.triangular_seconds


def test_fits_recover_synthetic_exponents():
    dims = powers_of_two(2, 1024)
    assert dims[0] == 2 and dims[-1] == 1024 and len(dims) == 10
    assert fit_slope(dims, [3e-9 * d**3 for d in dims]) == pytest.approx(3.0)
    assert math.isnan(fit_slope([4], [1.0]))
    # Overhead plus a power law: the fit on the largest sizes sees the power.
    points = [CostPoint(d, 1e-5 + 1e-10 * d**3, 5e-6 + 1e-9 * d) for d in powers_of_two(2, 2**20)]
    points = [
        CostPoint(p.dim, p.dense_seconds if p.dim <= 8192 else math.nan, p.triangular_seconds) for p in points
    ]
    exponents = fitted_exponents(points, largest=4)
    assert exponents["dense"] == pytest.approx(3.0, abs=0.02)
    assert exponents["triangular"] == pytest.approx(1.0, abs=0.05)
