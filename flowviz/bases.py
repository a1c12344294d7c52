"""Base distributions p_Z of the spec, on torch.distributions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, MixtureSameFamily, MultivariateNormal, Uniform


class BoxUniform(Distribution):
    """The uniform density 1 / area on the box [low, high], log p = -inf outside."""

    arg_constraints: ClassVar[dict] = {}
    has_rsample = True

    def __init__(self, low: Tensor, high: Tensor) -> None:
        self.low, self.high = low, high
        self._uniform = Uniform(low, high, validate_args=False)
        self.log_area = torch.log(high - low).sum()
        super().__init__(event_shape=torch.Size([2]), validate_args=False)

    def rsample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        return self._uniform.rsample(sample_shape)

    def log_prob(self, x: Tensor) -> Tensor:
        inside = ((x >= self.low) & (x <= self.high)).all(-1)
        value = (-self.log_area).to(x.dtype).expand(x.shape[:-1])
        return torch.where(inside, value, torch.full_like(value, -torch.inf))


def build_base(base: Mapping, dtype: torch.dtype = torch.float64) -> Distribution:
    """The torch distribution of a canonical spec's ``base`` entry."""
    kind = base["type"]

    def t(value) -> Tensor:
        return torch.as_tensor(value, dtype=dtype)

    if kind == "gaussian":
        return MultivariateNormal(t(base["mean"]), covariance_matrix=t(base["cov"]), validate_args=False)
    if kind == "uniform":
        return BoxUniform(t(base["low"]), t(base["high"]))
    if kind == "mixture":
        means = t([c["mean"] for c in base["components"]])
        covs = t([c["cov"] for c in base["components"]])
        return MixtureSameFamily(
            Categorical(probs=t(base["weights"]), validate_args=False),
            MultivariateNormal(means, covariance_matrix=covs, validate_args=False),
            validate_args=False,
        )
    raise ValueError(f"unknown base type {kind!r}")
