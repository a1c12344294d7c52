r"""Change of variables on a line: a base density p_Z, a monotone map x = f(z), and p_X.

For a strictly monotone, differentiable f the probability in [z, z + dz] is carried
to the image interval [f(z), f(z + dz)] unchanged, which gives the 1D formula

    p_X(x) = p_Z(f^{-1}(x)) |d f^{-1}/dx|,   d f^{-1}/dx = 1 / f'(f^{-1}(x)).

Where |f'| < 1 the map squeezes length and the density rises; where |f'| > 1 it
stretches length and the density falls.

The maps here are the flowviz layers themselves: an elementwise layer's
``forward_1d`` / ``inverse_1d`` is the scalar map, and x = a z + b is the 2D
:class:`~flowviz.layers.Affine` acting on the first coordinate. There is no second
implementation of any map. The base densities are ``torch.distributions``.

Every number has two independent routes where the page checks one against the other:
an interval's probability from the base CDF and from quadrature of p_X, and
d f^{-1}/dx from autograd of the inverse and from autograd of the forward.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, MixtureSameFamily, Normal, Uniform

from flowviz.errors import SpecError
from flowviz.layers import Affine, PiecewiseLinear, SinhArcsinh, Spline
from flowviz.layers.elementwise import Exp, Sigmoid, Tanh

DTYPE = torch.float64
BASE_KINDS: dict[str, str] = {
    "uniform": "Uniform on [low, high]",
    "gaussian": "Gaussian",
    "mixture": "Mixture of two Gaussians",
}
MAP_KINDS: dict[str, str] = {
    "affine": "Affine: x = a z + b",
    "piecewise_linear": "Piecewise linear (one slope per segment)",
    "tanh": "tanh",
    "sigmoid": "Sigmoid",
    "exp": "Exponential",
    "sinh_arcsinh": "Sinh-arcsinh",
    "spline": "Rational-quadratic spline",
}
SPLINE_BOUND = 3.0

# The three classic cases on a uniform base on [0, 1] through x = a z + b:
# name -> (label, slope a, offset b, probe x at z = 0.75 or 0.8, beside the shaded interval [0.3, 0.55]).
CLASSIC_CASES: dict[str, tuple[str, float, float, float]] = {
    "volume": ("Volume preserving (|f'| = 1)", 1.0, 0.5, 1.25),
    "compress": ("Compressing (|f'| < 1: density rises)", 0.5, 0.25, 0.65),
    "expand": ("Expanding (|f'| > 1: density falls)", 2.0, -0.5, 1.1),
}
CLASSIC_BASE = ("uniform", {"low": 0.0, "high": 1.0})
CLASSIC_INTERVAL = (0.3, 0.25)  # start z and width dz
# The 1D page's opening picture: a uniform base through a piecewise linear map whose three slopes
# stretch, squeeze and stretch again; its interval (start, width) and probe x.
DEFAULT_BASE = ("uniform", {"low": -2.0, "high": 2.0})
DEFAULT_MAP = ("piecewise_linear", {"knots": [-1.0, 1.0], "slopes": [2.0, 0.5, 1.5]})
DEFAULT_INTERVAL = (-1.7, 0.5)
DEFAULT_PROBE = 0.0


def _t(value) -> Tensor:
    return torch.as_tensor(value, dtype=DTYPE)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# --------------------------------------------------------------------------- the base p_Z


@dataclass(frozen=True)
class LineBase:
    """A base density on the line.

    ``breakpoints``: where the density jumps (the ends of a uniform); ``z_range``: a
    window that holds all but a sliver of the mass, for drawing.
    """

    distribution: Distribution
    breakpoints: tuple[float, ...]
    z_range: tuple[float, float]
    latex: str

    def base_log_prob(self, z: Tensor) -> Tensor:
        """log p_Z(z); -inf outside the support and at NaN (a point with no preimage)."""
        log_p = self.distribution.log_prob(z)
        return torch.where(torch.isnan(log_p), torch.full_like(log_p, -math.inf), log_p)

    def cdf(self, z: Tensor) -> Tensor:
        return self.distribution.cdf(z)

    def sample(self, count: int, seed: int = 0) -> Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.distribution.sample((count,))


def build_line_base(kind: str, params: Mapping[str, float]) -> LineBase:
    """The base ``kind`` (see BASE_KINDS) with its parameters; SpecError for a bad combination.

    uniform: low, high. gaussian: mean, std. mixture: mean1, std1, mean2, std2, weight1.
    """
    if kind == "uniform":
        low, high = float(params["low"]), float(params["high"])
        if not low < high:
            raise SpecError(
                "uniform base", f"low = {_fmt(low)} must be below high = {_fmt(high)} (the interval is empty)"
            )
        pad = 0.25 * (high - low)
        latex = rf"p_Z = \mathcal{{U}}[{_fmt(low)},\, {_fmt(high)}]"
        return LineBase(
            Uniform(_t(low), _t(high), validate_args=False), (low, high), (low - pad, high + pad), latex
        )
    if kind == "gaussian":
        mean, std = float(params["mean"]), float(params["std"])
        if not std > 0:
            raise SpecError("gaussian base", f"std = {_fmt(std)} must be > 0")
        latex = rf"p_Z = \mathcal{{N}}({_fmt(mean)},\, {_fmt(std)}^2)"
        return LineBase(
            Normal(_t(mean), _t(std), validate_args=False), (), (mean - 4 * std, mean + 4 * std), latex
        )
    if kind == "mixture":
        means = [float(params["mean1"]), float(params["mean2"])]
        stds = [float(params["std1"]), float(params["std2"])]
        weight = float(params["weight1"])
        if not min(stds) > 0:
            raise SpecError("mixture base", "both standard deviations must be > 0")
        if not 0 < weight < 1:
            raise SpecError("mixture base", f"weight1 = {_fmt(weight)} must lie strictly between 0 and 1")
        mixture = MixtureSameFamily(
            Categorical(probs=_t([weight, 1 - weight]), validate_args=False),
            Normal(_t(means), _t(stds), validate_args=False),
            validate_args=False,
        )
        lo = min(m - 4 * s for m, s in zip(means, stds, strict=True))
        hi = max(m + 4 * s for m, s in zip(means, stds, strict=True))
        latex = (
            rf"p_Z = {_fmt(weight)}\,\mathcal{{N}}({_fmt(means[0])},\, {_fmt(stds[0])}^2)"
            rf" + {_fmt(1 - weight)}\,\mathcal{{N}}({_fmt(means[1])},\, {_fmt(stds[1])}^2)"
        )
        return LineBase(mixture, (), (lo, hi), latex)
    raise SpecError("base", f"unknown base {kind!r}; the bases are {', '.join(BASE_KINDS)}")


# --------------------------------------------------------------------------- the map f


class AffineOnLine:
    """x = a z + b: the 2D :class:`Affine` layer with A = diag(a, 1), s = (b, 0), read on coordinate 0.

    Its log|det J| = log|a| + log 1 is exactly log|f'| of the line map.
    """

    def __init__(self, slope: float, offset: float) -> None:
        self.layer = Affine([[slope, 0.0], [0.0, 1.0]], [offset, 0.0])

    @staticmethod
    def _lift(t: Tensor) -> Tensor:
        return torch.stack([t, torch.zeros_like(t)], -1)

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        x, log_det = self.layer.forward_and_log_det(self._lift(t))
        return x[..., 0], log_det

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        z, log_det = self.layer.inverse_and_log_det(self._lift(y))
        return z[..., 0], log_det


def _kinks(step) -> Tensor:
    """Where a step's derivative jumps or bends (knots), in its own input coordinate."""
    if isinstance(step, PiecewiseLinear):
        return step.knots
    if isinstance(step, Spline):
        return step.knots()[0]
    return torch.zeros(0, dtype=DTYPE)


