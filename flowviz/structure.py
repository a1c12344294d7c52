r"""Why flows are built from triangular Jacobians, measured rather than asserted.

Three things, each computed, none hard-coded:

- every layer type's 2x2 Jacobian at a random point, by autograd, and the sparsity
  pattern it shows next to the class's own tag (``jacobian``, ``volume_preserving``);
- two D-dimensional layers whose Jacobian is triangular by construction, an affine
  coupling (RealNVP) and an affine autoregressive layer (IAF / MAF, with MADE masks),
  each giving log|det J| analytically as the sum of its log-diagonal, to check against
  the dense autograd Jacobian's determinant;
- the cost of log|det J|: dense LU (``torch.linalg.slogdet``, O(D^3)) against the sum of
  a triangular matrix's log-diagonal (O(D)), timed on this machine.

For a triangular matrix det J = prod_i J_ii, so log|det J| = sum_i log|J_ii|.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flowviz.layers import LAYER_CLASSES, Bijector, build_layer
from flowviz.layers.base import random_point as random_plane_point

DTYPE = torch.float64
ZERO_TOLERANCE = 1e-12  # |J_ij| at most this times max|J| counts as a structural zero

# --------------------------------------------------------------------------- the 2D layers


# Random, valid parameters for each layer type of the spec (each class's ``example``).
EXAMPLE_PARAMETERS: dict[str, Callable[[torch.Generator], dict]] = {
    kind: cls.example for kind, cls in LAYER_CLASSES.items()
}


def jacobian_reason(cls: type[Bijector]) -> str:
    """Why the layer's Jacobian has its shape, in one line: its ``caption``, else its docstring's first line."""
    if cls.caption:
        return cls.caption
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def autograd_jacobian(forward: Callable[[Tensor], Tensor], point: Tensor) -> Tensor:
    """The dense Jacobian d forward / d point, one autograd pass per output."""
    return torch.autograd.functional.jacobian(forward, point)


def sparsity_pattern(jacobian: Tensor) -> np.ndarray:
    """True where an entry is not a structural zero."""
    magnitude = jacobian.abs()
    return (magnitude > ZERO_TOLERANCE * float(magnitude.max())).numpy()


def classify_pattern(pattern: np.ndarray) -> str:
    """diagonal, lower triangular, upper triangular, permutation or full."""
    off_diagonal = pattern & ~np.eye(len(pattern), dtype=bool)
    if not off_diagonal.any():
        return "diagonal"
    if (pattern.sum(0) == 1).all() and (pattern.sum(1) == 1).all():
        return "permutation"
    if not np.triu(pattern, 1).any():
        return "lower triangular"
    if not np.tril(pattern, -1).any():
        return "upper triangular"
    return "full"


def tag_agrees(tag: str, measured: str) -> bool:
    """Whether a class's ``jacobian`` tag describes the measured pattern ('triangular' covers both)."""
    return tag == measured or (tag == "triangular" and measured.endswith("triangular"))


def pattern_latex(pattern: np.ndarray) -> str:
    """The pattern as a matrix of ∗ (nonzero) and 0."""
    rows = [" & ".join(r"\ast" if v else "0" for v in row) for row in pattern]
    return r"\begin{pmatrix}" + r" \\ ".join(rows) + r"\end{pmatrix}"


@dataclass(frozen=True)
class LayerStructure:
    """One layer type's Jacobian at a random point, beside what the class says about itself."""

    type_name: str
    tag: str  # cls.jacobian
    volume_preserving: bool  # cls.volume_preserving
    point: tuple[float, float]
    jacobian: np.ndarray
    pattern: np.ndarray
    measured: str  # classify_pattern(pattern)
    abs_det: float  # |det J| at the point, from the autograd Jacobian
    log_det_layer: float  # the layer's own analytic log|det J| at the point
    reason: str

    @property
    def tag_agrees(self) -> bool:
        return tag_agrees(self.tag, self.measured)

    @property
    def volume_agrees(self) -> bool:
        """A volume-preserving layer must have |det J| = 1 here; the others need not differ from 1."""
        return abs(self.abs_det - 1.0) <= 1e-9 if self.volume_preserving else True


