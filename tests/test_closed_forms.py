"""flowviz.evaluate against densities known in closed form (the public contract of flow-spec.md).

Every expected number here comes from scipy.stats or from the change-of-variables
formula written out by hand for the case at hand, never from flowviz itself.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

import flowviz
from flowviz.flow import Flow

KEYS = {"x", "y", "density", "log_density", "base_log_prob", "log_det_inverse", "log_det_forward", "mass"}
STANDARD = {"type": "gaussian", "mean": [0, 0], "cov": [[1, 0], [0, 1]]}


def evaluate(
    base: dict, layers: list[dict], xlim=(-4, 4), ylim=(-4, 4), n: int = 81
) -> dict[str, np.ndarray]:
    spec = {"base": base, "layers": layers, "view": {"xlim": list(xlim), "ylim": list(ylim), "resolution": n}}
    arrays = flowviz.evaluate(spec)
    assert set(arrays) == KEYS
    return arrays


def mesh(arrays: dict) -> tuple[np.ndarray, np.ndarray]:
    """X, Y with X[i, j] = xs[j] and Y[i, j] = ys[i]: the contract's grid convention."""
    return np.meshgrid(arrays["x"], arrays["y"])


def points(arrays: dict) -> np.ndarray:
    x, y = mesh(arrays)
    return np.stack([x, y], -1)


def assert_contract_invariants(arrays: dict) -> None:
    """What must hold of any evaluation: NaN only in log_det_inverse, and only outside the image."""
    n = len(arrays["x"])
    for key in KEYS - {"x", "y", "mass"}:
        assert arrays[key].shape == (n, n), key
    for key in ("density", "log_density", "base_log_prob", "log_det_forward"):
        assert not np.isnan(arrays[key]).any(), key
    assert not np.isnan(arrays["x"]).any() and not np.isnan(arrays["y"]).any()
    assert np.isfinite(arrays["mass"])
    outside = arrays["base_log_prob"] == -np.inf
    bad_ldi = np.isnan(arrays["log_det_inverse"]) | (arrays["log_det_inverse"] == -np.inf)
    assert np.all(outside[bad_ldi]), "log_det_inverse is NaN/-inf at a point inside the image"
    assert np.all(arrays["density"][outside] == 0) and np.all(arrays["log_density"][outside] == -np.inf)
    finite = np.isfinite(arrays["base_log_prob"]) & np.isfinite(arrays["log_det_inverse"])
    np.testing.assert_allclose(
        arrays["log_density"][finite],
        arrays["base_log_prob"][finite] + arrays["log_det_inverse"][finite],
        rtol=1e-13,
        atol=1e-13,
    )
    np.testing.assert_allclose(arrays["density"], np.exp(arrays["log_density"]), rtol=1e-13, atol=0)


def assert_log_close(actual_log: np.ndarray, expected_density: np.ndarray, rtol: float = 1e-10) -> None:
    """log-densities equal to rtol where the expected density is positive, -inf where it is 0."""
    positive = expected_density > 0
    np.testing.assert_allclose(actual_log[positive], np.log(expected_density[positive]), rtol=rtol, atol=rtol)
    assert np.all(actual_log[~positive] == -np.inf)


# --------------------------------------------------------------------------- Gaussian through affine maps


AFFINE_CASES = [
    # (matrix, shift, mean, cov)
    ([[1.5, 0.4], [-0.3, 0.8]], [0.5, -1.0], [0.2, 0.1], [[1.0, 0.3], [0.3, 0.5]]),
    ([[0.0, -2.0], [0.7, 0.1]], [0.0, 0.0], [-0.5, 0.4], [[0.3, 0.0], [0.0, 1.4]]),
    ([[-1.0, 0.0], [0.0, 1.0]], [1.0, 1.0], [0.0, 0.0], [[1.0, -0.8], [-0.8, 1.0]]),  # a reflection, det < 0
]