class LineMap:
    """x = f(z), a chain of scalar steps (each with ``forward_1d`` and ``inverse_1d``), applied in order."""

    def __init__(self, steps: Sequence, latex: str) -> None:
        self.steps = tuple(steps)
        self.latex = latex

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """f(z) and log|f'(z)|."""
        log_det = torch.zeros_like(z)
        for step in self.steps:
            z, log_deriv = step.forward_1d(z)
            log_det = log_det + log_deriv
        return z, log_det

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """f^{-1}(x) and log|d f^{-1}/dx| (NaN where x lies outside the image)."""
        log_det = torch.zeros_like(x)
        for step in reversed(self.steps):
            x, log_deriv = step.inverse_1d(x)
            log_det = log_det + log_deriv
        return x, log_det

    def forward(self, z: Tensor) -> Tensor:
        return self.forward_and_log_det(z)[0]

    def inverse(self, x: Tensor) -> Tensor:
        return self.inverse_and_log_det(x)[0]

    def image(self) -> tuple[float, float]:
        """The ends of f(R) (possibly infinite): the map is monotone, so they are f(-inf) and f(+inf)."""
        with torch.no_grad():
            ends = self.forward(_t([-math.inf, math.inf]))
        lo, hi = sorted(float(v) for v in ends)
        return lo, hi

    def knots(self) -> tuple[list[float], list[float]]:
        """The points (z, f(z)) where f' jumps or bends (the knots of a piecewise map), for drawing."""
        knots_z: list[float] = []
        knots_x: list[float] = []
        with torch.no_grad():
            for index, step in enumerate(self.steps):
                u = _kinks(step)
                z, x = u, u
                for earlier in reversed(self.steps[:index]):
                    z = earlier.inverse_1d(z)[0]
                for later in self.steps[index:]:
                    x = later.forward_1d(x)[0]
                knots_z.extend(float(v) for v in z)
                knots_x.extend(float(v) for v in x)
        return knots_z, knots_x

    def kinks_x(self) -> list[float]:
        """Where f' jumps or bends, mapped to x: the places p_X may jump or bend."""
        return self.knots()[1]