def example_layer(type_name: str, generator: torch.Generator) -> Bijector:
    """A layer of ``type_name`` with random valid parameters, built through the spec's builder."""
    return build_layer({"type": type_name, **EXAMPLE_PARAMETERS[type_name](generator)})


def layer_structures(seed: int = 0) -> list[LayerStructure]:
    """Every layer type in LAYER_CLASSES that has example parameters, measured at a random point."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for type_name, cls in LAYER_CLASSES.items():
        if type_name not in EXAMPLE_PARAMETERS:
            continue
        layer = example_layer(type_name, generator)
        point = torch.tensor(random_plane_point(generator), dtype=DTYPE)
        jacobian = autograd_jacobian(layer.forward, point)
        with torch.no_grad():
            _, log_det = layer.forward_and_log_det(point)
        pattern = sparsity_pattern(jacobian)
        out.append(
            LayerStructure(
                type_name=type_name,
                tag=cls.jacobian,
                volume_preserving=cls.volume_preserving,
                point=(float(point[0]), float(point[1])),
                jacobian=jacobian.numpy(),
                pattern=pattern,
                measured=classify_pattern(pattern),
                abs_det=float(torch.linalg.det(jacobian).abs()),
                log_det_layer=float(log_det),
                reason=jacobian_reason(cls),
            )
        )
    return out


# --------------------------------------------------------------------------- D-dimensional layers


def _init_linear(linear: torch.nn.Linear, generator: torch.Generator, gain: float = 1.0) -> None:
    bound = gain / math.sqrt(linear.in_features)
    with torch.no_grad():
        linear.weight.copy_(
            (2 * torch.rand(linear.weight.shape, generator=generator, dtype=DTYPE) - 1) * bound
        )
        linear.bias.copy_((2 * torch.rand(linear.bias.shape, generator=generator, dtype=DTYPE) - 1) * bound)


class AffineCouplingND(torch.nn.Module):
    r"""Affine coupling in D dimensions (Dinh et al., RealNVP 2017).

    With d = D // 2: x_{1:d} = z_{1:d}, x_{d+1:D} = z_{d+1:D} ⊙ exp(s(z_{1:d})) + t(z_{1:d}),
    s and t from one small MLP of the passing half. J = [[I, 0], [∂x_o/∂z_c, diag(e^s)]]
    is lower triangular: log|det J| = sum_i s_i, whatever the MLP.
    """

    def __init__(self, dim: int, hidden: int = 16, seed: int = 0, max_log_scale: float = 1.0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.dim, self.split, self.max_log_scale = dim, dim // 2, max_log_scale
        self.hidden = torch.nn.Linear(self.split, hidden, dtype=DTYPE)
        self.out = torch.nn.Linear(hidden, 2 * (dim - self.split), dtype=DTYPE)
        _init_linear(self.hidden, generator, gain=2.0)
        _init_linear(self.out, generator, gain=2.0)

    def _shift_and_log_scale(self, passing: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw = self.out(torch.tanh(self.hidden(passing))).chunk(2, -1)
        # A bounded log-scale keeps exp(s) from overflowing (a common choice for real NVP).
        return shift, self.max_log_scale * torch.tanh(raw)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        passing, changed = z[..., : self.split], z[..., self.split :]
        shift, log_scale = self._shift_and_log_scale(passing)
        return torch.cat([passing, changed * torch.exp(log_scale) + shift], -1), log_scale.sum(-1)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        passing, changed = x[..., : self.split], x[..., self.split :]
        shift, log_scale = self._shift_and_log_scale(passing)
        return torch.cat([passing, (changed - shift) * torch.exp(-log_scale)], -1), -log_scale.sum(-1)

    def forward(self, z: Tensor) -> Tensor:
        return self.forward_and_log_det(z)[0]


def made_masks(dim: int, hidden: int) -> tuple[Tensor, Tensor]:
    """MADE masks (Germain et al. 2015) so that output i sees only inputs j < i.

    Inputs have degrees 1..D, hidden units degrees in 1..D-1; a hidden unit of degree k
    sees inputs of degree <= k, and output i (degree i) sees hidden units of degree < i.
    """
    input_degrees = torch.arange(1, dim + 1)
    hidden_degrees = torch.arange(hidden) % max(dim - 1, 1) + 1
    if dim == 1:
        hidden_degrees = torch.zeros(hidden, dtype=torch.long)  # nothing to condition on
    first = (hidden_degrees[:, None] >= input_degrees[None, :]).to(DTYPE)
    second = (input_degrees[:, None] > hidden_degrees[None, :]).to(DTYPE)
    return first, second


class AffineAutoregressive(torch.nn.Module):
    r"""Affine autoregressive layer: x_i = z_i exp(a_i(z_{<i})) + m_i(z_{<i}), i = 1..D.

    (m, a) come from a masked MLP (MADE) so output i depends on z_{<i} and z_i itself
    only: J is lower triangular with diagonal e^{a_i}, and log|det J| = sum_i a_i.
    This direction is the inverse autoregressive flow (IAF, Kingma et al. 2016): the
    forward is one pass, the inverse D passes, one coordinate at a time. Used the other
    way round it is the masked autoregressive flow (MAF, Papamakarios et al. 2017).
    """

    def __init__(self, dim: int, hidden: int = 24, seed: int = 0, max_log_scale: float = 1.0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.dim, self.max_log_scale = dim, max_log_scale
        self.hidden = torch.nn.Linear(dim, hidden, dtype=DTYPE)
        self.out = torch.nn.Linear(hidden, 2 * dim, dtype=DTYPE)
        _init_linear(self.hidden, generator, gain=2.0)
        _init_linear(self.out, generator, gain=2.0)
        first, second = made_masks(dim, hidden)
        self.register_buffer("mask_hidden", first)
        self.register_buffer("mask_out", torch.cat([second, second]))

    def _shift_and_log_scale(self, z: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.tanh(torch.nn.functional.linear(z, self.hidden.weight * self.mask_hidden, self.hidden.bias))
        out = torch.nn.functional.linear(h, self.out.weight * self.mask_out, self.out.bias)
        shift, raw = out.chunk(2, -1)
        return shift, self.max_log_scale * torch.tanh(raw)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_scale = self._shift_and_log_scale(z)
        return z * torch.exp(log_scale) + shift, log_scale.sum(-1)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = torch.zeros_like(x)
        for i in range(self.dim):  # z_i needs z_{<i}, which are final by now
            shift, log_scale = self._shift_and_log_scale(z)
            z = z.clone()
            z[..., i] = (x[..., i] - shift[..., i]) * torch.exp(-log_scale[..., i])
        _, log_scale = self._shift_and_log_scale(z)
        return z, -log_scale.sum(-1)

    def forward(self, z: Tensor) -> Tensor:
        return self.forward_and_log_det(z)[0]


@dataclass(frozen=True)
class JacobianReport:
    """A layer's dense Jacobian at a point and three routes to its determinant."""

    point: np.ndarray
    jacobian: np.ndarray  # by autograd
    diagonal_product: float  # prod_i J_ii
    det_dense: float  # torch.linalg.det of the dense Jacobian
    slogdet_sign: float
    slogdet_log_abs: float  # torch.linalg.slogdet of the dense Jacobian
    log_det_layer: float  # the layer's analytic sum of log-diagonal
    largest_above_diagonal: float  # max |J_ij| over j > i: 0 for a lower-triangular J

    @property
    def log_abs_diagonal_sum(self) -> float:
        return float(np.log(np.abs(np.diag(self.jacobian))).sum())


