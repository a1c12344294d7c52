"""Valid but extreme layer parameters: the density must not collapse where the map is fine.

Each case is checked against a truth computed independently of the layer's own
arithmetic:

- spline: widths and heights are only ratios (the spec rescales them to sum to
  2 * bound), so scaling them by 2^1020 or 2^-1074 (so that the sum overflows,
  or 2 * bound / sum does) must give the same evaluation as the unscaled ones;
- radial: with alpha = beta huge the map is x = z + beta (z - c) / (alpha + r),
  checked against the change of variables done in mpmath at 60 digits, against
  the limit map x = c + 2 (z - c) on a whole grid, and against autograd;
- swirl: with a tiny radius the angle exp(-r^2 / (2 radius^2)) is 0 away from
  the centre, and at the centre the rotation acts on z - c = 0, so the map is the
  identity and the density is the base density at every grid point.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

import flowviz
from flowviz.layers import build_layer
from flowviz.spec import parse_spec

VIEW = {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0], "resolution": 81}


def evaluate(layers: list[dict], base: dict | None = None, view: dict | None = None) -> dict:
    spec = {"base": base or {"type": "gaussian"}, "layers": layers, "view": view or VIEW}
    return flowviz.evaluate(spec)


def canonical_layer(layer: dict) -> dict:
    return parse_spec({"base": {"type": "gaussian"}, "layers": [layer]})["layers"][0]


def assert_same_evaluation(got: dict, want: dict, rtol: float = 1e-12) -> None:
    for key in ("density", "log_density", "base_log_prob", "log_det_inverse", "log_det_forward"):
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=0.0, err_msg=key)
    np.testing.assert_allclose(got["mass"], want["mass"], rtol=rtol, atol=0.0, err_msg="mass")


def autograd_log_det(map_, points: torch.Tensor) -> torch.Tensor:
    """log|det J| of a pointwise map at each point, from autograd's Jacobian (float64)."""
    jac = torch.func.vmap(torch.func.jacrev(lambda v: map_(v.unsqueeze(0)).squeeze(0)))(points)
    sign, logabs = torch.linalg.slogdet(jac)
    assert torch.all(sign != 0)
    return logabs


# --------------------------------------------------------------------------- spline

WIDTHS = [3.0, 5.0, 12.0, 4.0]  # small integers: exact at every power-of-two scale below
HEIGHTS = [7.0, 2.0, 9.0, 6.0]
SLOPES = [0.4, 3.0, 1.7]
HUGE = 2.0**1020  # largest bin 1.5 * 2^1023 is finite, the sum 1.5 * 2^1024 is not
TINY = 2.0**-1074  # the smallest subnormal: 2 * bound / sum overflows


def spline(widths, heights, derivatives=SLOPES, **extra) -> dict:
    return {"type": "spline", "widths": widths, "heights": heights, "derivatives": derivatives, **extra}


@pytest.mark.parametrize(
    ("width_scale", "height_scale"),
    [(HUGE, HUGE), (TINY, TINY), (HUGE, TINY), (TINY, 1.0), (1.0, HUGE)],
    ids=["huge", "tiny", "huge-widths-tiny-heights", "tiny-widths", "huge-heights"],
)
def test_spline_scaled_bins_give_the_same_density(width_scale, height_scale):
    want = evaluate([spline(WIDTHS, HEIGHTS)])
    assert 0.99 < want["mass"] < 1.01  # a Riemann sum on a coarse grid
    widths = [w * width_scale for w in WIDTHS]
    heights = [h * height_scale for h in HEIGHTS]
    assert all(math.isfinite(v) and v > 0 for v in widths + heights)
    assert_same_evaluation(evaluate([spline(widths, heights)]), want)


@pytest.mark.parametrize("size", [1e308, 1e-320, 1.7e308, 5e-324])
def test_spline_equal_extreme_bins_are_the_equal_bins_map(size):
    """The reviewer's case: [s, s] is the same map as [1, 1] for every positive s."""
    view = {"xlim": [-3.0, 3.0], "ylim": [-3.0, 3.0], "resolution": 61}
    layer = {"dims": [0], "bound": 2.5}
    want = evaluate([spline([1.0, 1.0], [1.0, 1.0], [1.3], **layer)], view=view)
    got = evaluate([spline([size, size], [size, size], [1.3], **layer)], view=view)
    assert_same_evaluation(got, want)
    assert np.all(got["density"] > 0)


def test_spline_decimal_scaling_agrees():
    """Widths given at 1e300 and 1e-300 times decimals that push the sum past the range."""
    widths, heights = [0.3, 0.5, 1.2, 0.4], [0.7, 0.2, 0.9, 0.6]
    want = evaluate([spline(widths, heights)])
    for wide, high in [(1e308, 1e308), (1e-300, 1e308), (1e308, 1e-300)]:
        got = evaluate([spline([w * wide for w in widths], [h * high for h in heights])])
        assert_same_evaluation(got, want)