def _increasing(values: Sequence[float]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


def spline_derivatives(knots_z: Sequence[float], knots_x: Sequence[float]) -> list[float]:
    """Slopes at the inner knots: the harmonic mean of the two neighbouring bins' slopes.

    The harmonic mean lies between the two and stays positive, so the spline is smooth
    and monotone whatever the knots (the choice of Fritsch and Butland, 1984).
    """
    z = [-SPLINE_BOUND, *knots_z, SPLINE_BOUND]
    x = [-SPLINE_BOUND, *knots_x, SPLINE_BOUND]
    bin_slopes = [(x[i + 1] - x[i]) / (z[i + 1] - z[i]) for i in range(len(z) - 1)]
    return [2 * a * b / (a + b) for a, b in itertools.pairwise(bin_slopes)]


def build_line_map(kind: str, params: Mapping) -> LineMap:
    """The map ``kind`` (see MAP_KINDS) with its parameters; SpecError for a bad combination.

    affine: slope, offset. piecewise_linear: knots (increasing), slopes (> 0, one per
    segment). tanh, sigmoid, exp: steepness k > 0 (x = h(k z)). sinh_arcsinh: skew,
    tailweight > 0. spline: knots_z and knots_x, the inner knots inside (-3, 3), each increasing.
    """
    if kind == "affine":
        slope, offset = float(params["slope"]), float(params["offset"])
        if slope == 0:
            raise SpecError("affine map", "slope a = 0 squashes the whole line to one point: no inverse")
        slope_text = {1.0: "", -1.0: "-"}.get(slope, _fmt(slope) + r"\,")
        offset_text = f"{offset:+.4g}" if offset else ""
        return LineMap([AffineOnLine(slope, offset)], rf"x = f(z) = {slope_text}z {offset_text}")
    if kind == "piecewise_linear":
        knots = [float(v) for v in params["knots"]]
        slopes = [float(v) for v in params["slopes"]]
        if not _increasing(knots):
            raise SpecError("piecewise linear map", "the knots must increase from left to right")
        if len(slopes) != len(knots) + 1 or min(slopes) <= 0:
            raise SpecError("piecewise linear map", "give one slope > 0 for each of the segments")
        text = ",\\ ".join(f"s_{i + 1} = {_fmt(s)}" for i, s in enumerate(slopes))
        return LineMap([PiecewiseLinear(knots, slopes)], rf"x = h(z),\ \text{{slopes }} {text}")
    if kind in ("tanh", "sigmoid", "exp"):
        steepness = float(params["steepness"])
        if not steepness > 0:
            raise SpecError(f"{kind} map", f"steepness k = {_fmt(steepness)} must be > 0")
        layer = {"tanh": Tanh, "sigmoid": Sigmoid, "exp": Exp}[kind]()
        outer = {"tanh": r"\tanh", "sigmoid": r"\sigma", "exp": r"\exp"}[kind]
        inner = "z" if steepness == 1 else rf"{_fmt(steepness)}\,z"
        return LineMap([AffineOnLine(steepness, 0.0), layer], rf"x = {outer}({inner})")
    if kind == "sinh_arcsinh":
        skew, tailweight = float(params["skew"]), float(params["tailweight"])
        if not tailweight > 0:
            raise SpecError("sinh-arcsinh map", f"tailweight = {_fmt(tailweight)} must be > 0")
        latex = rf"x = \sinh\big((\operatorname{{asinh}} z {skew:+.4g})\cdot {_fmt(tailweight)}\big)"
        return LineMap([SinhArcsinh(skew, tailweight)], latex)
    if kind == "spline":
        knots_z = [float(v) for v in params["knots_z"]]
        knots_x = [float(v) for v in params["knots_x"]]
        for name, knots in (("z", knots_z), ("x", knots_x)):
            inside = all(-SPLINE_BOUND < v < SPLINE_BOUND for v in knots)
            if not (inside and _increasing(knots)):
                raise SpecError(
                    "spline map",
                    f"the knots' {name} positions must increase and lie inside "
                    f"(-{SPLINE_BOUND:g}, {SPLINE_BOUND:g})",
                )
        z = [-SPLINE_BOUND, *knots_z, SPLINE_BOUND]
        x = [-SPLINE_BOUND, *knots_x, SPLINE_BOUND]
        widths = [b - a for a, b in itertools.pairwise(z)]
        heights = [b - a for a, b in itertools.pairwise(x)]
        spline = Spline(widths, heights, spline_derivatives(knots_z, knots_x), bound=SPLINE_BOUND)
        latex = r"x = \text{spline through the knots } " + ",\\ ".join(
            f"({_fmt(a)}, {_fmt(b)})" for a, b in zip(knots_z, knots_x, strict=True)
        )
        return LineMap([spline], latex)
    raise SpecError("map", f"unknown map {kind!r}; the maps are {', '.join(MAP_KINDS)}")


# --------------------------------------------------------------------------- p_X and its checks


def pushforward_log_prob(base: LineBase, fmap: LineMap, x: Tensor) -> Tensor:
    """log p_X(x) = log p_Z(f^{-1}(x)) + log|d f^{-1}/dx|; -inf outside the image of f."""
    z, log_det_inverse = fmap.inverse_and_log_det(x)
    log_p = base.base_log_prob(z) + log_det_inverse
    return torch.where(torch.isnan(log_p), torch.full_like(log_p, -math.inf), log_p)


def pushforward_density(base: LineBase, fmap: LineMap, x: Tensor) -> Tensor:
    with torch.no_grad():
        return torch.exp(pushforward_log_prob(base, fmap, x))


def breakpoints_x(base: LineBase, fmap: LineMap) -> list[float]:
    """Every x where p_X may jump or bend: image ends, mapped base jumps, mapped kinks of f."""
    with torch.no_grad():
        mapped_jumps = (
            [float(v) for v in fmap.forward(_t(list(base.breakpoints)))] if base.breakpoints else []
        )
    points = [*fmap.image(), *mapped_jumps, *fmap.kinks_x()]
    return sorted(p for p in points if math.isfinite(p))


_GL_NODES, _GL_WEIGHTS = (torch.from_numpy(a) for a in np.polynomial.legendre.leggauss(20))


def _gauss_legendre(density: Callable[[Tensor], Tensor], lo: Tensor, hi: Tensor) -> Tensor:
    """20-point Gauss-Legendre on each panel [lo_i, hi_i] at once."""
    half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
    points = mid[:, None] + half[:, None] * _GL_NODES[None, :]
    return (density(points) * _GL_WEIGHTS[None, :]).sum(-1) * half


def integrate(
    density: Callable[[Tensor], Tensor],
    lo: float,
    hi: float,
    breakpoints: Sequence[float] = (),
    tolerance: float = 1e-11,
    max_panels: int = 2048,
) -> float:
    """The integral of ``density`` over [lo, hi] by adaptive 20-point Gauss-Legendre.

    The range is first split at ``breakpoints`` (where the integrand jumps or bends, so
    every panel sees a smooth function). Then each panel whose estimate changes by more
    than its share of ``tolerance`` (or one part in 1e10 of itself) when computed on its
    two halves is halved again: panels gather where p_X is steep, e.g. at the ends of
    tanh's image, where a Gaussian's tails pile up within 1e-9 of x = 1. A panel about
    1e-12 wide is not split further (its nodes carry rounding errors a few thousandths
    of its width, so its integrand is noisy), and at most ``max_panels`` stay open.
    """
    if not hi > lo:
        return 0.0
    edges = _t([lo, *sorted(b for b in breakpoints if lo < b < hi), hi])
    panel_lo, panel_hi = edges[:-1], edges[1:]
    coarse = _gauss_legendre(density, panel_lo, panel_hi)
    total = 0.0
    while len(panel_lo):
        mid = 0.5 * (panel_lo + panel_hi)
        left, right = _gauss_legendre(density, panel_lo, mid), _gauss_legendre(density, mid, panel_hi)
        fine = left + right
        share = torch.maximum(tolerance * (panel_hi - panel_lo) / (hi - lo), 1e-10 * torch.abs(fine))
        done = (torch.abs(fine - coarse) <= share) | (
            panel_hi - panel_lo <= 1e-12 * torch.abs(mid).clamp(min=1)
        )
        if 2 * int((~done).sum()) > max_panels:
            done = torch.ones_like(done)
        total += float(fine[done].sum())
        keep = ~done
        # Each half's estimate so far becomes the coarse one it is checked against next.
        coarse = torch.cat([left[keep], right[keep]])
        panel_lo, panel_hi = torch.cat([panel_lo[keep], mid[keep]]), torch.cat([mid[keep], panel_hi[keep]])
    return total


def mass_reach(base: LineBase) -> tuple[float, float]:
    """A z window outside which p_Z has no mass float64 can add to a probability near 1.

    The base's window ``z_range`` widened 2.5 times about its centre: mean +- 10 std for a
    Gaussian (1.5e-23 outside), at least +- 10 std of each component of a mixture, and all
    of a uniform. ``z_range`` alone leaves about 6e-5 of a Gaussian outside it.
    """
    z_lo, z_hi = base.z_range
    centre, half = 0.5 * (z_lo + z_hi), 0.5 * (z_hi - z_lo)
    return centre - 2.5 * half, centre + 2.5 * half


def panel_edges_x(
    base: LineBase, fmap: LineMap, z_window: tuple[float, float] | None = None, count: int = 257
) -> list[float]:
    """Where to start the quadrature's panels in x: the breakpoints, and f of even z grids.

    A map can squeeze a feature of p_Z into a sliver of x (a narrow component through
    tanh lands within 1e-8 of x = 1), which a quadrature started on a few even panels in x
    would step over without noticing. Starting panels at the images of an even grid over
    the base's window gives every feature of p_Z at least one panel of its own; the nodes
    and weights stay in x, so p_X is still integrated over x.

    ``z_window``: the preimage of the range being integrated. Its own even grid is mapped
    too (clipped to :func:`mass_reach`), so mass beyond the base's window, e.g. a
    Gaussian's tail that exp stretches over [e^24, e^48], is resolved wherever it lies.
    """
    grids = [torch.linspace(*base.z_range, count, dtype=DTYPE)]
    if z_window is not None:
        reach_lo, reach_hi = mass_reach(base)
        lo, hi = max(min(z_window), reach_lo), min(max(z_window), reach_hi)
        if lo < hi:
            grids.append(torch.linspace(lo, hi, count, dtype=DTYPE))
    with torch.no_grad():
        images = fmap.forward(torch.cat(grids))
    return sorted({*breakpoints_x(base, fmap), *(float(v) for v in images if torch.isfinite(v))})


def pushforward_mass(
    base: LineBase, fmap: LineMap, x_lo: float, x_hi: float, z_window: tuple[float, float] | None = None
) -> float:
    """P(x_lo < X < x_hi) by quadrature of p_X over [x_lo, x_hi] (never through the base CDF).

    ``z_window``: the preimage of [x_lo, x_hi] where the caller knows it (a carried
    interval's [z_lo, z_hi]); by default f^{-1} of the ends, -inf / +inf beyond the image.
    It only places the panels' first edges (see :func:`panel_edges_x`).
    """
    if z_window is None:
        z_window = (_preimage(fmap, x_lo), _preimage(fmap, x_hi))
    edges = panel_edges_x(base, fmap, z_window)
    return integrate(lambda x: pushforward_density(base, fmap, x), x_lo, x_hi, edges)


def base_mass(base: LineBase, z_lo: float, z_hi: float) -> float:
    """P(z_lo < Z < z_hi) from the base distribution's CDF."""
    cdf = base.cdf(_t([z_lo, z_hi]))
    return float(cdf[1] - cdf[0])


def near_image_end(fmap: LineMap, x: float) -> bool:
    """True where x is within 1e-12 of a finite end of f's image.

    There float64 cannot tell f's values apart (tanh(z) rounds to 1 for z > 19), so the
    mass that f piles up against the end cannot be resolved by quadrature in x.
    """
    return any(math.isfinite(end) and abs(x - end) <= 1e-12 * max(1.0, abs(end)) for end in fmap.image())


def reaches_image_end(fmap: LineMap, x_lo: float, x_hi: float) -> bool:
    """True where [x_lo, x_hi] holds, or ends within 1e-12 of, a finite end of f's image.

    Only then can quadrature in x miss mass because f is flat to float64 precision
    (see :func:`near_image_end`); a window inside an image that is all of R never can.
    """
    return any(
        math.isfinite(end) and x_lo - 1e-12 * max(1.0, abs(end)) <= end <= x_hi + 1e-12 * max(1.0, abs(end))
        for end in fmap.image()
    )


@dataclass(frozen=True)
class CarriedInterval:
    """[z_lo, z_hi] and its image [x_lo, x_hi] under f, the probability of each, and fine grids
    over both (with p_Z and p_X there) for shading."""

    z_lo: float
    z_hi: float
    x_lo: float
    x_hi: float
    mass_base: float  # base CDF difference over [z_lo, z_hi]
    mass_pushforward: float  # quadrature of p_X over [x_lo, x_hi]
    at_image_end: bool  # an end of [x_lo, x_hi] lies where f is flat to float64 precision
    band_z: np.ndarray
    band_base_density: np.ndarray
    band_x: np.ndarray
    band_density: np.ndarray

    @property
    def mass_difference(self) -> float:
        return abs(self.mass_base - self.mass_pushforward)


def carry_interval(
    base: LineBase, fmap: LineMap, z_start: float, width: float, resolution: int = 100
) -> CarriedInterval:
    """Carry [z, z + dz] through f; its probability computed on each side by its own integral."""
    z_lo, z_hi = z_start, z_start + width
    with torch.no_grad():
        ends = fmap.forward(_t([z_lo, z_hi]))
        x_lo, x_hi = sorted(float(v) for v in ends)  # a decreasing f swaps the ends
        band_z = grid_with_breaks(z_lo, z_hi, resolution, base.breakpoints)
        band_x = grid_with_breaks(x_lo, x_hi, resolution, breakpoints_x(base, fmap))
        band_base_density = torch.exp(base.base_log_prob(band_z))
    return CarriedInterval(
        z_lo=z_lo,
        z_hi=z_hi,
        x_lo=x_lo,
        x_hi=x_hi,
        mass_base=base_mass(base, z_lo, z_hi),
        mass_pushforward=pushforward_mass(base, fmap, x_lo, x_hi, (z_lo, z_hi)),
        at_image_end=near_image_end(fmap, x_lo) or near_image_end(fmap, x_hi),
        band_z=band_z.numpy(),
        band_base_density=band_base_density.numpy(),
        band_x=band_x.numpy(),
        band_density=pushforward_density(base, fmap, band_x).numpy(),
    )


@dataclass(frozen=True)
class ProbeOnLine:
    """The change of variables at one point x, each factor computed, and the inverse-function rule.

    ``inverse_slope_autograd``: d f^{-1}/dx by autograd of the inverse at x;
    ``forward_slope_autograd``: f'(z) by autograd of the forward at z = f^{-1}(x);
    ``log_det_inverse``: the layers' analytic log|d f^{-1}/dx|.
    """

    x: float
    z: float
    base_density: float
    forward_slope_autograd: float
    inverse_slope_autograd: float
    log_det_inverse: float
    density: float  # p_X(x) = p_Z(z) |d f^{-1}/dx|

    @property
    def inside(self) -> bool:
        return math.isfinite(self.z)

    @property
    def reciprocal_forward_slope(self) -> float:
        return 1.0 / self.forward_slope_autograd

    @property
    def rule_difference(self) -> float:
        """|d f^{-1}/dx - 1 / f'(f^{-1}(x))|, both sides from autograd."""
        return abs(self.inverse_slope_autograd - self.reciprocal_forward_slope)


def _derivative(function: Callable[[Tensor], Tensor], at: float) -> float:
    point = _t(at).requires_grad_(True)
    value = function(point)
    if not torch.isfinite(value):
        return math.nan
    (slope,) = torch.autograd.grad(value, point)
    return float(slope)


def probe(base: LineBase, fmap: LineMap, x: float) -> ProbeOnLine:
    """Evaluate p_X(x) = p_Z(f^{-1}(x)) |d f^{-1}/dx| factor by factor at ``x``."""
    with torch.no_grad():
        z, log_det_inverse = fmap.inverse_and_log_det(_t(x))
        base_density = float(torch.exp(base.base_log_prob(z)))
    z_value = float(z)
    if not math.isfinite(z_value):
        return ProbeOnLine(x, math.nan, 0.0, math.nan, math.nan, math.nan, 0.0)
    inverse_slope = _derivative(fmap.inverse, x)
    forward_slope = _derivative(fmap.forward, z_value)
    density = base_density * math.exp(float(log_det_inverse))
    return ProbeOnLine(
        x, z_value, base_density, forward_slope, inverse_slope, float(log_det_inverse), density
    )


# --------------------------------------------------------------------------- what the page draws


def view_ranges(base: LineBase, fmap: LineMap) -> tuple[tuple[float, float], tuple[float, float]]:
    """The z window of the base, and the x window: its image under f with a margin."""
    z_lo, z_hi = base.z_range
    with torch.no_grad():
        x_ends = sorted(float(v) for v in fmap.forward(_t([z_lo, z_hi])))
    pad = 0.08 * (x_ends[1] - x_ends[0]) or 1.0
    return (z_lo, z_hi), (x_ends[0] - pad, x_ends[1] + pad)


def probe_range(base: LineBase, fmap: LineMap) -> tuple[float, float]:
    """Where the probe may go: the image of the base's z window, kept strictly inside the image of f.

    A wide base through tanh reaches z where tanh(k z) rounds to +-1, outside the open
    image (-1, 1). So every end closer than 1e-3 of the range's width to a finite end of
    the image is pulled in to that distance, where f^{-1} and its derivative are still well
    resolved (on the page's slider, whose step is at least 1/2000 of the width, this moves
    an end by at most two steps).
    """
    with torch.no_grad():
        lo, hi = sorted(float(v) for v in fmap.forward(_t(list(base.z_range))))
    image_lo, image_hi = fmap.image()
    margin = 1e-3 * (min(hi, image_hi) - max(lo, image_lo))
    if math.isfinite(image_lo):
        lo = max(lo, image_lo + margin)
    if math.isfinite(image_hi):
        hi = min(hi, image_hi - margin)
    return lo, hi


def grid_with_breaks(lo: float, hi: float, count: int, breaks: Sequence[float]) -> Tensor:
    """An even grid over [lo, hi] plus points just either side of each break (sharp edges in a plot)."""
    eps = 1e-9 * (hi - lo)
    extra = [v for b in breaks if lo < b < hi for v in (b - eps, b + eps)]
    return torch.sort(torch.cat([torch.linspace(lo, hi, count, dtype=DTYPE), _t(extra)])).values


def sample_histogram(
    base: LineBase, fmap: LineMap, count: int, x_range: tuple[float, float], bins: int = 60, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and densities (count / (total * width)) of f(z) for ``count`` draws z ~ p_Z."""
    with torch.no_grad():
        samples = fmap.forward(base.sample(count, seed))
    edges = np.linspace(x_range[0], x_range[1], bins + 1)
    counts, _ = np.histogram(samples.numpy(), bins=edges)
    return edges, counts / (count * np.diff(edges))


def _preimage(fmap: LineMap, x: float) -> float:
    """f^{-1}(x), or -inf / +inf for x beyond the lower / upper end of the image.

    Only increasing maps have a bounded image here (a decreasing affine map covers the line).
    """
    lo, hi = fmap.image()
    if x <= lo:
        return -math.inf
    if x >= hi:
        return math.inf
    with torch.no_grad():
        return float(fmap.inverse(_t(x)))


def mass_in_window_cdf(base: LineBase, fmap: LineMap, x_lo: float, x_hi: float) -> float:
    """P(x_lo < X < x_hi) from the base CDF at the preimages of the window's ends."""
    lo_z, hi_z = sorted((_preimage(fmap, x_lo), _preimage(fmap, x_hi)))
    return base_mass(base, lo_z, hi_z)


@dataclass(frozen=True)
class LineCurves:
    """What the 1D figure draws for one base and map: p_Z, the graph of f, p_X, and the mass in view."""

    z: np.ndarray  # z grid (with points either side of each jump of p_Z)
    base_density: np.ndarray  # p_Z on the z grid
    x: np.ndarray  # x grid (with points either side of each jump or kink of p_X)
    density: np.ndarray  # p_X on the x grid
    curve_z: np.ndarray  # the graph of f: z, f(z) and log|f'(z)|
    curve_x: np.ndarray
    curve_log_slope: np.ndarray
    z_range: tuple[float, float]
    x_range: tuple[float, float]
    probe_range: tuple[float, float]
    knots_z: tuple[float, ...]  # the knots of f (where f' jumps or bends), z and f(z)
    knots_x: tuple[float, ...]
    mass_in_view: float  # quadrature of p_X over the x window
    mass_in_view_cdf: float  # the same from the base CDF at the preimages of the window's ends
    reaches_image_end: bool = False  # the window holds a finite end of f's image (where f may be flat)


def line_curves(base: LineBase, fmap: LineMap, resolution: int = 300, masses: bool = True) -> LineCurves:
    """The curves of the 1D figure and the masses on its window. ``masses=False`` leaves the
    two masses NaN: their quadrature costs far more than the curves, which is all a slider's
    preview frames draw."""
    z_range, x_range = view_ranges(base, fmap)
    with torch.no_grad():
        z = grid_with_breaks(*z_range, resolution, base.breakpoints)
        x = grid_with_breaks(*x_range, resolution, breakpoints_x(base, fmap))
        curve_z = torch.linspace(*z_range, resolution, dtype=DTYPE)
        curve_x, curve_log_slope = fmap.forward_and_log_det(curve_z)
        base_density = torch.exp(base.base_log_prob(z))
    return LineCurves(
        z=z.numpy(),
        base_density=base_density.numpy(),
        x=x.numpy(),
        density=pushforward_density(base, fmap, x).numpy(),
        curve_z=curve_z.numpy(),
        curve_x=curve_x.numpy(),
        curve_log_slope=curve_log_slope.numpy(),
        z_range=z_range,
        x_range=x_range,
        probe_range=probe_range(base, fmap),
        knots_z=tuple(fmap.knots()[0]),
        knots_x=tuple(fmap.knots()[1]),
        mass_in_view=pushforward_mass(base, fmap, *x_range) if masses else float("nan"),
        mass_in_view_cdf=mass_in_window_cdf(base, fmap, *x_range) if masses else float("nan"),
        reaches_image_end=reaches_image_end(fmap, *x_range),
    )