@pytest.mark.parametrize(("matrix", "shift", "mean", "cov"), AFFINE_CASES)
def test_gaussian_through_affine(matrix, shift, mean, cov):
    a, s, m, c = map(np.asarray, (matrix, shift, mean, cov))
    arrays = evaluate(
        {"type": "gaussian", "mean": mean, "cov": cov}, [{"type": "affine", "matrix": matrix, "shift": shift}]
    )
    x = points(arrays)
    pushed = stats.multivariate_normal(a @ m + s, a @ c @ a.T)
    np.testing.assert_allclose(arrays["log_density"], pushed.logpdf(x), rtol=1e-11)
    np.testing.assert_allclose(arrays["density"], pushed.pdf(x), rtol=1e-10, atol=1e-300)
    # The two terms separately: base at A^{-1}(x - s), and -log|det A| everywhere.
    z = (x - s) @ np.linalg.inv(a).T
    np.testing.assert_allclose(arrays["base_log_prob"], stats.multivariate_normal(m, c).logpdf(z), rtol=1e-11)
    np.testing.assert_allclose(arrays["log_det_inverse"], -np.log(abs(np.linalg.det(a))), rtol=1e-12)
    np.testing.assert_allclose(arrays["log_det_forward"], np.log(abs(np.linalg.det(a))), rtol=1e-12)
    assert_contract_invariants(arrays)


def test_chain_of_linear_layers_is_one_gaussian():
    """shift, scale, rotation, swap, affine: the product matrix, built here by hand."""
    theta = math.radians(35.0)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    scale = np.diag([1.7, -0.6])
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    affine = np.array([[1.0, 0.5], [0.0, 1.2]])
    total = affine @ swap @ rotation @ scale
    offset = affine @ swap @ rotation @ scale @ np.array([0.3, -0.2]) + np.array([0.1, 0.4])
    layers = [
        {"type": "shift", "shift": [0.3, -0.2]},
        {"type": "scale", "scale": [1.7, -0.6]},
        {"type": "rotation", "degrees": 35},
        {"type": "swap"},
        {"type": "affine", "matrix": affine.tolist(), "shift": [0.1, 0.4]},
    ]
    arrays = evaluate(STANDARD, layers)
    expected = stats.multivariate_normal(offset, total @ total.T).logpdf(points(arrays))
    np.testing.assert_allclose(arrays["log_density"], expected, rtol=1e-11)


def test_rotation_is_counter_clockwise():
    """A narrow Gaussian along +x, rotated by 90 degrees, lies along +y."""
    base = {"type": "gaussian", "mean": [2, 0], "cov": [[0.1, 0], [0, 0.1]]}
    arrays = evaluate(base, [{"type": "rotation", "degrees": 90}], n=81)
    i, j = np.unravel_index(np.argmax(arrays["density"]), arrays["density"].shape)
    assert arrays["x"][j] == pytest.approx(0.0, abs=1e-9) and arrays["y"][i] == pytest.approx(2.0)


# --------------------------------------------------------------------------- uniform through affine


def test_uniform_through_affine():
    low, high = np.array([-1.0, -0.5]), np.array([1.5, 1.0])
    a, s = np.array([[1.2, 0.7], [-0.4, 0.9]]), np.array([0.3, -0.2])
    arrays = evaluate(
        {"type": "uniform", "low": low.tolist(), "high": high.tolist()},
        [{"type": "affine", "matrix": a.tolist(), "shift": s.tolist()}],
        n=121,
    )
    z = (points(arrays) - s) @ np.linalg.inv(a).T
    margin = np.minimum(z - low, high - z).min(-1)  # > 0 inside the box, < 0 outside
    inside, outside = margin > 1e-6, margin < -1e-6
    assert inside.sum() > 500 and outside.sum() > 5000
    height = 1.0 / (np.prod(high - low) * abs(np.linalg.det(a)))
    np.testing.assert_allclose(arrays["density"][inside], height, rtol=1e-12)
    assert np.all(arrays["density"][outside] == 0)
    assert np.all(arrays["log_density"][outside] == -np.inf)
    assert np.all(arrays["base_log_prob"][outside] == -np.inf)
    # Every point has a preimage under an affine map: the volume term stays finite outside the box.
    np.testing.assert_allclose(arrays["log_det_inverse"], -np.log(abs(np.linalg.det(a))), rtol=1e-12)
    assert_contract_invariants(arrays)


