"""Monotone rational-quadratic splines (Durkan, Bekasov, Murray & Papamakarios, 2019).

On [-B, B] the map is made of K rational-quadratic pieces that meet at knots
(x_k, y_k) with positive slopes delta_k; outside it is the identity, and the
slopes at both ends are 1 so the two join smoothly. Within bin k, with
s_k = h_k / w_k and xi = (x - x_k) / w_k,

    y = y_k + h_k [s_k xi^2 + delta_k xi (1 - xi)] / [s_k + (delta_{k+1} + delta_k - 2 s_k) xi (1 - xi)],

and the inverse solves a quadratic in xi, taken in the root form that does not
cancel. Inputs are clamped into [-B, B] *before* any arithmetic and the identity
is chosen afterwards, so no branch ever sees a NaN (the failure of nflows #87,
flowjax #239).

:func:`rational_quadratic_spline` serves both the spec's hand-made spline
(one set of knots for the whole plane) and the trained neural spline coupling
(knots that depend on the other coordinate, one set per point).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

from flowviz.errors import SpecError
from flowviz.layers.base import Control, Elementwise, LineControl, increasing, line_fmt, uniform
from flowviz.spec_values import REQUIRED, dims, fmt, number, numbers

# The most bins a spline may have: each is a control and a piece of the map that
# every grid point is compared with.
MAX_SPLINE_BINS = 64
# The 1D page's spline: identity outside [-SPLINE_BOUND, SPLINE_BOUND].
SPLINE_BOUND = 3.0
_KNOT_LIMIT = SPLINE_BOUND - 0.1  # the 1D page's knots stay inside the bound


def spline_derivatives(knots_z: Sequence[float], knots_x: Sequence[float]) -> list[float]:
    """Slopes at the inner knots: the harmonic mean of the two neighbouring bins' slopes.

    The harmonic mean lies between the two and stays positive, so the spline is smooth
    and monotone whatever the knots (the choice of Fritsch and Butland, 1984).
    """
    z = [-SPLINE_BOUND, *knots_z, SPLINE_BOUND]
    x = [-SPLINE_BOUND, *knots_x, SPLINE_BOUND]
    bin_slopes = [(x[i + 1] - x[i]) / (z[i + 1] - z[i]) for i in range(len(z) - 1)]
    return [2 * a * b / (a + b) for a, b in itertools.pairwise(bin_slopes)]


REFERENCE = "C. Durkan, A. Bekasov, I. Murray and G. Papamakarios, Neural Spline Flows, NeurIPS 2019"


def _knots(sizes: Tensor, bound: float) -> Tensor:
    """Knot positions from bin sizes that sum to 2 * bound: -B, ..., B (ends exact)."""
    inner = torch.cumsum(sizes[..., :-1], -1) - bound
    shape = (*sizes.shape[:-1], 1)
    low = torch.full(shape, -bound, dtype=sizes.dtype, device=sizes.device)
    high = torch.full(shape, bound, dtype=sizes.dtype, device=sizes.device)
    return torch.cat([low, inner, high], -1)


def _rescale(sizes: Tensor, total: float) -> Tensor:
    """Positive sizes rescaled to sum to ``total``, whatever their magnitude.

    Dividing by the largest first brings them into (0, 1] (the largest exactly 1),
    so neither the sum (K * 1e308 overflows) nor total / sum (for subnormal sizes)
    leaves the range; only the ratios matter.
    """
    sizes = sizes / sizes.max()
    return sizes * (total / sizes.sum())


def blend_bins(sizes: Tensor, s: float, bound: float) -> Tensor:
    """Bin sizes (summing to 2B) a fraction s of the way from equal bins: (1 - s) 2B / K + s size_k."""
    bins = sizes.shape[-1]
    return (1.0 - s) * (2.0 * bound / bins) + s * sizes


def _pick(params: Tensor, index: Tensor) -> Tensor:
    """params[..., index]: one shared table (K,) or one table per point (..., K)."""
    if params.dim() == 1:
        return params[index]
    return torch.gather(params, -1, index.unsqueeze(-1)).squeeze(-1)


def rational_quadratic_spline(
    inputs: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    bound: float,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """Apply the spline (or its inverse) elementwise; return outputs and log|d out / d in|.

    ``widths`` and ``heights``: (K,) or (..., K), positive, each summing to 2 * bound.
    ``derivatives``: (K + 1,) or (..., K + 1), positive, the slopes at all knots
    including both ends (1 at the ends joins the identity smoothly).
    """
    inside = (inputs >= -bound) & (inputs <= bound)
    v = inputs.clamp(-bound, bound)
    knots_x = _knots(widths, bound)
    knots_y = _knots(heights, bound)
    edges = (knots_y if inverse else knots_x)[..., 1:-1]
    index = (v.unsqueeze(-1) >= edges).sum(-1)

    x_k, y_k = _pick(knots_x[..., :-1], index), _pick(knots_y[..., :-1], index)
    w_k, h_k = _pick(widths, index), _pick(heights, index)
    d_k, d_k1 = _pick(derivatives[..., :-1], index), _pick(derivatives[..., 1:], index)
    s_k = h_k / w_k
    curvature = d_k1 + d_k - 2.0 * s_k

    if inverse:
        dy = v - y_k
        a = h_k * (s_k - d_k) + dy * curvature
        b = h_k * d_k - dy * curvature
        c = -s_k * dy
        discriminant = torch.clamp(b * b - 4.0 * a * c, min=0.0)
        xi = (2.0 * c) / (-b - torch.sqrt(discriminant))
        out = x_k + xi * w_k
    else:
        xi = (v - x_k) / w_k
    xi_1m = xi * (1.0 - xi)
    denominator = s_k + curvature * xi_1m
    if not inverse:
        out = y_k + h_k * (s_k * xi * xi + d_k * xi_1m) / denominator
    numerator = s_k * s_k * (d_k1 * xi * xi + 2.0 * s_k * xi_1m + d_k * (1.0 - xi) ** 2)
    log_deriv = torch.log(numerator) - 2.0 * torch.log(denominator)
    if inverse:
        log_deriv = -log_deriv
    out = torch.where(inside, out, inputs)
    log_deriv = torch.where(inside, log_deriv, torch.zeros_like(log_deriv))
    return out, log_deriv


class Spline(Elementwise):
    r"""A monotone rational-quadratic spline on each listed coordinate, identity outside [-B, B].

    ``widths`` and ``heights``: K positive numbers each, rescaled to sum to 2B;
    ``derivatives``: the K - 1 positive slopes at the inner knots.

    Path: widths and heights (as rescaled) blended linearly from equal bins,
    (1 - s) 2B/K + s w_k, and inner slopes blended geometrically, delta_k^s: every
    step is a valid spline, and equal bins with unit slopes are the identity.
    """

    type_name = "spline"
    reference = REFERENCE
    title = "Rational-quadratic spline"
    line_title = "Rational-quadratic spline"
    # three inner knots, a row each: its z position beside its x value
    line_controls = tuple(
        LineControl(
            (field, i), f"Knot {i + 1}: {what}", f"spline_{axis}{i + 1}", -_KNOT_LIMIT, _KNOT_LIMIT, default
        )
        for i, (z, x) in enumerate(((-1.5, -2.3), (0.0, -1.2), (1.5, 1.0)))
        for field, what, axis, default in (("knots_z", "z position", "z", z), ("knots_x", "x value", "x", x))
    )
    line_columns = 2
    line_caption = (
        f"Three inner knots (z, x) of a monotone rational-quadratic spline on [-{SPLINE_BOUND:g}, "
        f"{SPLINE_BOUND:g}] (identity outside); the slopes at the knots follow from their neighbours."
    )

    @classmethod
    def line_map(cls, params) -> tuple[list, str]:
        """The spline through the inner knots (``knots_z``, ``knots_x``), each increasing inside (-3, 3)."""
        knots_z = [float(v) for v in params["knots_z"]]
        knots_x = [float(v) for v in params["knots_x"]]
        for name, knots in (("z", knots_z), ("x", knots_x)):
            inside = all(-SPLINE_BOUND < v < SPLINE_BOUND for v in knots)
            if not (inside and increasing(knots)):
                raise SpecError(
                    "spline map",
                    f"the knots' {name} positions must increase and lie inside "
                    f"(-{SPLINE_BOUND:g}, {SPLINE_BOUND:g})",
                )
        z = [-SPLINE_BOUND, *knots_z, SPLINE_BOUND]
        x = [-SPLINE_BOUND, *knots_x, SPLINE_BOUND]
        widths = [b - a for a, b in itertools.pairwise(z)]
        heights = [b - a for a, b in itertools.pairwise(x)]
        spline = cls.unchecked(widths, heights, spline_derivatives(knots_z, knots_x), bound=SPLINE_BOUND)
        latex = r"x = \text{spline through the knots } " + ",\\ ".join(
            f"({line_fmt(a)}, {line_fmt(b)})" for a, b in zip(knots_z, knots_x, strict=True)
        )
        return [spline], latex

    fields = {
        "dims": (dims, [0, 1]),
        "bound": (number, 3.0),
        "widths": (numbers, REQUIRED),
        "heights": (numbers, REQUIRED),
        "derivatives": (numbers, REQUIRED),
    }
    controls = (Control(("bound",), "Spline bound B", 0.5, 5, 0.1, "identity outside [−B, B]"),)
    defaults = {
        "dims": [0, 1],
        "bound": 3.0,
        "widths": [1.0, 1.0, 1.0, 1.0],
        "heights": [0.5, 1.5, 1.5, 0.5],
        "derivatives": [0.4, 2.5, 0.4],
    }
    # Each point is compared with every knot.
    cost_per_knot = 0.35
    # Up to this many bins each number has its own slider; beyond, one table holds them all.
    slider_count = 8
    count_field = "widths"
    # The editor's control of the count: its label and what it counts, the most it allows.
    count_label = "Number of bins K"
    count_help = "K rational-quadratic pieces between −B and B"
    max_count = MAX_SPLINE_BINS

    @classmethod
    def resize(cls, params: dict, count: int) -> None:
        """Give the entry ``count`` bins: new bins are equal, with unit slopes at their knots."""
        params["widths"] = (list(params["widths"]) + [1.0] * count)[:count]
        params["heights"] = (list(params["heights"]) + [1.0] * count)[:count]
        params["derivatives"] = (list(params["derivatives"]) + [1.0] * count)[: count - 1]

    @classmethod
    def check(cls, params) -> str | None:
        if params["bound"] <= 0:
            return f"bound = {fmt(params['bound'])}, but it must be > 0"
        bins = len(params["widths"])
        if bins < 1:
            return "widths must list at least one bin width"
        if bins > MAX_SPLINE_BINS:
            return (
                f"widths lists {bins} bins, but a spline has at most {MAX_SPLINE_BINS}: "
                "each bin is a control and a piece of the map that every grid point is compared with"
            )
        if len(params["heights"]) != bins:
            return (
                f"heights has {len(params['heights'])} numbers but widths has {bins}: give one height per bin"
            )
        if len(params["derivatives"]) != bins - 1:
            return (
                f"derivatives has {len(params['derivatives'])} numbers, but {bins} bins have "
                f"{bins - 1} inner knots: give one slope per inner knot"
            )
        for name in ("widths", "heights", "derivatives"):
            for i, v in enumerate(params[name]):
                if v <= 0:
                    return f"{name}[{i}] = {fmt(v)}, but it must be > 0 for the spline to be monotone"
        for name in ("widths", "heights"):  # rescaled to sum to 2 * bound: no bin may vanish
            largest = max(params[name])
            fraction = (
                min(params[name]) / largest / sum(v / largest for v in params[name])
            )  # the narrowest's share
            if fraction * 2 * params["bound"] < 1e-300:
                if fraction * 2 >= 1e-300:  # with bound = 1 they would fit: the bound is what is too small
                    return (
                        f"bound = {fmt(params['bound'])} is too small: the narrowest of these {name} would be "
                        f"{fraction * 2 * params['bound']:.3g} wide, below what float64 can hold (1e-300); "
                        "use a larger bound"
                    )
                return f"{name} differ by more orders of magnitude than float64 can hold"
        return None

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {
            "widths": uniform(g, 0.5, 2, 4),
            "heights": uniform(g, 0.5, 2, 4),
            "derivatives": uniform(g, 0.5, 2, 3),
        }

    @classmethod
    def controls_for(cls, params) -> list[Control]:
        """The bound, one width and height per bin and one slope per inner knot."""
        bins = len(params["widths"])
        keep = "kept above 0 so the spline stays monotone"
        controls = list(cls.controls)
        for k in range(bins):
            controls.append(Control(("widths", k), f"Bin {k + 1} width", 0.1, 5, 0.05, keep))
            controls.append(Control(("heights", k), f"Bin {k + 1} height", 0.1, 5, 0.05, keep))
        for k in range(bins - 1):
            controls.append(Control(("derivatives", k), f"Slope at inner knot {k + 1}", 0.1, 5, 0.05, keep))
        return controls

    @classmethod
    def point_cost(cls, params) -> float:
        return cls.cost + cls.cost_per_knot * len(params["widths"])

    latex = {
        "forward": r"\begin{gathered} x_i = y_k + h_k\,\frac{s_k\xi^2 + \delta_k\xi(1-\xi)}{s_k + \kappa_k\,\xi(1-\xi)} \\ \xi = \frac{z_i - x_k}{w_k},\quad s_k = \frac{h_k}{w_k} \text{ in bin } k \\ \kappa_k = \delta_{k+1} + \delta_k - 2s_k \end{gathered}",
        "inverse": r"\begin{gathered} z_i = x_k + w_k\,\xi, \\ \xi = \frac{2c}{-b - \sqrt{b^2 - 4ac}} \\ \text{(the root of a quadratic in } \xi) \end{gathered}",
        "log_det": r"\begin{gathered} \log|\det J_f| = \sum_i \log\frac{s_k^2\, N_i}{D_i^2} \\ \begin{aligned} N_i &= \delta_{k+1}\xi^2 + 2s_k\xi(1-\xi) \\ &\quad + \delta_k(1-\xi)^2 \\ D_i &= s_k + \kappa_k\,\xi(1-\xi) \end{aligned} \end{gathered}",
    }

    def __init__(self, widths, heights, derivatives, bound: float = 3.0, dims=(0, 1)) -> None:
        super().__init__(dims)
        self.refuse_invalid(widths=widths, heights=heights, derivatives=derivatives, bound=bound)
        self.bound = float(bound)
        w = torch.as_tensor(widths, dtype=torch.float64)
        h = torch.as_tensor(heights, dtype=torch.float64)
        d = torch.as_tensor(derivatives, dtype=torch.float64).reshape(-1)
        one = torch.ones(1, dtype=torch.float64)
        self.register_buffer("widths", _rescale(w, 2.0 * self.bound))
        self.register_buffer("heights", _rescale(h, 2.0 * self.bound))
        self.register_buffer("derivatives", torch.cat([one, d, one]))

    @property
    def is_identity(self) -> bool:
        return super().is_identity or bool(
            torch.equal(self.widths, self.heights) and torch.all(self.derivatives == 1.0)
        )

    def _at(self, s: float) -> Spline:
        widths, heights = blend_bins(self.widths, s, self.bound), blend_bins(self.heights, s, self.bound)
        inner = torch.exp(s * torch.log(self.derivatives[1:-1]))
        return Spline(widths, heights, inner, self.bound, self.dims)

    def knots(self) -> tuple[Tensor, Tensor]:
        """The knot positions (x_k) and values (y_k), for drawing."""
        return _knots(self.widths, self.bound), _knots(self.heights, self.bound)

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return rational_quadratic_spline(t, self.widths, self.heights, self.derivatives, self.bound)

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return rational_quadratic_spline(
            y, self.widths, self.heights, self.derivatives, self.bound, inverse=True
        )