# --------------------------------------------------------------------------- radial


def radial(alpha: float, beta: float, center=(0.0, 0.0)) -> dict:
    return {"type": "radial", "center": list(center), "alpha": alpha, "beta": beta}


RADIAL_EXTREMES = [
    (1e160, 1e160),
    (1e300, 1e300),
    (1e308, 1e308),  # alpha + beta overflows
    (1e200, -1e200 * (1.0 - 1e-4)),  # beta close to -alpha: a strong pull towards the centre
    (1e-300, 1e-300),  # tiny: a push that only matters within 1e-300 of the centre
]


def mp_log_density(alpha: float, beta: float, center, x) -> float:
    """log p(x) for a standard Gaussian base under one radial layer, at 60 digits."""
    with mpmath.workdps(60):
        a, b = mpmath.mpf(alpha), mpmath.mpf(beta)
        d = [mpmath.mpf(float(x[i])) - mpmath.mpf(center[i]) for i in range(2)]
        big_r = mpmath.sqrt(d[0] ** 2 + d[1] ** 2)
        p = a + b - big_r
        r = (-p + mpmath.sqrt(p * p + 4 * a * big_r)) / 2  # r^2 + p r - alpha R = 0, r >= 0
        factor = (a + r) / (a + b + r)
        z = [mpmath.mpf(center[i]) + factor * d[i] for i in range(2)]
        log_det_f = mpmath.log(1 + b / (a + r)) + mpmath.log(1 + a * b / (a + r) ** 2)
        base = -(z[0] ** 2 + z[1] ** 2) / 2 - mpmath.log(2 * mpmath.pi)
        return float(base - log_det_f)


@pytest.mark.parametrize(("alpha", "beta"), RADIAL_EXTREMES)
def test_radial_extreme_density_matches_mpmath(alpha, beta):
    center = (0.25, -0.5)
    view = {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0], "resolution": 33}
    got = evaluate([radial(alpha, beta, center)], view=view)
    assert np.all(np.isfinite(got["log_density"]))
    xs, ys = got["x"], got["y"]
    for i, j in [(0, 0), (16, 16), (10, 20), (32, 5), (20, 18), (7, 31)]:
        want = mp_log_density(alpha, beta, center, (xs[j], ys[i]))
        assert got["log_density"][i, j] == pytest.approx(want, rel=1e-11, abs=1e-11), (i, j)