# --------------------------------------------------------------------------- elementwise maps of Gaussians


def test_exp_of_a_gaussian_is_a_product_of_lognormals():
    mean, sd = np.array([0.2, -0.3]), np.array([0.5, 0.8])
    base = {"type": "gaussian", "mean": mean.tolist(), "cov": np.diag(sd**2).tolist()}
    arrays = evaluate(base, [{"type": "exp"}], xlim=(-1, 3), ylim=(-1, 3), n=81)
    x, y = mesh(arrays)
    assert (x == 0).any() and (y == 0).any(), "the grid should hit the edge of the image exactly"
    expected = stats.lognorm.pdf(x, s=sd[0], scale=np.exp(mean[0])) * stats.lognorm.pdf(
        y, s=sd[1], scale=np.exp(mean[1])
    )
    positive = (x > 0) & (y > 0)
    assert_log_close(arrays["log_density"], np.where(positive, expected, 0.0), rtol=1e-10)
    assert np.all(arrays["density"][~positive] == 0)
    assert np.all(arrays["base_log_prob"][~positive] == -np.inf)
    ldi = arrays["log_det_inverse"][~positive]
    assert np.all(np.isnan(ldi) | (ldi == -np.inf))
    np.testing.assert_allclose(
        arrays["log_det_inverse"][positive], -np.log(x[positive] * y[positive]), rtol=1e-12, atol=1e-15
    )
    # Read as z, the grid stretches by e^{z1 + z2}.
    np.testing.assert_allclose(arrays["log_det_forward"], x + y, rtol=1e-13, atol=1e-13)
    assert_contract_invariants(arrays)


def test_sigmoid_image_is_logit_normal():
    mean, sd = np.array([0.5, -1.0]), np.array([1.2, 0.7])
    base = {"type": "gaussian", "mean": mean.tolist(), "cov": np.diag(sd**2).tolist()}
    arrays = evaluate(base, [{"type": "sigmoid"}], xlim=(-0.25, 1.25), ylim=(-0.25, 1.25), n=61)
    x, y = mesh(arrays)
    inside = (x > 0) & (x < 1) & (y > 0) & (y < 1)

    def logit_normal(t: np.ndarray, m: float, s: float) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = stats.norm.pdf(np.log(t / (1 - t)), m, s) / (t * (1 - t))
        return np.where((t > 0) & (t < 1), value, 0.0)

    expected = logit_normal(x, mean[0], sd[0]) * logit_normal(y, mean[1], sd[1])
    assert_log_close(arrays["log_density"], np.where(inside, expected, 0.0), rtol=1e-10)
    assert_contract_invariants(arrays)


def test_tanh_image():
    arrays = evaluate(
        STANDARD,
        [{"type": "shift", "shift": [0.3, -0.4]}, {"type": "tanh"}],
        xlim=(-1.5, 1.5),
        ylim=(-1.5, 1.5),
        n=61,
    )
    x, y = mesh(arrays)
    inside = (np.abs(x) < 1) & (np.abs(y) < 1)

    def one(t: np.ndarray, shift: float) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = stats.norm.pdf(np.arctanh(t) - shift) / (1 - t * t)
        return np.where(np.abs(t) < 1, value, 0.0)

    assert_log_close(arrays["log_density"], np.where(inside, one(x, 0.3) * one(y, -0.4), 0.0), rtol=1e-10)
    assert_contract_invariants(arrays)


