"""The contract every layer keeps.

A :class:`Bijector` is an invertible map x = f(z) of points in the plane, held
as tensors of shape ``(..., 2)``. It gives, from shared intermediates:

- ``forward_and_log_det(z) -> (x, log|det J_f(z)|)``
- ``inverse_and_log_det(x) -> (z, log|det J_{f^{-1}}(x)|)``

Both log-dets have shape ``(...)``. Along a round trip they are negatives of
each other: log|det J_{f^{-1}}(f(z))| = -log|det J_f(z)|.

Where x lies outside the image of f (x <= 0 after ``exp``) the inverse returns
NaN for z and the log-det; callers treat any non-finite value as "outside". The
same classes serve float64 grids (no grad) and float32 training (autograd):
there is no NumPy twin of any layer.

Each class also states its math once, for people: ``jacobian`` (the sparsity of
J: diagonal, triangular, permutation or full), ``volume_preserving``, and
``latex`` with the forward map, the inverse and log|det J_f|.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

LOG2 = math.log(2.0)


class Bijector(torch.nn.Module):
    """An invertible map of the plane with an analytic log|det J|."""

    type_name: ClassVar[str] = ""
    jacobian: ClassVar[str] = "full"  # diagonal | triangular | permutation | full
    volume_preserving: ClassVar[bool] = False
    latex: ClassVar[dict[str, str]] = {}
    reference: ClassVar[str] = ""

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, z: Tensor) -> Tensor:
        return self.forward_and_log_det(z)[0]

    def inverse(self, x: Tensor) -> Tensor:
        return self.inverse_and_log_det(x)[0]

    @property
    def structure(self) -> str:
        """One word for the Jacobian: 'volume-preserving' where |det J| = 1, else its sparsity."""
        return "volume-preserving" if self.volume_preserving else self.jacobian


class Elementwise(Bijector):
    """A map that acts on each listed coordinate alone: x_i = h(z_i).

    Subclasses give the scalar map and its log-derivative in ``forward_1d`` and
    ``inverse_1d`` (any tensor shape); the 1D page uses those same methods, so the
    line and the plane share one implementation.
    """

    jacobian = "diagonal"

    def __init__(self, dims: tuple[int, ...] = (0, 1)) -> None:
        super().__init__()
        self.dims = tuple(sorted(dims))

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _map_dims(self, v: Tensor, scalar_map) -> tuple[Tensor, Tensor]:
        """Apply a scalar map to the listed coordinates; sum its log-derivatives."""
        if self.dims == (0, 1):
            out, log_deriv = scalar_map(v)
            return out, log_deriv.sum(-1)
        d = self.dims[0]
        out, log_deriv = scalar_map(v[..., d])
        parts = [out, v[..., 1]] if d == 0 else [v[..., 0], out]
        return torch.stack(parts, -1), log_deriv

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._map_dims(z, self.forward_1d)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._map_dims(x, self.inverse_1d)


def log_cosh(u: Tensor) -> Tensor:
    """log cosh(u) without overflow: log((e^u + e^-u) / 2)."""
    return torch.logaddexp(u, -u) - LOG2


def softplus(t: Tensor) -> Tensor:
    """log(1 + e^t), exact for every t (torch's own switches to t above a threshold)."""
    return torch.logaddexp(t, torch.zeros_like(t))


def log1mexp(a: Tensor) -> Tensor:
    """log(1 - e^{-a}) for a > 0, accurate at both ends (Maechler 2012).

    Each branch sees only the inputs it serves (the other gets log 2), so neither
    overflows in its gradient: torch.where passes a NaN gradient from the unused side.
    """
    small = a < LOG2
    a_small = torch.where(small, a, LOG2)
    a_large = torch.where(small, LOG2, a)
    return torch.where(small, torch.log(-torch.expm1(-a_small)), torch.log1p(-torch.exp(-a_large)))


def outside_to_nan(value: Tensor, inside: Tensor) -> Tensor:
    """NaN where a point lies outside a layer's image, the value elsewhere."""
    return torch.where(inside, value, torch.full_like(value, math.nan))
