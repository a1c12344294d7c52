"""flowviz.line against independent truths: scipy.stats, closed forms, quadrature, finite differences.

Every (base, map) pair of the 1D page is checked for
- p_X against a closed form (scipy or written out here), or against p_Z / f' with f' by
  central finite differences where there is none (the spline);
- the probability of a carried interval, base CDF against quadrature of p_X, and both
  against scipy.integrate.quad;
- the inverse-function rule at probe points, autograd of f^{-1} against 1 / (autograd of f');
- a histogram of pushed samples against bin averages of p_X.
"""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import integrate as scipy_integrate
from scipy import stats

from flowviz.errors import SpecError
from flowviz.layers import Affine, PiecewiseLinear, Sigmoid, SinhArcsinh, Spline, Tanh
from flowviz.line import (
    AffineOnLine,
    base_mass,
    build_line_base,
    build_line_map,
    carry_interval,
    integrate,
    line_curves,
    mass_in_window_cdf,
    probe,
    probe_range,
    pushforward_density,
    pushforward_mass,
    reaches_image_end,
    sample_histogram,
    spline_derivatives,
)

BASES = {
    "uniform": {"low": -1.0, "high": 1.5},
    "gaussian": {"mean": 0.3, "std": 0.8},
    "mixture": {"mean1": -1.0, "std1": 0.3, "mean2": 1.2, "std2": 0.6, "weight1": 0.35},
}
MAPS = {
    "affine": {"slope": 0.6, "offset": 0.4},
    "affine_decreasing": {"slope": -1.7, "offset": 0.2},
    "piecewise_linear": {"knots": [-0.5, 0.8], "slopes": [2.0, 0.4, 1.3]},
    "tanh": {"steepness": 1.2},
    "sigmoid": {"steepness": 0.8},
    "exp": {"steepness": 0.9},
    "sinh_arcsinh": {"skew": 0.4, "tailweight": 1.6},
    "spline": {"knots_z": [-1.5, 0.0, 1.2], "knots_x": [-2.2, -0.4, 0.5]},
}


def t(values) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64)


def make_map(name: str):
    return build_line_map("affine" if name.startswith("affine") else name, MAPS[name])


def make_base(name: str):
    return build_line_base(name, BASES[name])


def scipy_base(name: str):
    """The same base in scipy: pdf and cdf callables."""
    p = BASES[name]
    if name == "uniform":
        frozen = stats.uniform(p["low"], p["high"] - p["low"])
        return frozen.pdf, frozen.cdf
    if name == "gaussian":
        frozen = stats.norm(p["mean"], p["std"])
        return frozen.pdf, frozen.cdf
    first, second, w = stats.norm(p["mean1"], p["std1"]), stats.norm(p["mean2"], p["std2"]), p["weight1"]
    return (
        lambda z: w * first.pdf(z) + (1 - w) * second.pdf(z),
        lambda z: w * first.cdf(z) + (1 - w) * second.cdf(z),
    )


# --------------------------------------------------------------------------- bases


