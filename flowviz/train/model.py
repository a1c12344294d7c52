"""The model: a flow of spline or affine couplings with mixing layers, built from a config;
its negative log-likelihood."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import Tensor

from flowviz.data import check_points
from flowviz.errors import SpecError
from flowviz.flow import STANDARD_NORMAL, Flow
from flowviz.layers.base import Bijector
from flowviz.layers.learned import ActNorm, NeuralSplineCoupling, realnvp_coupling
from flowviz.layers.linear import Affine, Rotation, Swap

LOG_2PI = math.log(2.0 * math.pi)
KINDS = ("nsf", "realnvp")
MIXINGS = ("alternate", "swap", "rotation")


@dataclass(frozen=True)
class ModelConfig:
    """The architecture: everything needed to rebuild the model (besides its weights).

    ``kind``: "nsf" (neural spline couplings) or "realnvp" (affine couplings);
    ``layers``: number of couplings; ``hidden``/``depth``: width and number of
    hidden layers of each conditioner network; ``bins``/``bound``: spline bins K
    on [-B, B] (nsf only; ``bound=None``: chosen from the training data by
    :func:`spline_bound` when a :class:`~flowviz.train.Trainer` starts, and
    :data:`DEFAULT_BOUND` for a model built without data); ``actnorm``: an ActNorm after each coupling;
    ``mixing``: how the conditioned coordinate changes from one coupling to the
    next ("alternate": x1, x2, x1, ...; "swap": a Swap layer between couplings;
    "rotation": alternate and also rotate by a fixed angle between couplings).
    """

    kind: str = "nsf"
    layers: int = 5
    hidden: int = 64
    depth: int = 2
    bins: int = 12
    bound: float | None = None
    actnorm: bool = False
    mixing: str = "rotation"

    def check(self) -> ModelConfig:
        """Self, or a SpecError naming the field that is out of range."""
        limits = {"layers": (1, 64), "hidden": (2, 1024), "depth": (1, 8), "bins": (2, 128)}
        if self.kind not in KINDS:
            raise SpecError("model.kind", f"{self.kind!r}, but it must be one of {', '.join(KINDS)}")
        if self.mixing not in MIXINGS:
            raise SpecError("model.mixing", f"{self.mixing!r}, but it must be one of {', '.join(MIXINGS)}")
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SpecError(f"model.{name}", f"{value!r}, but it must be an integer from {low} to {high}")
        bound = self.bound
        if bound is not None and not (
            isinstance(bound, (int, float)) and not isinstance(bound, bool) and 0.1 <= bound <= 100.0
        ):
            raise SpecError("model.bound", f"{bound!r}, but it must be a number from 0.1 to 100, or null")
        if not isinstance(self.actnorm, bool):
            raise SpecError("model.actnorm", f"{self.actnorm!r}, but it must be true or false")
        return self

    def weight_count(self) -> int:
        """How many learnable numbers :func:`build_model` makes for this config, counted without building it.

        A model file's architecture is checked against a memory budget with this
        before anything is allocated (64 couplings of 8 x 1024 units would take 2 GB).
        Each conditioner is an MLP 1 -> hidden (x depth) -> outputs: 3K - 1 outputs
        for a spline (K widths, K heights, K - 1 slopes), 2 for RealNVP (shift, log-scale);
        an ActNorm adds a shift and a log-scale per coordinate.
        """
        outputs = 3 * self.bins - 1 if self.kind == "nsf" else 2
        network = 2 * self.hidden + (self.depth - 1) * (self.hidden + 1) * self.hidden
        network += (self.hidden + 1) * outputs
        return self.layers * (network + (4 if self.actnorm else 0))

    @classmethod
    def from_dict(cls, values: Mapping) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError("model", f"unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**values).check()


DEFAULT_BOUND = 4.0
MAX_BOUND = 6.0


def spline_bound(u: np.ndarray) -> float:
    """The spline interval [-B, B] for standardised training points u (each coordinate mean 0, std 1).

    Outside [-B, B] a spline coupling is the identity, so points there are fitted
    by the base's Gaussian tails alone. Compact shapes (mixtures, curves, uniform
    shapes) stay within 4 standard deviations and keep B = 4 (:data:`DEFAULT_BOUND`);
    heavy-tailed or skewed data reach further, and B grows to cover the farthest
    point with a 10% margin, at most :data:`MAX_BOUND` = 6. With a fixed number of
    bins a wider interval leaves the core coarser bins: on compact shapes B = 6
    did worse than 4 (and B = 3 no better). B is rounded up to 0.1.
    """
    u = np.asarray(u, dtype=np.float64)
    reach = 1.1 * float(np.abs(u).max()) if u.size else 0.0
    return min(max(math.ceil(10.0 * reach) / 10.0, DEFAULT_BOUND), MAX_BOUND)


def mixing_angle(layers: int) -> float:
    """The fixed rotation between couplings: 180 / (layers) degrees, plus the alternation.

    Alternating the conditioned coordinate already turns the split by 90 degrees;
    the extra rotation spreads the L split directions over the half circle
    instead of using only the two axes.
    """
    return 180.0 / max(layers, 2)


def build_model(
    config: ModelConfig = ModelConfig(),
    mean: Sequence[float] = (0.0, 0.0),
    scale: Sequence[float] = (1.0, 1.0),
) -> Flow:
    """The flow of ``config``, ending with x = diag(scale) u + mean (the data's standardisation undone).

    A config whose bound is None (to be chosen from the data) is built with :data:`DEFAULT_BOUND`.
    """
    config.check()
    bound = DEFAULT_BOUND if config.bound is None else float(config.bound)
    layers: list[Bijector] = []
    for k in range(config.layers):
        condition_on = k % 2 if config.mixing != "swap" else 0
        if config.kind == "nsf":
            layers.append(NeuralSplineCoupling(condition_on, config.hidden, config.depth, config.bins, bound))
        else:
            layers.append(realnvp_coupling(condition_on, config.hidden, config.depth))
        if config.actnorm:
            layers.append(ActNorm())
        if k < config.layers - 1:
            if config.mixing == "swap":
                layers.append(Swap())
            elif config.mixing == "rotation":
                layers.append(Rotation(mixing_angle(config.layers)))
    layers.append(Affine([[float(scale[0]), 0.0], [0.0, float(scale[1])]], [float(mean[0]), float(mean[1])]))
    return Flow(STANDARD_NORMAL, layers)


def layer_name(layer: Bijector, last: bool = False) -> str:
    """A trained layer in words: what it does to which coordinate (a learner reads this, not a class name).

    ``last``: the final layer of :func:`build_model`, the affine map that undoes the standardisation.
    """
    subscript = "₁₂"
    if hasattr(layer, "condition_on") and hasattr(layer, "other"):
        kind = "spline" if isinstance(layer, NeuralSplineCoupling) else "affine"
        return f"{kind} coupling: x{subscript[layer.other]} given x{subscript[layer.condition_on]}"
    if isinstance(layer, Rotation):
        degrees = float(torch.rad2deg(torch.atan2(layer.matrix[1, 0], layer.matrix[0, 0])))
        return f"rotation by {degrees:.0f}°"
    if isinstance(layer, ActNorm):
        return "ActNorm: a learned scale and shift per coordinate"
    if isinstance(layer, Swap):
        return "swap x₁ and x₂"
    if last and isinstance(layer, Affine):
        return "undo standardisation → x"
    return layer.type_name or type(layer).__name__


def standardisation(points: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Per-coordinate mean and standard deviation of the points (the data end's Affine layer)."""
    mean = points.mean(0)
    scale = points.std(0)
    return (float(mean[0]), float(mean[1])), (float(scale[0]), float(scale[1]))


def check_trainable(
    points: np.ndarray, dtype: torch.dtype = torch.float32, place: str = "data"
) -> np.ndarray:
    """The points, checked (:func:`~flowviz.data.check_points`) and trainable in ``dtype``, or a SpecError.

    The trained flow ends with x = diag(scale) u + mean in ``dtype``: a mean or a
    standard deviation beyond that type's range (float32: about 1.2e-38 to 3.4e38)
    would turn into 0 or infinity there, and the model would score every point
    as -inf or NaN although training "succeeded".
    """
    points = check_points(points, place)
    info = torch.finfo(dtype)
    with np.errstate(all="ignore"):
        scale = points.std(0)
        largest = np.abs(points).max(0)
    for column, name in enumerate("xy"):
        if largest[column] >= info.max or scale[column] >= info.max:
            raise SpecError(
                place,
                f"the {name} values reach {largest[column]:.3g}, beyond {_type_name(dtype)}'s range "
                f"(up to {info.max:.2g}) that the model computes in; rescale the data, e.g. divide by a power of 10",
            )
        if scale[column] < info.tiny:
            raise SpecError(
                place,
                f"the {name} values have a standard deviation of {scale[column]:.3g}, below {_type_name(dtype)}'s "
                f"range (from {info.tiny:.2g}) that the model computes in; rescale the data, "
                "e.g. multiply by a power of 10",
            )
    return points


def _type_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def negative_log_likelihood(flow: Flow, x: Tensor) -> Tensor:
    """-log p(x) per point for a flow with a standard normal base: |z|^2/2 + log 2 pi - log|det J_{f^-1}(x)|."""
    z, log_det_inverse = flow.inverse_and_log_det(x)
    return 0.5 * (z * z).sum(-1) + LOG_2PI - log_det_inverse


@torch.no_grad()
def mean_nll(flow: Flow, points: np.ndarray | Tensor, chunk: int = 65536) -> float:
    """Mean negative log-likelihood (nats per point) of points under any flow, in float64."""
    from flowviz.grid import as_float64

    flow64 = as_float64(flow)
    was_training = flow64.training
    flow64.eval()
    x = torch.as_tensor(np.asarray(points), dtype=torch.float64)
    total = 0.0
    for start in range(0, len(x), chunk):
        total += float(-flow64.log_prob(x[start : start + chunk]).sum())
    flow64.train(was_training)
    return total / len(x)


@dataclass
class TrainedModel:
    """A trained flow with what is needed to save it (:mod:`flowviz.model_io`) and to say what it is."""

    flow: Flow
    architecture: dict
    title: str = ""
    training: dict = field(default_factory=dict)