@pytest.mark.parametrize("alpha", [1e160, 1e250, 1e308])
def test_radial_huge_alpha_equal_beta_is_doubling(alpha):
    """alpha = beta -> infinity: x = 2 z near the centre, so p(x) = N(x / 2) / 4 on the whole grid."""
    got = evaluate([radial(alpha, alpha)], view={**VIEW, "resolution": 101})
    gx, gy = np.meshgrid(got["x"], got["y"])
    want = np.exp(-(gx**2 + gy**2) / 8.0) / (2.0 * np.pi) / 4.0
    np.testing.assert_allclose(got["density"], want, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(got["mass"], want.sum() * (8.0 / 100) ** 2, rtol=1e-12)
    # and a moderately large alpha, where the old arithmetic was fine, holds the same mass
    moderate = evaluate([radial(1e12, 1e12)], view={**VIEW, "resolution": 101})
    assert got["mass"] == pytest.approx(float(moderate["mass"]), rel=1e-9)
    assert 0.91 < got["mass"] < 0.92  # about P(|z_i| < 2)^2 = 0.9545^2 = 0.911


@pytest.mark.parametrize(("alpha", "beta"), RADIAL_EXTREMES)
def test_radial_extreme_round_trip_and_log_det_against_autograd(alpha, beta):
    layer = build_layer(canonical_layer(radial(alpha, beta, (0.25, -0.5))))
    z = torch.tensor(
        [[0.0, 0.0], [1.0, 2.0], [-3.0, 0.5], [0.25, -0.4], [5.0, -5.0], [1e-3, 2e-3]],
        dtype=torch.float64,
    )
    x, log_det_forward = layer.forward_and_log_det(z)
    z_back, log_det_inverse = layer.inverse_and_log_det(x)
    assert torch.all(torch.isfinite(x)) and torch.all(torch.isfinite(log_det_forward))
    torch.testing.assert_close(z_back, z, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(log_det_inverse, -log_det_forward, rtol=1e-12, atol=1e-12)
    forward_ref = autograd_log_det(lambda v: layer.forward_and_log_det(v)[0], z)
    inverse_ref = autograd_log_det(lambda v: layer.inverse_and_log_det(v)[0], x)
    torch.testing.assert_close(log_det_forward, forward_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_det_inverse, inverse_ref, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- swirl


def gaussian_density(gx, gy, mean, cov) -> np.ndarray:
    cov = np.asarray(cov)
    prec = np.linalg.inv(cov)
    dx, dy = gx - mean[0], gy - mean[1]
    quad = prec[0, 0] * dx * dx + 2.0 * prec[0, 1] * dx * dy + prec[1, 1] * dy * dy
    return np.exp(-0.5 * quad) / (2.0 * np.pi * math.sqrt(np.linalg.det(cov)))


SWIRL_BASES = [
    ({"type": "gaussian"}, [0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]),
    (
        {"type": "gaussian", "mean": [0.3, -0.2], "cov": [[1.5, 0.4], [0.4, 0.8]]},
        [0.3, -0.2],
        [[1.5, 0.4], [0.4, 0.8]],
    ),
]


@pytest.mark.parametrize("radius", [1e-200, 1e-160, 1e-310, 5e-324])
@pytest.mark.parametrize("center", [(0.0, 0.0), (0.5, -1.0)])
@pytest.mark.parametrize("base_index", [0, 1])
def test_swirl_tiny_radius_is_the_identity(radius, center, base_index):
    base, mean, cov = SWIRL_BASES[base_index]
    # the reviewer's view, shifted so the centre is its middle grid point
    view = {
        "xlim": [center[0] - 4.0, center[0] + 4.0],
        "ylim": [center[1] - 4.0, center[1] + 4.0],
        "resolution": 201,
    }
    got = evaluate([{"type": "swirl", "center": list(center), "strength": 2.5, "radius": radius}], base, view)
    gx, gy = np.meshgrid(got["x"], got["y"])
    assert np.any((gx == center[0]) & (gy == center[1]))
    np.testing.assert_allclose(got["density"], gaussian_density(gx, gy, mean, cov), rtol=1e-12, atol=0.0)
    assert np.all(got["log_det_inverse"] == 0.0) and np.all(got["log_det_forward"] == 0.0)


@pytest.mark.parametrize("radius", [1e-200, 1e-310, 5e-324, 1e200])
def test_swirl_extreme_radius_round_trip_and_unit_jacobian(radius):
    strength = 2.5
    center = (0.5, -1.0)
    layer = build_layer(
        canonical_layer({"type": "swirl", "center": list(center), "strength": strength, "radius": radius})
    )
    z = torch.tensor([center, [1.0, 2.0], [-3.0, 0.5], [0.5 + 1e-3, -1.0]], dtype=torch.float64)
    x, _ = layer.forward_and_log_det(z)
    if radius < 1.0:  # the identity
        torch.testing.assert_close(x, z, rtol=0.0, atol=0.0)
    else:  # a rigid rotation by `strength` about the centre
        c, s = math.cos(strength), math.sin(strength)
        d = z - torch.tensor(center, dtype=torch.float64)
        rotated = torch.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], -1)
        torch.testing.assert_close(
            x, rotated + torch.tensor(center, dtype=torch.float64), rtol=1e-14, atol=1e-14
        )
    z_back, _ = layer.inverse_and_log_det(x)
    torch.testing.assert_close(z_back, z, rtol=1e-14, atol=1e-14)
    # det J = 1 everywhere, the centre included (there J is the rotation by `strength`)
    for map_, points in [
        (lambda v: layer.forward_and_log_det(v)[0], z),
        (lambda v: layer.inverse_and_log_det(v)[0], x),
    ]:
        torch.testing.assert_close(
            autograd_log_det(map_, points),
            torch.zeros(len(points), dtype=torch.float64),
            rtol=0.0,
            atol=1e-12,
        )


@pytest.mark.parametrize("radius", [1e155, 1e200, 1.7e308])
def test_swirl_huge_radius_is_a_rigid_rotation(radius):
    """radius -> infinity: theta = strength everywhere, so p(x) = p_base(c + R(-strength)(x - c))."""
    base, mean, cov = SWIRL_BASES[1]
    strength, center = 2.5, (0.5, -1.0)
    got = evaluate([{"type": "swirl", "center": list(center), "strength": strength, "radius": radius}], base)
    gx, gy = np.meshgrid(got["x"], got["y"])
    c, s = math.cos(strength), math.sin(strength)
    dx, dy = gx - center[0], gy - center[1]
    zx, zy = center[0] + c * dx + s * dy, center[1] - s * dx + c * dy
    np.testing.assert_allclose(got["density"], gaussian_density(zx, zy, mean, cov), rtol=1e-12, atol=0.0)
