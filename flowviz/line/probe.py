"""The change of variables at one point x, each factor computed two ways."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from flowviz.line.map import LineBase, LineMap, _t


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
