"""A normalizing flow: a base density p_Z and a stack of bijectors f_1, ..., f_K.

Sampling pushes base draws forward, z_0 ~ p_Z, z_k = f_k(z_{k-1}), x = z_K.
Density pulls points back through the inverses and adds up the volume changes,

    log p(x) = log p_Z(z_0) + sum_k log|det J_{f_k^{-1}}(z_k)|.

Points that fall outside the image of some layer (x <= 0 after ``exp``), or
whose values leave float64, are "outside": density 0, log-density -inf.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from flowviz.bases import build_base
from flowviz.layers import Bijector, build_layer
from flowviz.spec import parse_spec

STANDARD_NORMAL = {"type": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]}


@dataclass
class DensityTerms:
    """The two terms of the change of variables at some points x.

    ``base_log_prob`` = log p_Z(f^{-1}(x)) (-inf outside the image), ``log_det_inverse``
    = log|det J_{f^{-1}}(x)| (NaN outside), ``inside`` marks points in the image,
    ``z`` = f^{-1}(x) (NaN outside).
    """

    z: Tensor
    base_log_prob: Tensor
    log_det_inverse: Tensor
    inside: Tensor

    @property
    def log_prob(self) -> Tensor:
        total = self.base_log_prob + torch.where(self.inside, self.log_det_inverse, 0.0)
        keep = self.inside & ~torch.isnan(total)
        return torch.where(keep, total, torch.full_like(total, -torch.inf))


class Flow(torch.nn.Module):
    """p_X: the pushforward of ``base`` (a spec base entry) through ``layers``."""

    def __init__(self, base: Mapping, layers: Sequence[Bijector]) -> None:
        super().__init__()
        self.base_spec = dict(base)
        self.layers = torch.nn.ModuleList(layers)
        self._bases: dict[torch.dtype, Distribution] = {}

    @classmethod
    def from_spec(cls, spec) -> Flow:
        """Build from any spec form (dict, JSON, path); switched-off layers are left out."""
        canonical = parse_spec(spec)
        layers = [build_layer(layer) for layer in canonical["layers"] if layer.get("enabled", True)]
        return cls(canonical["base"], layers)

    def base(self, dtype: torch.dtype = torch.float64) -> Distribution:
        if dtype not in self._bases:
            self._bases[dtype] = build_base(self.base_spec, dtype)
        return self._bases[dtype]

    # ------------------------------------------------------------------ maps

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """x = f_K o ... o f_1 (z) and log|det J_f(z)|.

        Once a point's value leaves float64 its log-det stops accumulating: the
        later layers would be evaluated at infinity.
        """
        total = z.new_zeros(z.shape[:-1])
        for layer in self.layers:
            finite = torch.isfinite(z).all(-1)
            z, log_det = layer.forward_and_log_det(z)
            total = total + torch.where(finite, log_det, 0.0)
        return z, total

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z_0 = f^{-1}(x) and log|det J_{f^{-1}}(x)|, NaN outside the image."""
        total = x.new_zeros(x.shape[:-1])
        for layer in reversed(self.layers):
            x, log_det = layer.inverse_and_log_det(x)
            total = total + log_det
        return x, total

    def forward(self, z: Tensor) -> Tensor:
        return self.forward_and_log_det(z)[0]

    def inverse(self, x: Tensor) -> Tensor:
        return self.inverse_and_log_det(x)[0]

    # ------------------------------------------------------------------ densities

    def density_terms(self, x: Tensor) -> DensityTerms:
        z, log_det_inverse = self.inverse_and_log_det(x)
        inside = torch.isfinite(z).all(-1) & torch.isfinite(log_det_inverse)
        z_safe = torch.where(inside.unsqueeze(-1), z, torch.zeros_like(z))
        base_log_prob = self.base(x.dtype).log_prob(z_safe)
        base_log_prob = torch.where(inside, base_log_prob, torch.full_like(base_log_prob, -torch.inf))
        log_det_inverse = torch.where(inside, log_det_inverse, torch.full_like(log_det_inverse, torch.nan))
        z = torch.where(inside.unsqueeze(-1), z, torch.full_like(z, torch.nan))
        return DensityTerms(z, base_log_prob, log_det_inverse, inside)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p_X(x); -inf outside the image of the flow."""
        return self.density_terms(x).log_prob

    def sample(self, n: int, seed: int | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        """n draws of x: base draws pushed forward through every layer."""
        return self.forward(self.sample_base(n, seed, dtype))

    def sample_base(self, n: int, seed: int | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            return self.base(dtype).sample((n,))

    # ------------------------------------------------------------------ traces

    def trace_forward(self, z: Tensor) -> list[Tensor]:
        """[z_0, z_1, ..., z_K]: the points after each layer."""
        points = [z]
        for layer in self.layers:
            points.append(layer.forward(points[-1]))
        return points

    def prefix(self, k: int) -> Flow:
        """The flow made of the first k layers: the distribution of z_k."""
        flow = Flow(self.base_spec, list(self.layers)[:k])
        flow._bases = self._bases
        return flow

    # ------------------------------------------------------------------ time

    def _split_time(self, t: float) -> tuple[int, float]:
        """(k, s) with t = k + s: k whole layers, then layer k + 1 at s in [0, 1); ValueError for a bad t."""
        count = len(self.layers)
        try:
            value = float(t)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and 0.0 <= value <= count):
            raise ValueError(
                f"t = {t}, but it must be a finite number in [0, {count}] (the number of layers)"
            )
        whole = min(math.floor(value), count)
        return whole, value - whole

    def at(self, t: float) -> Flow:
        """The flow at time t in [0, K]: the first floor(t) layers whole, then the next one at s = t - floor(t).

        t = 0 is the base alone, t = K the flow itself; every layer moves along its
        own path from the identity (:meth:`flowviz.layers.base.Bijector.at`), so p at
        time t is an exact density for every t, continuous in t (but for the one step
        of an orientation-reversing layer at its middle).
        """
        whole, s = self._split_time(t)
        layers = list(self.layers)[:whole]
        if s > 0.0:
            layers.append(self.layers[whole].at(s))
        flow = Flow(self.base_spec, layers).train(self.training)
        flow._bases = self._bases
        return flow

    def time_label(self, t: float) -> str:
        """Where time t is, for people: "3 · planar, 40 %" (layer number from 1, type, share of it done).

        "base p_Z" at t = 0; at a whole t = k > 0, layer k at 100 %. The share is
        rounded down, so 100 % means the layer is complete.
        """
        whole, s = self._split_time(t)
        if whole == 0 and s == 0.0:
            return "base p_Z"
        number, share = (whole, 1.0) if s == 0.0 else (whole + 1, s)
        name = self.layers[number - 1].type_name or type(self.layers[number - 1]).__name__
        return f"{number} · {name}, {math.floor(100.0 * share + 1e-9)} %"
