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

import torch
from torch import Tensor

from flowviz.layers.base import Elementwise

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
    latex = {
        "forward": r"\begin{gathered} x_i = y_k + h_k\,\frac{s_k\xi^2 + \delta_k\xi(1-\xi)}{s_k + \kappa_k\,\xi(1-\xi)} \\ \xi = \frac{z_i - x_k}{w_k},\quad s_k = \frac{h_k}{w_k} \text{ in bin } k \\ \kappa_k = \delta_{k+1} + \delta_k - 2s_k \end{gathered}",
        "inverse": r"\begin{gathered} z_i = x_k + w_k\,\xi, \\ \xi = \frac{2c}{-b - \sqrt{b^2 - 4ac}} \\ \text{(the root of a quadratic in } \xi) \end{gathered}",
        "log_det": r"\begin{gathered} \log|\det J_f| = \sum_i \log\frac{s_k^2\, N_i}{D_i^2} \\ \begin{aligned} N_i &= \delta_{k+1}\xi^2 + 2s_k\xi(1-\xi) \\ &\quad + \delta_k(1-\xi)^2 \\ D_i &= s_k + \kappa_k\,\xi(1-\xi) \end{aligned} \end{gathered}",
    }

    def __init__(self, widths, heights, derivatives, bound: float = 3.0, dims=(0, 1)) -> None:
        super().__init__(dims)
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