@pytest.mark.parametrize("name", BASES)
def test_base_density_and_cdf_match_scipy(name):
    base = make_base(name)
    pdf, cdf = scipy_base(name)
    z = np.linspace(-3.0, 3.0, 121) + 1e-3  # off the uniform's ends
    log_p = base.base_log_prob(t(z)).numpy()
    np.testing.assert_allclose(np.exp(log_p), pdf(z), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(base.cdf(t(z)).numpy(), cdf(z), rtol=1e-10, atol=1e-14)


def test_invalid_bases_raise_spec_errors():
    with pytest.raises(SpecError, match="must be below high"):
        build_line_base("uniform", {"low": 1.0, "high": 1.0})
    with pytest.raises(SpecError, match="std"):
        build_line_base("gaussian", {"mean": 0.0, "std": 0.0})
    with pytest.raises(SpecError, match="weight1"):
        build_line_base("mixture", {**BASES["mixture"], "weight1": 1.0})
    with pytest.raises(SpecError, match="unknown base"):
        build_line_base("cauchy", {})


def test_invalid_maps_raise_spec_errors():
    with pytest.raises(SpecError, match="slope a = 0"):
        build_line_map("affine", {"slope": 0.0, "offset": 1.0})
    with pytest.raises(SpecError, match="knots must increase"):
        build_line_map("piecewise_linear", {"knots": [1.0, 0.5], "slopes": [1, 1, 1]})
    with pytest.raises(SpecError, match="one slope > 0"):
        build_line_map("piecewise_linear", {"knots": [0.0, 0.5], "slopes": [1, 0, 1]})
    with pytest.raises(SpecError, match="steepness"):
        build_line_map("tanh", {"steepness": 0.0})
    with pytest.raises(SpecError, match="tailweight"):
        build_line_map("sinh_arcsinh", {"skew": 0.0, "tailweight": -1.0})
    with pytest.raises(SpecError, match="must increase and lie inside"):
        build_line_map("spline", {"knots_z": [-1.0, 0.0, 3.5], "knots_x": [-1.0, 0.0, 1.0]})
    with pytest.raises(SpecError, match="must increase and lie inside"):
        build_line_map("spline", {"knots_z": [-1.0, 0.0, 1.0], "knots_x": [0.0, -1.0, 1.0]})


# --------------------------------------------------------------------------- one core with the plane


def test_line_maps_are_the_plane_layers():
    """The 1D maps are flowviz layers, not a second implementation."""
    assert isinstance(make_map("tanh").steps[1], Tanh)
    assert isinstance(make_map("sigmoid").steps[1], Sigmoid)
    assert isinstance(make_map("sinh_arcsinh").steps[0], SinhArcsinh)
    assert isinstance(make_map("spline").steps[0], Spline)
    assert isinstance(make_map("piecewise_linear").steps[0], PiecewiseLinear)
    assert isinstance(make_map("affine").steps[0].layer, Affine)


def test_affine_on_line_is_the_first_coordinate_of_affine():
    z = t(np.linspace(-3, 3, 13))
    line = AffineOnLine(-1.7, 0.2)
    x, log_det = line.forward_1d(z)
    plane, plane_log_det = Affine([[-1.7, 0.0], [0.0, 1.0]], [0.2, 0.0]).forward_and_log_det(
        torch.stack([z, torch.full_like(z, 5.0)], -1)
    )
    torch.testing.assert_close(x, plane[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(log_det, plane_log_det, rtol=0, atol=0)
    torch.testing.assert_close(x, -1.7 * z + 0.2)


# --------------------------------------------------------------------------- p_X against closed forms


def closed_form_density(base_name: str, map_name: str, x: np.ndarray) -> np.ndarray | None:
    """p_X written out from the textbook change of variables, independent of the layers."""
    pdf, _ = scipy_base(base_name)
    p = MAPS[map_name]
    with np.errstate(all="ignore"):
        if map_name.startswith("affine"):
            a, b = p["slope"], p["offset"]
            return pdf((x - b) / a) / abs(a)
        if map_name == "tanh":
            k = p["steepness"]
            inside = np.abs(x) < 1
            return np.where(inside, pdf(np.arctanh(np.where(inside, x, 0)) / k) / (k * (1 - x * x)), 0.0)
        if map_name == "sigmoid":
            k = p["steepness"]
            inside = (x > 0) & (x < 1)
            xs = np.where(inside, x, 0.5)
            return np.where(inside, pdf(np.log(xs / (1 - xs)) / k) / (k * xs * (1 - xs)), 0.0)
        if map_name == "exp":
            k = p["steepness"]
            inside = x > 0
            xs = np.where(inside, x, 1.0)
            return np.where(inside, pdf(np.log(xs) / k) / (k * xs), 0.0)
        if map_name == "sinh_arcsinh":
            eps, delta = p["skew"], p["tailweight"]
            v = np.arcsinh(x) / delta - eps
            return pdf(np.sinh(v)) * np.cosh(v) / (delta * np.sqrt(1 + x * x))
        if map_name == "piecewise_linear":
            (k1, k2), (s1, s2, s3) = p["knots"], p["slopes"]
            y2 = k1 + s2 * (k2 - k1)  # h(k1) = k1 (anchored), then the middle segment
            z = np.where(x < k1, k1 + (x - k1) / s1, np.where(x < y2, k1 + (x - k1) / s2, k2 + (x - y2) / s3))
            slope = np.where(x < k1, s1, np.where(x < y2, s2, s3))
            return pdf(z) / slope
    return None


@pytest.mark.parametrize("map_name", [m for m in MAPS if m != "spline"])
@pytest.mark.parametrize("base_name", BASES)
def test_pushforward_density_matches_closed_form(base_name, map_name):
    base, fmap = make_base(base_name), make_map(map_name)
    _, x_range = line_curves(base, fmap).z_range, line_curves(base, fmap).x_range
    x = np.linspace(*x_range, 301)
    # Stay off the points where the closed form jumps (uniform ends, knots): one-sided values differ.
    expected = closed_form_density(base_name, map_name, x)
    shifted = closed_form_density(base_name, map_name, x + 1e-7)
    smooth = np.abs(expected - shifted) < 1e-4 * (1 + np.abs(expected))
    actual = pushforward_density(base, fmap, t(x)).numpy()
    np.testing.assert_allclose(actual[smooth], expected[smooth], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("base_name", BASES)
def test_spline_density_is_base_over_finite_difference_slope(base_name):
    base, fmap = make_base(base_name), make_map("spline")
    z = np.linspace(-2.9, 2.9, 97) + 1e-3
    h = 1e-6
    with torch.no_grad():
        x = fmap.forward(t(z)).numpy()
        slope = (fmap.forward(t(z + h)).numpy() - fmap.forward(t(z - h)).numpy()) / (2 * h)
    pdf, _ = scipy_base(base_name)
    expected = pdf(z) / slope
    keep = np.abs(z - 1.0) > 1e-3  # uniform's end (high = 1.5 is outside the kink-free check otherwise)
    actual = pushforward_density(base, fmap, t(x)).numpy()
    np.testing.assert_allclose(actual[keep], expected[keep], rtol=1e-6, atol=1e-10)


def test_spline_derivatives_lie_between_neighbouring_bin_slopes():
    knots_z, knots_x = [-1.5, 0.0, 1.2], [-2.2, -0.4, 0.5]
    z, x = [-3.0, *knots_z, 3.0], [-3.0, *knots_x, 3.0]
    bins = [(x[i + 1] - x[i]) / (z[i + 1] - z[i]) for i in range(4)]
    for i, d in enumerate(spline_derivatives(knots_z, knots_x)):
        assert min(bins[i], bins[i + 1]) <= d <= max(bins[i], bins[i + 1])


# --------------------------------------------------------------------------- carried probability


INTERVALS = [(-0.9, 0.3), (0.2, 1.0), (1.3, 0.5), (-2.5, 1.2), (-0.05, 0.1)]


@pytest.mark.parametrize("map_name", MAPS)
@pytest.mark.parametrize("base_name", BASES)
def test_carried_interval_keeps_its_probability(base_name, map_name):
    """Base CDF difference = quadrature of p_X over [f(z), f(z+dz)] = scipy's quad of the closed form."""
    base, fmap = make_base(base_name), make_map(map_name)
    _, cdf = scipy_base(base_name)
    for start, width in INTERVALS:
        carried = carry_interval(base, fmap, start, width)
        truth = cdf(start + width) - cdf(start)
        assert carried.mass_base == pytest.approx(truth, abs=1e-12)
        assert carried.mass_difference <= 1e-9, (start, width, carried)
        assert carried.x_lo <= carried.x_hi
        assert not carried.at_image_end
        density = closed_form_density(base_name, map_name, np.array([0.0]))
        if density is not None:  # a third route: scipy's adaptive quadrature of the textbook p_X
            quad, _ = scipy_integrate.quad(
                lambda v: float(closed_form_density(base_name, map_name, np.array([v]))[0]),
                carried.x_lo,
                carried.x_hi,
                points=[v for v in _jumps(base_name, map_name) if carried.x_lo < v < carried.x_hi] or None,
                limit=200,
                epsabs=1e-12,
            )
            assert carried.mass_pushforward == pytest.approx(quad, abs=1e-8)


def _jumps(base_name: str, map_name: str) -> list[float]:
    """Where the textbook p_X jumps: images of the uniform's ends and of the piecewise knots."""
    fmap = make_map(map_name)
    points = []
    if base_name == "uniform":
        points += [BASES["uniform"]["low"], BASES["uniform"]["high"]]
    if map_name == "piecewise_linear":
        points += MAPS["piecewise_linear"]["knots"]
    with torch.no_grad():
        return sorted(float(v) for v in fmap.forward(t(points))) if points else []


def test_decreasing_map_swaps_the_ends():
    base, fmap = make_base("gaussian"), make_map("affine_decreasing")
    carried = carry_interval(base, fmap, 0.0, 0.5)
    assert carried.x_lo == pytest.approx(-1.7 * 0.5 + 0.2)
    assert carried.x_hi == pytest.approx(0.2)
    assert carried.mass_difference <= 1e-12


def test_saturated_tanh_is_flagged():
    """tanh(5 z) rounds to 1 for z > 3.7: quadrature in x cannot see that mass, and says so."""
    base = build_line_base("gaussian", {"mean": 3.0, "std": 1.0})
    fmap = build_line_map("tanh", {"steepness": 5.0})
    carried = carry_interval(base, fmap, 3.0, 2.0)
    assert carried.at_image_end
    inner = carry_interval(base, fmap, 0.0, 1.0)
    assert not inner.at_image_end and inner.mass_difference <= 1e-9


def test_uniform_presets_give_the_textbook_numbers():
    """U[0, 1] through x = a z + b: p_X = 1 / |a| on the image, any interval keeps its length times 1."""
    base = build_line_base("uniform", {"low": 0.0, "high": 1.0})
    for slope, offset in [(1.0, 0.5), (0.5, 0.25), (2.0, -0.5)]:
        fmap = build_line_map("affine", {"slope": slope, "offset": offset})
        at = probe(base, fmap, offset + 0.5 * slope)
        assert at.density == pytest.approx(1.0 / slope, rel=1e-14)
        assert at.base_density == 1.0
        carried = carry_interval(base, fmap, 0.3, 0.25)
        assert carried.mass_base == pytest.approx(0.25, abs=1e-15)
        assert carried.mass_pushforward == pytest.approx(0.25, abs=1e-12)
        assert carried.x_hi - carried.x_lo == pytest.approx(0.25 * slope)


# --------------------------------------------------------------------------- probe and the inverse-function rule


@pytest.mark.parametrize("map_name", MAPS)
@pytest.mark.parametrize("base_name", BASES)
def test_probe_factors_and_inverse_function_rule(base_name, map_name):
    base, fmap = make_base(base_name), make_map(map_name)
    lo, hi = probe_range(base, fmap)
    pdf, _ = scipy_base(base_name)
    for x in np.linspace(lo, hi, 9)[1:-1] + 1.234e-5:
        at = probe(base, fmap, float(x))
        assert at.inside
        assert at.rule_difference <= 1e-8 * max(1.0, abs(at.inverse_slope_autograd))
        # The layers' analytic log-derivative agrees with autograd of the inverse.
        assert math.exp(at.log_det_inverse) == pytest.approx(abs(at.inverse_slope_autograd), rel=1e-10)
        with torch.no_grad():
            assert float(fmap.forward(t(at.z))) == pytest.approx(float(x), abs=1e-10)
        assert at.base_density == pytest.approx(float(pdf(at.z)), rel=1e-10, abs=1e-300)
        expected = float(pushforward_density(base, fmap, t(float(x))))
        assert at.density == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_probe_outside_the_image():
    at = probe(make_base("gaussian"), make_map("tanh"), 1.5)
    assert not at.inside and at.density == 0.0


# --------------------------------------------------------------------------- quadrature, windows, samples


def test_integrate_against_known_integrals():
    assert integrate(torch.sin, 0.0, math.pi) == pytest.approx(2.0, abs=1e-13)
    step = lambda v: torch.where(v < 0.3, 1.0, 5.0)  # noqa: E731
    assert integrate(step, 0.0, 1.0, breakpoints=[0.3]) == pytest.approx(0.3 + 3.5, abs=1e-13)
    narrow = lambda v: torch.exp(-0.5 * ((v - 0.2) / 1e-3) ** 2) / (1e-3 * math.sqrt(2 * math.pi))  # noqa: E731
    # Adaptive refinement cannot find a spike its first nodes miss; a panel edge near it is enough.
    assert integrate(narrow, -5.0, 5.0, breakpoints=[0.19]) == pytest.approx(1.0, abs=1e-10)
    assert integrate(torch.sin, 1.0, 1.0) == 0.0


@pytest.mark.parametrize("map_name", MAPS)
@pytest.mark.parametrize("base_name", BASES)
def test_mass_in_view_by_quadrature_and_by_cdf(base_name, map_name):
    base, fmap = make_base(base_name), make_map(map_name)
    curves = line_curves(base, fmap)
    assert curves.mass_in_view == pytest.approx(curves.mass_in_view_cdf, abs=1e-9)
    assert 0.999 < curves.mass_in_view <= 1.0 + 1e-12
    # Any sub-window too.
    a, b = np.quantile(curves.x, [0.3, 0.6])
    assert pushforward_mass(base, fmap, a, b) == pytest.approx(mass_in_window_cdf(base, fmap, a, b), abs=1e-9)


@pytest.mark.parametrize("map_name", ["piecewise_linear", "exp", "spline"])
@pytest.mark.parametrize("base_name", ["uniform", "mixture"])
def test_sample_histogram_follows_the_pushforward(base_name, map_name):
    base, fmap = make_base(base_name), make_map(map_name)
    x_range = line_curves(base, fmap).x_range
    count = 200_000
    edges, histogram = sample_histogram(base, fmap, count, x_range, bins=40, seed=3)
    widths = np.diff(edges)
    bin_mean = np.array([pushforward_mass(base, fmap, a, b) for a, b in itertools.pairwise(edges)])
    bin_mean /= widths
    # Each bin's count is binomial: its standard error in density units is sqrt(p (1 - p) / n) / width.
    p = bin_mean * widths
    standard_error = np.sqrt(p * (1 - p) / count) / widths
    assert np.all(np.abs(histogram - bin_mean) <= 5 * standard_error + 1e-9)
    assert (histogram * widths).sum() == pytest.approx(pushforward_mass(base, fmap, *x_range), abs=0.01)


@pytest.mark.parametrize(
    ("kind", "params", "start"),
    [
        ("piecewise_linear", {"knots": [-2.0, 2.9], "slopes": [1.0, 0.1, 1.0]}, 2.7),
        ("tanh", {"steepness": 3.0}, 2.7),
        ("sigmoid", {"steepness": 3.0}, -3.3),
    ],
)
def test_narrow_features_squeezed_by_the_map_are_not_missed(kind, params, start):
    """A 0.1-wide component through a map that squeezes it to 1e-2 .. 1e-8 of the window."""
    base = build_line_base("mixture", {"mean1": -3.0, "std1": 0.1, "mean2": 3.0, "std2": 0.1, "weight1": 0.5})
    fmap = build_line_map(kind, params)
    curves = line_curves(base, fmap)
    assert curves.mass_in_view == pytest.approx(curves.mass_in_view_cdf, abs=1e-8)
    carried = carry_interval(base, fmap, start, 0.6)
    assert carried.mass_base > 0.1
    assert carried.mass_difference <= 1e-8


def test_base_mass_is_a_cdf_difference():
    base = make_base("mixture")
    _, cdf = scipy_base("mixture")
    assert base_mass(base, -0.4, 0.9) == pytest.approx(cdf(0.9) - cdf(-0.4), abs=1e-14)
    assert base_mass(base, -math.inf, math.inf) == pytest.approx(1.0, abs=1e-15)


# --------------------------------------------------------------------------- mass beyond the base's window


def test_carried_interval_far_in_the_exp_tail():
    """[8, 16] under N(0, 2^2) (4 to 8 std out) through exp(3 z) lands on [e^24, e^48].

    That lies wholly beyond f of the base's window [-8, 8], so quadrature seeded only there
    saw one panel whose nodes all missed the mass (6.5e-12 against 3.17e-5).
    """
    base = build_line_base("gaussian", {"mean": 0.0, "std": 2.0})
    fmap = build_line_map("exp", {"steepness": 3.0})
    carried = carry_interval(base, fmap, 8.0, 8.0)
    truth = stats.norm(0.0, 2.0).sf(8.0) - stats.norm(0.0, 2.0).sf(16.0)  # 3.1671241832e-05
    assert carried.mass_base == pytest.approx(truth, rel=1e-10)
    assert carried.mass_pushforward == pytest.approx(truth, rel=1e-9, abs=1e-15)
    assert carried.mass_difference <= 1e-12
    assert not carried.at_image_end


def sinh_arcsinh_preimage(x: float, skew: float, tailweight: float) -> mpmath.mpf:
    """z = sinh(asinh(x) / tailweight - skew), the textbook inverse, in 50-digit arithmetic."""
    return mpmath.sinh(mpmath.asinh(mpmath.mpf(x)) / tailweight - skew)


def test_mass_in_view_counts_the_tails_beyond_the_base_window():
    """Sinh-arcsinh's image is all of R: the padded x window reaches past f(z_range), and
    the mass out there (Gaussian tail beyond -4 std, 3e-5) must be counted by quadrature too."""
    mean, std, skew, tailweight = -0.7, 1.95, -1.85, 2.75
    base = build_line_base("gaussian", {"mean": mean, "std": std})
    fmap = build_line_map("sinh_arcsinh", {"skew": skew, "tailweight": tailweight})
    curves = line_curves(base, fmap)
    with mpmath.workdps(50):
        z_lo, z_hi = (sinh_arcsinh_preimage(v, skew, tailweight) for v in curves.x_range)
        truth = float(mpmath.ncdf(z_hi, mean, std) - mpmath.ncdf(z_lo, mean, std))
    assert truth == pytest.approx(0.9999814275, abs=1e-10)
    assert curves.mass_in_view_cdf == pytest.approx(truth, abs=1e-12)
    assert curves.mass_in_view == pytest.approx(truth, abs=1e-10)  # was 0.9999497563
    assert not curves.reaches_image_end  # no finite end of the image: nowhere for f to be flat


def test_reaches_image_end_only_for_a_bounded_image():
    base = build_line_base("gaussian", {"mean": 0.0, "std": 2.0})
    assert line_curves(base, build_line_map("tanh", {"steepness": 3.0})).reaches_image_end
    assert line_curves(base, build_line_map("exp", {"steepness": 1.0})).reaches_image_end
    assert not line_curves(base, build_line_map("affine", {"slope": -2.0, "offset": 1.0})).reaches_image_end
    assert not reaches_image_end(build_line_map("tanh", {"steepness": 1.0}), -0.5, 0.9)


def test_probe_range_stays_inside_an_open_image():
    """N(0, 2^2) through tanh(3 z): f of the window [-8, 8] rounds to exactly -1 and 1."""
    base = build_line_base("gaussian", {"mean": 0.0, "std": 2.0})
    fmap = build_line_map("tanh", {"steepness": 3.0})
    lo, hi = probe_range(base, fmap)
    assert -1.0 < lo < -0.99 and 0.99 < hi < 1.0
    for x in (lo, hi):
        at = probe(base, fmap, x)
        assert at.inside and math.isfinite(at.z)
        assert math.tanh(3.0 * at.z) == pytest.approx(x, abs=1e-12)
        assert at.rule_difference <= 1e-8 * max(1.0, abs(at.inverse_slope_autograd))


# --------------------------------------------------------------------------- a sweep over the page's sliders


PAGE_MAPS = ["affine", "piecewise_linear", "tanh", "sigmoid", "exp", "sinh_arcsinh", "spline"]


def _slider(rng, low: float, high: float, step: float = 0.05) -> float:
    """A value a slider over [low, high] in steps of ``step`` can take; one in three at an end,
    where the page is hardest to get right (the widest, steepest, most skewed settings)."""
    if rng.random() < 1 / 3:
        return low if rng.random() < 0.5 else high
    return round(low + step * int(rng.integers(0, round((high - low) / step) + 1)), 10)


def _increasing(rng, count: int, low: float, high: float) -> list[float]:
    grid = np.round(np.arange(low, high + 1e-9, 0.05), 10)
    return sorted(float(v) for v in rng.choice(grid, count, replace=False))


def random_page_setting(rng) -> tuple[str, dict, str, dict]:
    """A base and a map drawn from the 1D page's menus and slider ranges (valid ones only)."""
    base_kind = str(rng.choice(list(BASES)))
    if base_kind == "uniform":
        low, high = _increasing(rng, 2, -3.0, 3.0)
        base_params = {"low": low, "high": high}
    elif base_kind == "gaussian":
        base_params = {"mean": _slider(rng, -3.0, 3.0), "std": _slider(rng, 0.1, 2.0)}
    else:
        base_params = {
            "mean1": _slider(rng, -3.0, 3.0),
            "std1": _slider(rng, 0.1, 2.0),
            "mean2": _slider(rng, -3.0, 3.0),
            "std2": _slider(rng, 0.1, 2.0),
            "weight1": _slider(rng, 0.05, 0.95),
        }
    map_kind = str(rng.choice(PAGE_MAPS))
    if map_kind == "affine":
        slope = 0.0
        while slope == 0.0:
            slope = _slider(rng, -3.0, 3.0)
        map_params = {"slope": slope, "offset": _slider(rng, -3.0, 3.0)}
    elif map_kind == "piecewise_linear":
        map_params = {
            "knots": _increasing(rng, 2, -3.0, 3.0),
            "slopes": [_slider(rng, 0.1, 3.0) for _ in range(3)],
        }
    elif map_kind in ("tanh", "sigmoid", "exp"):
        map_params = {"steepness": _slider(rng, 0.1, 3.0)}
    elif map_kind == "sinh_arcsinh":
        map_params = {"skew": _slider(rng, -2.0, 2.0), "tailweight": _slider(rng, 0.2, 3.0)}
    else:
        map_params = {"knots_z": _increasing(rng, 3, -2.9, 2.9), "knots_x": _increasing(rng, 3, -2.9, 2.9)}
    return base_kind, base_params, map_kind, map_params


def scipy_cdf(kind: str, params: dict):
    if kind == "uniform":
        return stats.uniform(params["low"], params["high"] - params["low"]).cdf
    if kind == "gaussian":
        return stats.norm(params["mean"], params["std"]).cdf
    first, second = stats.norm(params["mean1"], params["std1"]), stats.norm(params["mean2"], params["std2"])
    w = params["weight1"]
    return lambda z: w * first.cdf(z) + (1 - w) * second.cdf(z)


IMAGE_ENDS = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "exp": (0.0,)}  # the finite ends of f(R)


def flat_end_mass(map_kind: str, steepness: float, cdf, within: float = 1e-12) -> float:
    """The base mass that f sends within ``within`` of a finite end of its image (closed forms)."""
    if map_kind == "tanh":
        edge = math.atanh(1 - within) / steepness
        return float(cdf(-edge) + 1 - cdf(edge))
    if map_kind == "sigmoid":
        edge = math.log((1 - within) / within) / steepness
        return float(cdf(-edge) + 1 - cdf(edge))
    if map_kind == "exp":
        return float(cdf(math.log(within) / steepness))
    return 0.0


def preimage_by_bisection(fmap, x: float, reach: float = 1e6) -> float:
    """f^{-1}(x) from f alone (never through the layers' inverse); -inf / +inf beyond f(-reach) / f(reach)."""
    with torch.no_grad():
        f_lo, f_hi = (float(v) for v in fmap.forward(t([-reach, reach])))
        sign = 1.0 if f_hi > f_lo else -1.0
        if sign * x <= sign * f_lo:
            return -math.inf
        if sign * x >= sign * f_hi:
            return math.inf
        lo, hi = -reach, reach
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            lo, hi = (mid, hi) if sign * float(fmap.forward(t(mid))) < sign * x else (lo, mid)
        return 0.5 * (lo + hi)


def assert_page_setting_keeps_probability(setting, intervals) -> None:
    """One page setting: the carried intervals and the shown x window, quadrature of p_X
    against scipy's base CDF (at preimages found by bisection on f for the window).

    1e-9 wherever f is not flat; within 1e-9 of a finite end of the image, where float64 x
    cannot resolve the distance to the end, the page's 1e-6 or its warning; and a window
    holding such an end may miss at most the mass f sends within 1e-12 of it. The probe
    range lies strictly inside the image.
    """
    base_kind, base_params, map_kind, map_params = setting
    base, fmap = build_line_base(base_kind, base_params), build_line_map(map_kind, map_params)
    cdf = scipy_cdf(base_kind, base_params)
    curves = line_curves(base, fmap)
    ends = IMAGE_ENDS.get(map_kind, ())

    for start, width in intervals(*curves.z_range):
        carried = carry_interval(base, fmap, start, width)
        truth = float(cdf(start + width) - cdf(start))
        error = abs(carried.mass_pushforward - truth)
        assert carried.mass_base == pytest.approx(truth, abs=1e-12), setting
        if min((abs(e - v) for e in ends for v in (carried.x_lo, carried.x_hi)), default=math.inf) >= 1e-9:
            assert error <= 1e-9, (setting, start, width, error)
        else:
            assert error <= 1e-6 or carried.at_image_end, (setting, start, width, error)

    x_lo, x_hi = curves.x_range
    window_truth = float(cdf(preimage_by_bisection(fmap, x_hi)) - cdf(preimage_by_bisection(fmap, x_lo)))
    window_truth = abs(window_truth)  # a decreasing map swaps the preimages
    assert curves.mass_in_view_cdf == pytest.approx(window_truth, abs=1e-10), setting
    assert curves.reaches_image_end == any(x_lo <= e <= x_hi for e in ends), setting
    allowed = 1e-9 + flat_end_mass(map_kind, map_params.get("steepness", 1.0), cdf)
    assert abs(curves.mass_in_view - window_truth) <= allowed, (setting, curves.mass_in_view, window_truth)

    lo, hi = curves.probe_range
    image_lo, image_hi = fmap.image()
    assert image_lo < lo < hi < image_hi, setting


def test_page_settings_sweep_keeps_probability(one_torch_thread):
    """100 random settings of the page's menus and sliders, each with one interval the sliders allow."""
    rng = np.random.default_rng(20240611)
    kinds = set()
    for _ in range(100):
        setting = random_page_setting(rng)
        kinds.add(setting[2])

        def interval(z_lo, z_hi):  # the page's interval sliders: start in the window, width up to half
            span = z_hi - z_lo
            return [(_slider(rng, z_lo, z_hi, span / 200), _slider(rng, span / 200, span / 2, span / 200))]

        assert_page_setting_keeps_probability(setting, interval)
    assert kinds == set(PAGE_MAPS)


CORNER_BASES = [
    ("gaussian", {"mean": -3.0, "std": 2.0}),
    ("gaussian", {"mean": 3.0, "std": 2.0}),
    ("mixture", {"mean1": -3.0, "std1": 2.0, "mean2": 3.0, "std2": 0.1, "weight1": 0.95}),
    ("uniform", {"low": -3.0, "high": 3.0}),
]
CORNER_MAPS = [
    ("affine", {"slope": 3.0, "offset": 3.0}),
    ("affine", {"slope": -0.05, "offset": -3.0}),
    ("piecewise_linear", {"knots": [-3.0, 3.0], "slopes": [3.0, 0.1, 3.0]}),
    ("piecewise_linear", {"knots": [-3.0, 3.0], "slopes": [0.1, 3.0, 0.1]}),
    ("tanh", {"steepness": 3.0}),
    ("sigmoid", {"steepness": 3.0}),
    ("exp", {"steepness": 3.0}),
    ("exp", {"steepness": 0.1}),
    ("sinh_arcsinh", {"skew": -2.0, "tailweight": 3.0}),
    ("sinh_arcsinh", {"skew": 2.0, "tailweight": 3.0}),
    ("sinh_arcsinh", {"skew": 2.0, "tailweight": 0.2}),
    ("spline", {"knots_z": [-2.9, -2.85, 2.9], "knots_x": [-2.9, 2.85, 2.9]}),
]


@pytest.mark.parametrize(("map_kind", "map_params"), CORNER_MAPS)
def test_page_slider_corners_keep_probability(one_torch_thread, map_kind, map_params):
    """The sliders at their ends, where the tails are widest and f stretches them most; the
    interval at the far ends of its sliders, e.g. [8, 16] under N(0, 2^2), 4 to 8 std out."""

    def intervals(z_lo, z_hi):
        span = z_hi - z_lo
        return [(z_hi, span / 2), (z_lo, span / 2), (z_hi - span / 4, span / 200)]

    for base_kind, base_params in CORNER_BASES:
        assert_page_setting_keeps_probability((base_kind, base_params, map_kind, map_params), intervals)