def test_softplus_and_leaky_relu_images():
    arrays = evaluate(
        STANDARD,
        [{"type": "leaky_relu", "negative_slope": 0.3}, {"type": "softplus"}],
        xlim=(-1, 4),
        ylim=(-1, 4),
        n=51,
    )
    x, y = mesh(arrays)

    def one(t: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.log(np.expm1(t))  # softplus^{-1}, then leaky_relu^{-1}
            z = np.where(u >= 0, u, u / 0.3)
            value = stats.norm.pdf(z) / (-np.expm1(-t)) / np.where(u >= 0, 1.0, 0.3)
        return np.where(t > 0, value, 0.0)

    assert_log_close(arrays["log_density"], one(x) * one(y), rtol=1e-10)
    assert_contract_invariants(arrays)


def test_swirl_about_the_centre_of_an_isotropic_gaussian_changes_nothing():
    base = {"type": "gaussian", "mean": [0.5, -0.25], "cov": [[0.8, 0], [0, 0.8]]}
    layers = [{"type": "swirl", "center": [0.5, -0.25], "strength": 6.0, "radius": 1.3}]
    arrays = evaluate(base, layers)
    expected = stats.multivariate_normal([0.5, -0.25], 0.8 * np.eye(2)).logpdf(points(arrays))
    np.testing.assert_allclose(arrays["log_density"], expected, rtol=1e-12)
    assert np.all(arrays["log_det_inverse"] == 0) and np.all(arrays["log_det_forward"] == 0)


# --------------------------------------------------------------------------- couplings and mixtures


def test_banana_coupling_from_the_spec():
    """x1 = z1, x2 = z2 + z1^2 - 1: p(x) = phi(x1) phi(x2 - x1^2 + 1)."""
    banana = {"type": "coupling", "condition_on": 0, "shift": {"poly": [-1, 0, 1]}}
    arrays = evaluate(STANDARD, [banana], xlim=(-3, 3), ylim=(-2, 6), n=81)
    x, y = mesh(arrays)
    expected = stats.norm.logpdf(x) + stats.norm.logpdf(y - x**2 + 1)
    np.testing.assert_allclose(arrays["log_density"], expected, rtol=1e-12)
    assert np.all(arrays["log_det_inverse"] == 0)


@pytest.mark.parametrize("condition_on", [0, 1])
def test_affine_coupling_with_a_scale(condition_on):
    shift = {"sin": [0.8, 1.5, 0.3], "poly": [0.2, -0.4, 0.1]}
    log_scale = {"sin": [0.5, -0.7, 1.0], "poly": [-0.1, 0.2, 0.0]}
    layer = {"type": "coupling", "condition_on": condition_on, "shift": shift, "log_scale": log_scale}
    arrays = evaluate(STANDARD, [layer], n=61)
    x, y = mesh(arrays)
    passed, other = (x, y) if condition_on == 0 else (y, x)
    g_t = 0.8 * np.sin(1.5 * passed + 0.3) + 0.2 - 0.4 * passed + 0.1 * passed**2
    g_s = 0.5 * np.sin(-0.7 * passed + 1.0) - 0.1 + 0.2 * passed
    expected = stats.norm.logpdf(passed) + stats.norm.logpdf((other - g_t) * np.exp(-g_s)) - g_s
    np.testing.assert_allclose(arrays["log_density"], expected, rtol=1e-12)
    np.testing.assert_allclose(arrays["log_det_inverse"], -g_s, rtol=1e-12, atol=1e-15)


def test_mixture_base_is_the_weighted_sum_of_its_normals():
    components = [
        {"mean": [-1.5, 0.5], "cov": [[0.5, 0.2], [0.2, 0.4]]},
        {"type": "gaussian", "mean": [1.0, -1.0], "cov": [[0.3, 0.0], [0.0, 0.9]]},
        {"mean": [0.5, 2.0]},
    ]
    weights = [2.0, 5.0, 3.0]  # unnormalised: the spec normalises them
    arrays = evaluate({"type": "mixture", "components": components, "weights": weights}, [], n=61)
    x = points(arrays)
    expected = sum(
        w / 10.0 * stats.multivariate_normal(c["mean"], c.get("cov", np.eye(2))).pdf(x)
        for w, c in zip(weights, components, strict=True)
    )
    np.testing.assert_allclose(arrays["density"], expected, rtol=1e-11)
    # Equal weights by default.
    arrays = evaluate({"type": "mixture", "components": components}, [], n=31)
    x = points(arrays)
    expected = sum(
        stats.multivariate_normal(c["mean"], c.get("cov", np.eye(2))).pdf(x) / 3 for c in components
    )
    np.testing.assert_allclose(arrays["density"], expected, rtol=1e-11)


# --------------------------------------------------------------------------- log-dets against autograd

MIXED_STACK = [
    {"type": "planar", "w": [1.5, -0.5], "u": [0.8, 0.9], "b": 0.2},
    {"type": "radial", "center": [0.3, -0.2], "alpha": 0.7, "beta": 1.4},
    {
        "type": "coupling",
        "condition_on": 1,
        "shift": {"sin": [1, 1.2, 0]},
        "log_scale": {"poly": [0, 0.3, 0]},
    },
    {"type": "swirl", "center": [0, 0.5], "strength": 2.5, "radius": 1.5},
    {
        "type": "spline",
        "bound": 3,
        "widths": [1, 2, 1, 3],
        "heights": [2, 1, 3, 1],
        "derivatives": [0.5, 2, 1],
    },
    {"type": "sinh_arcsinh", "skew": 0.3, "tailweight": 1.2},
    {"type": "rotation", "degrees": 20},
    {"type": "affine", "matrix": [[1.1, 0.3], [-0.2, 0.9]], "shift": [0.1, 0]},
]


def test_log_dets_of_a_mixed_stack_match_autograd_of_the_whole_flow():
    spec = {
        "base": STANDARD,
        "layers": MIXED_STACK,
        "view": {"xlim": [-5, 5], "ylim": [-5, 5], "resolution": 31},
    }
    arrays = flowviz.evaluate(spec)
    flow = Flow.from_spec(spec)
    grid = torch.from_numpy(points(arrays).reshape(-1, 2))

    def jacobian_log_det(map_, at: torch.Tensor) -> np.ndarray:
        jac = torch.func.vmap(torch.func.jacrev(lambda v: map_(v.unsqueeze(0)).squeeze(0)))(at)
        return torch.linalg.slogdet(jac)[1].reshape(31, 31).numpy()

    np.testing.assert_allclose(
        arrays["log_det_forward"], jacobian_log_det(flow.forward, grid), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        arrays["log_det_inverse"], jacobian_log_det(flow.inverse, grid), rtol=1e-9, atol=1e-9
    )
    # log_det_forward is the sum of the layers' own log-dets along the forward trace.
    z, total = grid, torch.zeros(len(grid), dtype=torch.float64)
    for layer in flow.layers:
        z, log_det = layer.forward_and_log_det(z)
        total += log_det
    np.testing.assert_allclose(
        arrays["log_det_forward"], total.reshape(31, 31).numpy(), rtol=1e-12, atol=1e-12
    )
    assert_contract_invariants(arrays)


# --------------------------------------------------------------------------- the grid itself


def test_grid_convention_with_an_asymmetric_density():
    """Element [i, j] is the point (xs[j], ys[i]): a narrow Gaussian at (2, -1) on a non-square window."""
    base = {"type": "gaussian", "mean": [2.0, -1.0], "cov": [[0.05, 0], [0, 0.3]]}
    arrays = evaluate(base, [], xlim=(-4, 4), ylim=(-3, 5), n=41)
    np.testing.assert_array_equal(arrays["x"], np.linspace(-4, 4, 41))
    np.testing.assert_array_equal(arrays["y"], np.linspace(-3, 5, 41))
    i, j = np.unravel_index(np.argmax(arrays["density"]), arrays["density"].shape)
    assert (arrays["x"][j], arrays["y"][i]) == (pytest.approx(2.0), pytest.approx(-1.0))
    # Column j, row i of a point off the peak as well.
    rv = stats.multivariate_normal([2.0, -1.0], [[0.05, 0], [0, 0.3]])
    assert arrays["log_density"][25, 22] == pytest.approx(
        rv.logpdf([arrays["x"][22], arrays["y"][25]]), rel=1e-12
    )


def test_mass_is_the_riemann_sum_with_the_contract_cell_size():
    arrays = evaluate(STANDARD, MIXED_STACK[:3], xlim=(-3, 5), ylim=(-2, 1), n=37)
    dx, dy = 8 / 36, 3 / 36
    assert arrays["mass"].shape == ()
    assert float(arrays["mass"]) == pytest.approx(arrays["density"].sum() * dx * dy, rel=1e-14)


# Each stack's window holds all but a negligible tail: 10^6 draws of each land inside
# [-11, 11]^2 (the banana's tail beyond 12 needs |z1| > 4.8, probability 2e-6). With
# h = 24 / 399 the Riemann sum of a smooth density that vanishes at the edges is within
# O(h^2 |p''|) ~ 1e-4 of the integral (measured: at most 3e-4 here, 4e-3 at half the
# resolution, so the error does shrink like h^2 or faster). Hence 2e-3.
MASS_TOLERANCE = 2e-3
WIDE_STACKS = {
    "planar-radial": (STANDARD, MIXED_STACK[:2]),
    "banana": (STANDARD, [{"type": "coupling", "condition_on": 0, "shift": {"poly": [-1, 0, 0.5]}}]),
    # The eight-layer stack with a milder log-scale and thinner tails, so that its mass stays in the window.
    "mixed-eight": (
        STANDARD,
        [
            *MIXED_STACK[:2],
            {**MIXED_STACK[2], "log_scale": {"poly": [0, 0.1, 0]}},
            *MIXED_STACK[3:5],
            {**MIXED_STACK[5], "tailweight": 0.8},
            *MIXED_STACK[6:],
        ],
    ),
    "mixture-swirl-spline": (
        {
            "type": "mixture",
            "components": [{"mean": [-2, 0], "cov": [[0.5, 0], [0, 0.5]]}, {"mean": [2, 1]}],
            "weights": [1, 2],
        },
        [MIXED_STACK[3], MIXED_STACK[4], {"type": "leaky_relu", "negative_slope": 0.5}],
    ),
}


@pytest.mark.parametrize("name", sorted(WIDE_STACKS))
def test_mass_is_one_on_a_wide_window(name):
    base, layers = WIDE_STACKS[name]
    arrays = evaluate(base, layers, xlim=(-12, 12), ylim=(-12, 12), n=400)
    assert abs(float(arrays["mass"]) - 1.0) <= MASS_TOLERANCE
    assert_contract_invariants(arrays)


def test_disabled_layer_is_left_out_and_resolution_overrides():
    layers = [{"type": "exp", "enabled": False}, {"type": "rotation", "degrees": 40}]
    with_switch = evaluate(STANDARD, layers, n=21)
    without = evaluate(STANDARD, layers[1:], n=21)
    for key in KEYS:
        np.testing.assert_array_equal(with_switch[key], without[key])
    spec = {"base": STANDARD, "layers": layers, "view": {"resolution": 21}}
    overridden = flowviz.evaluate(spec, resolution=9)
    assert overridden["density"].shape == (9, 9)
    np.testing.assert_array_equal(overridden["x"], np.linspace(-4, 4, 9))


def test_spec_as_json_text_and_as_file_give_the_same_arrays(tmp_path):
    spec = {"base": STANDARD, "layers": MIXED_STACK[:4], "view": {"resolution": 25}}
    from_dict = flowviz.evaluate(spec)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    for source in (json.dumps(spec), path, str(path)):
        arrays = flowviz.evaluate(source)
        for key in KEYS:
            np.testing.assert_array_equal(arrays[key], from_dict[key])


def test_returned_arrays_are_the_callers_own():
    spec = {"base": STANDARD, "layers": [], "view": {"resolution": 11}}
    first = flowviz.evaluate(spec)
    first["density"][:] = -1.0
    assert np.all(flowviz.evaluate(spec)["density"] > 0)


def test_values_beyond_float64_count_as_outside():
    """A tail so thin that f^{-1}(x) overflows, and forward maps that overflow: no NaN leaks out."""
    thin = evaluate(STANDARD, [{"type": "sinh_arcsinh", "tailweight": 0.002}], n=41)
    assert (thin["density"] == 0).any() and (thin["density"] > 0).any()
    assert_contract_invariants(thin)
    double_exp = evaluate(STANDARD, [{"type": "exp"}, {"type": "exp"}], xlim=(-8, 8), ylim=(-8, 8), n=41)
    assert np.all(np.isfinite(double_exp["log_det_forward"]) | (double_exp["log_det_forward"] == np.inf))
    assert_contract_invariants(double_exp)
