"""The base density p_Z and the monotone map x = f(z) on a line, built from the layers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, MixtureSameFamily, Normal, Uniform

from flowviz.errors import SpecError
from flowviz.layers import LAYER_CLASSES, Affine, PiecewiseLinear, SinhArcsinh, Spline
from flowviz.layers.elementwise import Exp, Sigmoid, Tanh
from flowviz.layers.linear import AffineOnLine  # noqa: F401 (part of flowviz.line)
from flowviz.layers.spline import SPLINE_BOUND, spline_derivatives  # noqa: F401 (part of flowviz.line)

DTYPE = torch.float64
BASE_KINDS: dict[str, str] = {
    "uniform": "Uniform on [low, high]",
    "gaussian": "Gaussian",
    "mixture": "Mixture of two Gaussians",
}
# The maps of the 1D page, in the order it offers them: each layer class says how it
# reads on a line (``line_title``, ``line_map``).
MAP_CLASSES = (Affine, PiecewiseLinear, Tanh, Sigmoid, Exp, SinhArcsinh, Spline)
MAP_KINDS: dict[str, str] = {cls.type_name: cls.line_title for cls in MAP_CLASSES}

# The three classic cases on a uniform base on [0, 1] through x = a z + b:
# name -> (label, slope a, offset b, probe x at z = 0.75 or 0.8, beside the shaded interval [0.3, 0.55]).
CLASSIC_CASES: dict[str, tuple[str, float, float, float]] = {
    "volume": ("Volume preserving (|f'| = 1)", 1.0, 0.5, 1.25),
    "compress": ("Compressing (|f'| < 1: density rises)", 0.5, 0.25, 0.65),
    "expand": ("Expanding (|f'| > 1: density falls)", 2.0, -0.5, 1.1),
}
CLASSIC_BASE = ("uniform", {"low": 0.0, "high": 1.0})


def classic_map(slope: float, offset: float) -> tuple[str, dict]:
    """The map (kind, parameters) of a classic case: x = a z + b."""
    return (Affine.type_name, {"slope": slope, "offset": offset})


CLASSIC_INTERVAL = (0.3, 0.25)  # start z and width dz
# The 1D page's opening picture: a uniform base through a piecewise linear map whose three slopes
# stretch, squeeze and stretch again; its interval (start, width) and probe x.
DEFAULT_BASE = ("uniform", {"low": -2.0, "high": 2.0})
DEFAULT_MAP = (PiecewiseLinear.type_name, {"knots": [-1.0, 1.0], "slopes": [2.0, 0.5, 1.5]})
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


def build_line_map(kind: str, params: Mapping) -> LineMap:
    """The map ``kind`` (see MAP_KINDS) with its parameters; SpecError for a bad combination.

    affine: slope, offset. piecewise_linear: knots (increasing), slopes (> 0, one per
    segment). tanh, sigmoid, exp: steepness k > 0 (x = h(k z)). sinh_arcsinh: skew,
    tailweight > 0. spline: knots_z and knots_x, the inner knots inside (-3, 3), each increasing.
    """
    if not isinstance(kind, str) or kind not in MAP_KINDS:
        raise SpecError("map", f"unknown map {kind!r}; the maps are {', '.join(MAP_KINDS)}")
    steps, latex = LAYER_CLASSES[kind].line_map(params)
    return LineMap(steps, latex)