def jacobian_report(layer: torch.nn.Module, point: Tensor) -> JacobianReport:
    jacobian = autograd_jacobian(layer.forward, point)
    with torch.no_grad():
        _, log_det = layer.forward_and_log_det(point)
    sign, log_abs = torch.linalg.slogdet(jacobian)
    upper = torch.triu(jacobian, 1).abs()
    return JacobianReport(
        point=point.numpy(),
        jacobian=jacobian.detach().numpy(),
        diagonal_product=float(torch.diagonal(jacobian).prod()),
        det_dense=float(torch.linalg.det(jacobian)),
        slogdet_sign=float(sign),
        slogdet_log_abs=float(log_abs),
        log_det_layer=float(log_det),
        largest_above_diagonal=float(upper.max()),
    )


def random_point(dim: int, seed: int = 0) -> Tensor:
    return torch.randn(dim, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


# --------------------------------------------------------------------------- the cost of log|det J|


@dataclass(frozen=True)
class CostPoint:
    """Median seconds for one log|det| of a D x D matrix, by each route."""

    dim: int
    dense_seconds: float  # torch.linalg.slogdet of a dense random matrix (LU)
    triangular_seconds: float  # sum of log|diagonal| of a triangular matrix


def _seconds_per_call(function: Callable[[], object], repeats: int, min_batch_seconds: float = 2e-4) -> float:
    """Median over ``repeats`` of the time per call, each repeat long enough for the clock.

    One warm-up call first; then calls are batched so one timed batch lasts at least
    ``min_batch_seconds`` (a single sub-microsecond call would be all timer noise).
    """
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-7)
    batch = max(1, int(min_batch_seconds / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batch):
            function()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def log_det_triangular(matrix: Tensor) -> Tensor:
    """log|det T| of a triangular T: the sum of the logs of its diagonal, O(D)."""
    return torch.diagonal(matrix).abs().log().sum()


def log_det_dense(matrix: Tensor) -> Tensor:
    """log|det A| of any square A by LU factorisation, O(D^3)."""
    return torch.linalg.slogdet(matrix).logabsdet


def time_log_dets(
    dims: Sequence[int], repeats: int = 7, seed: int = 0, dense_max: int = 1024
) -> Iterator[CostPoint]:
    """Time both routes for each D in ``dims``, yielding as each size finishes (for a progress bar).

    The dense route factorises a random D x D matrix. The triangular route needs only
    the D diagonal entries, which a coupling or autoregressive layer hands over directly:
    up to ``dense_max`` they are read off a stored triangular matrix (a view, no copy);
    beyond it, where no D x D matrix would fit in memory, from a vector of D entries, and
    the dense time is NaN. Timed on one thread (restored afterwards).
    """
    generator = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    # One thread: on a shared machine, waking worker threads costs milliseconds at random, which
    # would swamp microsecond timings (the app's server runs with one thread anyway).
    torch.set_num_threads(1)
    try:
        yield from _time_each(dims, repeats, generator, dense_max)
    finally:
        torch.set_num_threads(threads)


def _time_each(
    dims: Sequence[int], repeats: int, generator: torch.Generator, dense_max: int
) -> Iterator[CostPoint]:
    for dim in dims:
        with torch.no_grad():
            if dim > dense_max:
                diagonal = 1.0 + torch.rand(dim, generator=generator, dtype=DTYPE)
                triangular_seconds = _seconds_per_call(lambda d=diagonal: d.abs().log().sum(), repeats)
                yield CostPoint(dim, math.nan, triangular_seconds)
                continue
            dense = torch.randn(dim, dim, generator=generator, dtype=DTYPE) + dim**0.5 * torch.eye(
                dim, dtype=DTYPE
            )
            triangular = torch.tril(dense)
            yield CostPoint(
                dim,
                _seconds_per_call(lambda matrix=dense: log_det_dense(matrix), repeats),
                _seconds_per_call(lambda matrix=triangular: log_det_triangular(matrix), repeats),
            )


def fitted_exponents(points: Sequence[CostPoint], largest: int = 4) -> dict[str, float]:
    """The measured exponents of each route, fitted on its ``largest`` sizes (where overheads matter least)."""
    dense = [p for p in points if math.isfinite(p.dense_seconds)][-largest:]
    triangular = list(points)[-largest:]
    return {
        "dense": fit_slope([p.dim for p in dense], [p.dense_seconds for p in dense]),
        "triangular": fit_slope([p.dim for p in triangular], [p.triangular_seconds for p in triangular]),
    }


def fit_slope(dims: Sequence[int], seconds: Sequence[float]) -> float:
    """The least-squares slope of log(seconds) against log(D): the measured exponent."""
    if len(dims) < 2:
        return math.nan
    return float(np.polyfit(np.log(dims), np.log(seconds), 1)[0])


def powers_of_two(low: int, high: int) -> list[int]:
    return [2**k for k in range(int(math.log2(low)), int(math.log2(high)) + 1)]
