"""Fit a flow to 2D data by maximum likelihood, as a loop that can be run in slices.

The model (:func:`build_model`) is a :class:`~flowviz.flow.Flow` with a standard
normal base and, in sampling order z -> x,

    [coupling, (ActNorm), (Swap | Rotation)] x L, then x = sigma * u + mu,

the last layer an :class:`~flowviz.layers.linear.Affine` that undoes the data's
standardisation. Its log|det| = log(sigma_1 sigma_2) is part of every log-density,
so likelihoods are in the data's own coordinates: scaling the data by 50 moves
the NLL by exactly 2 log 50, while the couplings see the same standardised points.

Training minimises the mean negative log-likelihood

    NLL(x) = -log p(x) = |z|^2 / 2 + log(2 pi) - log|det J_{f^{-1}}(x)|,  z = f^{-1}(x),

with Adam (Kingma & Ba, 2015), a warm-up then cosine learning-rate schedule over
the step or time budget, gradient-norm clipping, a held-out validation split
whose best model is kept (optionally stopping early when it stops improving),
and a guard that restores the last good state when a step produces NaN or
infinity (and says so in the progress record).

The default model (5 spline couplings with K = 12 bins on [-4, 4], one-hidden-layer
conditioners of 64 units, a fixed rotation between couplings, batch 512, peak
learning rate 5e-3) was chosen on bench/train.py: for 2D data, CPU steps per second
matter as much as capacity, and a 30-second run should end near the truth.

:class:`Trainer` runs the loop: ``step(n)`` does n steps, ``run_for(seconds)``
a time slice, and iterating over ``progress()`` yields a :class:`Progress`
record after each slice until the budget is spent; the CLI and the benchmark
just iterate. :class:`TrainingProcess` runs a Trainer in a separate, lower-priority
process for a page, which asks it for snapshots to redraw.
"""

from __future__ import annotations

import contextlib
import copy
import math
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

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


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ModelConfig:
    """The architecture: everything needed to rebuild the model (besides its weights).

    ``kind``: "nsf" (neural spline couplings) or "realnvp" (affine couplings);
    ``layers``: number of couplings; ``hidden``/``depth``: width and number of
    hidden layers of each conditioner network; ``bins``/``bound``: spline bins K
    on [-B, B] (nsf only); ``actnorm``: an ActNorm after each coupling;
    ``mixing``: how the conditioned coordinate changes from one coupling to the
    next ("alternate": x1, x2, x1, ...; "swap": a Swap layer between couplings;
    "rotation": alternate and also rotate by a fixed angle between couplings).
    """

    kind: str = "nsf"
    layers: int = 5
    hidden: int = 64
    depth: int = 1
    bins: int = 12
    bound: float = 4.0
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
        if not (isinstance(self.bound, (int, float)) and 0.1 <= self.bound <= 100.0):
            raise SpecError("model.bound", f"{self.bound!r}, but it must be a number from 0.1 to 100")
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
    """The flow of ``config``, ending with x = diag(scale) u + mean (the data's standardisation undone)."""
    config.check()
    layers: list[Bijector] = []
    for k in range(config.layers):
        condition_on = k % 2 if config.mixing != "swap" else 0
        if config.kind == "nsf":
            layers.append(
                NeuralSplineCoupling(condition_on, config.hidden, config.depth, config.bins, config.bound)
            )
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


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule, budget, validation and the random seed.

    The budget is ``steps`` and/or ``seconds`` of training time (pauses do not
    count); the schedule runs over whichever is spent first, so a time-limited
    run still ends with a small learning rate.
    """

    lr: float = 5e-3
    batch_size: int = 512
    steps: int | None = 2000
    seconds: float | None = None
    schedule: str = "cosine"  # cosine | constant
    warmup: float = 0.03  # fraction of the budget
    final_lr: float = 0.01  # fraction of lr at the end of the cosine
    clip: float = 5.0
    val_fraction: float = 0.1
    max_val_points: int = 4096
    val_every: int = 100
    patience: int | None = None  # stop after this many validations without a new best (None: never)
    seed: int = 0

    def check(self) -> TrainConfig:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SpecError("learning rate", f"{self.lr!r}, but it must be a positive number")
        if self.batch_size < 1:
            raise SpecError("batch size", f"{self.batch_size}, but it must be at least 1")
        if self.steps is None and self.seconds is None:
            raise SpecError("budget", "give a number of steps, a number of seconds, or both")
        if self.steps is not None and self.steps < 1:
            raise SpecError("steps", f"{self.steps}, but it must be at least 1")
        if self.seconds is not None and not self.seconds > 0:
            raise SpecError("seconds", f"{self.seconds}, but it must be positive")
        if self.schedule not in ("cosine", "constant"):
            raise SpecError("schedule", f"{self.schedule!r}, but it must be 'cosine' or 'constant'")
        return self


@dataclass
class Progress:
    """One record of the loop: where it is and how it goes.

    ``train_nll``: mean NLL of the batches since the previous record; ``val_nll``:
    NLL of the held-out points at the latest validation (None without a
    validation split); ``events``: what happened since the previous record that
    a person should know (a NaN step undone, say).
    """

    step: int
    train_nll: float
    val_nll: float | None
    best_val_nll: float | None
    steps_per_second: float
    lr: float
    seconds: float
    events: list[str] = field(default_factory=list)
    done: bool = False


class Trainer:
    """Maximum-likelihood training of a flow on 2D points, one slice at a time.

    >>> trainer = Trainer(points, ModelConfig(), TrainConfig(steps=500))   # doctest: +SKIP
    >>> for record in trainer.progress():                                  # doctest: +SKIP
    ...     print(record.step, record.train_nll, record.val_nll)
    >>> flow = trainer.best_flow()                                         # doctest: +SKIP
    """

    def __init__(
        self,
        points: np.ndarray,
        model: ModelConfig = ModelConfig(),
        train: TrainConfig = TrainConfig(),
        dtype: torch.dtype = torch.float32,
    ) -> None:
        points = check_trainable(points, dtype)
        self.model_config = model.check()
        self.config = train.check()
        self.dtype = dtype
        rng = np.random.default_rng(train.seed)
        order = rng.permutation(len(points))
        n_val = self._validation_size(len(points))
        self.val_points = points[order[:n_val]]
        self.train_points = points[order[n_val:]]
        # Standardise with the training split only: validation stays unseen.
        with np.errstate(all="ignore"):
            self.mean, self.scale = standardisation(self.train_points)
        if min(self.scale) == 0.0:
            raise SpecError("data", "the training points have no spread in one coordinate")
        if not all(math.isfinite(v) for v in (*self.mean, *self.scale)):
            raise SpecError(
                "data", "the training points are too large to standardise in float64: rescale them"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train.seed)
            self.flow = build_model(model, self.mean, self.scale).to(dtype)
        self.flow.train()
        # The couplings are trained on u = (x - mu) / sigma, standardised in float64 before
        # the cast, plus the constant log(sigma_1 sigma_2): the same likelihood as the whole
        # flow's, and data given in other units (x * 50 + 400) give the very same u, so
        # the very same training, to the last bit of float32.
        mean_, scale_ = np.asarray(self.mean), np.asarray(self.scale)
        self._x_train = torch.as_tensor((self.train_points - mean_) / scale_, dtype=dtype)
        self._x_val = torch.as_tensor((self.val_points[: train.max_val_points] - mean_) / scale_, dtype=dtype)
        self._inner = self.flow.prefix(len(self.flow.layers) - 1)
        self._log_scale = float(np.log(scale_).sum())
        self._generator = torch.Generator().manual_seed(train.seed)
        self._params = [p for p in self.flow.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self._params, lr=train.lr, fused=True)
        self._last_good = [p.detach().clone() for p in self._params]
        self._lr_factor = 1.0
        self.step_count = 0
        self.active_seconds = 0.0
        self.best_val_nll: float | None = None
        self.best_step = 0
        self._best_state: dict[str, Tensor] | None = None
        self.val_nll: float | None = None
        self._last_val_step = -1
        self._validations_since_best = 0
        self.history: list[Progress] = []
        self._pending_events: list[str] = []
        self._slice_losses: list[float] = []
        self._slice_start = (0, 0.0)

    # ---------------------------------------------------------------- budget and schedule

    def _validation_size(self, n: int) -> int:
        if n < 5 or self.config.val_fraction <= 0:
            return 0
        return int(min(max(1, round(self.config.val_fraction * n)), n - 2))

    @property
    def fraction_done(self) -> float:
        """How much of the budget is spent, 0..1: the larger of steps and time."""
        parts = []
        if self.config.steps is not None:
            parts.append(self.step_count / self.config.steps)
        if self.config.seconds is not None:
            parts.append(self.active_seconds / self.config.seconds)
        return min(1.0, max(parts))

    @property
    def done(self) -> bool:
        return self.fraction_done >= 1.0 or self.stopped_early

    @property
    def stopped_early(self) -> bool:
        """Whether the validation NLL has not improved for ``patience`` validations (early stopping)."""
        patience = self.config.patience
        return patience is not None and self._validations_since_best >= patience

    def learning_rate(self, fraction: float | None = None) -> float:
        """lr(p): a linear warm-up over the first ``warmup`` of the budget, then a cosine down to ``final_lr``."""
        p = self.fraction_done if fraction is None else fraction
        c = self.config
        if c.schedule == "constant":
            factor = 1.0
        elif p < c.warmup:
            factor = (p + 1e-3) / (c.warmup + 1e-3)
        else:
            q = (p - c.warmup) / max(1.0 - c.warmup, 1e-9)
            factor = c.final_lr + (1.0 - c.final_lr) * 0.5 * (1.0 + math.cos(math.pi * min(q, 1.0)))
        return c.lr * factor * self._lr_factor

    # ---------------------------------------------------------------- the steps

    def _batch(self) -> Tensor:
        n = len(self._x_train)
        if self.config.batch_size >= n:
            return self._x_train
        index = torch.randint(n, (self.config.batch_size,), generator=self._generator)
        return self._x_train[index]

    def _restore_last_good(self, what: str) -> None:
        """Undo a step that produced NaN or infinity: the last good weights, fresh Adam moments, half the lr."""
        with torch.no_grad():
            torch._foreach_copy_(self._params, self._last_good)
        self.optimizer.state.clear()
        self._lr_factor *= 0.5
        self._pending_events.append(
            f"step {self.step_count}: {what}; restored the last good weights and halved the learning rate "
            f"(now {self.learning_rate():.2g})"
        )

    def _one_step(self) -> None:
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self._nll(self._batch()).mean()
        value = float(loss.detach())
        if not math.isfinite(value):
            self._restore_last_good(f"the loss was {value}")
            self.step_count += 1
            return
        with torch.no_grad():  # these weights gave a finite loss: the new last good state
            torch._foreach_copy_(self._last_good, self._params)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(self._params, self.config.clip))
        if not math.isfinite(norm):
            self._restore_last_good(f"the gradient was {norm}")
            self.step_count += 1
            return
        self.optimizer.step()
        self.step_count += 1
        self._slice_losses.append(value)

    def _nll(self, standardised: Tensor) -> Tensor:
        """-log p(x) in the data's coordinates, from the standardised points u."""
        return negative_log_likelihood(self._inner, standardised) + self._log_scale

    @torch.no_grad()
    def validate(self) -> float | None:
        """NLL of the validation points now; keeps a copy of the weights when it is the best so far."""
        self._last_val_step = self.step_count
        if len(self._x_val) == 0:
            self.val_nll = None
            return None
        self.flow.eval()
        value = float(self._nll(self._x_val).mean())
        self.flow.train()
        self.val_nll = value
        if math.isfinite(value) and (self.best_val_nll is None or value < self.best_val_nll):
            self.best_val_nll = value
            self.best_step = self.step_count
            self._best_state = {k: v.detach().clone() for k, v in self.flow.state_dict().items()}
            self._validations_since_best = 0
        else:
            self._validations_since_best += 1
        return value

    def step(self, n: int = 1) -> Progress:
        """Run up to n steps (fewer when the budget runs out); return the progress record."""
        stop_at = self.step_count + n
        return self._advance(lambda: self.step_count < stop_at)

    def run_for(self, seconds: float) -> Progress:
        """Run steps for about ``seconds`` of wall clock (or until the budget is spent)."""
        deadline = time.perf_counter() + seconds
        return self._advance(lambda: time.perf_counter() < deadline)

    def _advance(self, keep_going: Callable[[], bool]) -> Progress:
        started = time.perf_counter()
        while not self.done and keep_going():
            self._one_step()
            now = time.perf_counter()
            self.active_seconds += now - started
            started = now
            if self.step_count % self.config.val_every == 0:
                self.validate()
        return self._record()

    def progress(self, slice_seconds: float = 1.0) -> Iterator[Progress]:
        """Yield a progress record after each slice of about ``slice_seconds`` until the budget is spent."""
        while not self.done:
            yield self.run_for(slice_seconds)

    def _record(self) -> Progress:
        if self.done and self._last_val_step != self.step_count:
            self.validate()
        step0, seconds0 = self._slice_start
        elapsed = self.active_seconds - seconds0
        rate = (self.step_count - step0) / elapsed if elapsed > 0 else 0.0
        record = Progress(
            step=self.step_count,
            train_nll=float(np.mean(self._slice_losses)) if self._slice_losses else math.nan,
            val_nll=self.val_nll,
            best_val_nll=self.best_val_nll,
            steps_per_second=rate,
            lr=self.learning_rate(),
            seconds=self.active_seconds,
            events=self._pending_events,
            done=self.done,
        )
        self._pending_events = []
        self._slice_losses = []
        self._slice_start = (self.step_count, self.active_seconds)
        self.history.append(record)
        return record

    # ---------------------------------------------------------------- results

    @property
    def events(self) -> list[str]:
        return [event for record in self.history for event in record.events]

    def best_flow(self) -> Flow:
        """A copy of the flow with the weights of the best validation NLL (the latest without validation)."""
        flow = copy.deepcopy(self.flow)
        if self._best_state is not None:
            flow.load_state_dict(self._best_state)
        return flow.eval()

    def current_flow(self) -> Flow:
        """A copy of the flow as it is now (for live pictures while training goes on)."""
        return copy.deepcopy(self.flow).eval()

    def architecture(self) -> dict:
        """The model as plain JSON-able data: its config and the data's standardisation."""
        return {"model": asdict(self.model_config), "mean": list(self.mean), "scale": list(self.scale)}

    def summary(self) -> dict:
        """Plain numbers about the run, stored with a saved model."""
        return {
            "steps": self.step_count,
            "seconds": round(self.active_seconds, 3),
            "best_step": self.best_step,
            "best_val_nll": self.best_val_nll,
            "stopped_early": self.stopped_early,
            "train_points": len(self.train_points),
            "val_points": len(self.val_points),
            "events": self.events,
        }

    def result(self, title: str = "") -> TrainedModel:
        """The best model so far, ready to save or to open in the Explorer."""
        return TrainedModel(self.best_flow(), self.architecture(), title, self.summary())


def with_overrides(config, **changes):
    """A frozen config with some fields changed (None values leave a field as it is)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})


# --------------------------------------------------------------------------- training beside a server

# Each training process holds 350-400 MB (torch, the data, the model): a server trains at
# most this many at once, whoever asks.
MAX_TRAINING_PROCESSES = 3
EXIT_UNTENDED = 3  # a training process's exit status when nothing reached it for its heartbeat timeout


class _Supervisor:
    """The server's training processes: a cap on how many run, keep-alives, and an end for abandoned ones.

    One daemon thread visits every process each ``period`` seconds while any is
    alive (:meth:`TrainingProcess.tend`): it pings those whose page's session is
    still there, closes those whose session has gone, and reaps ended children
    (``multiprocessing.active_children`` joins them), so no zombie waits for the
    next start. If the server itself hangs or dies, the pings stop and each
    process ends itself after its heartbeat timeout.
    """

    def __init__(self, period: float = 2.0) -> None:
        self.period = period
        self.limit = MAX_TRAINING_PROCESSES
        self._jobs: list[TrainingProcess] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def running(self) -> int:
        with self._lock:
            self._jobs = [job for job in self._jobs if job._process.is_alive()]
            return len(self._jobs)

    def admit(self, job: TrainingProcess) -> None:
        multiprocessing.active_children()  # reap what has ended
        with self._lock:
            self._jobs = [other for other in self._jobs if other._process.is_alive()]
            if len(self._jobs) >= self.limit:
                raise SpecError(
                    "training",
                    f"this server is already training {len(self._jobs)} flows, as many as it runs at once; "
                    "try again in a minute (a run ends when it finishes, is stopped, or its page is closed)",
                )
            job._process.start()
            self._jobs.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="flowviz-training-supervisor", daemon=True
                )
                self._thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.period)
            with self._lock:
                jobs = list(self._jobs)
            keep = []
            for job in jobs:
                try:
                    if job.tend(time.monotonic()):
                        keep.append(job)
                except Exception:  # a job that cannot be tended is let go, never the thread
                    continue
            multiprocessing.active_children()
            with self._lock:
                self._jobs = [job for job in self._jobs if job in keep or job not in jobs]
                if not self._jobs:
                    self._thread = None
                    return


_SUPERVISOR = _Supervisor()


def training_processes() -> int:
    """How many training processes this server runs now."""
    return _SUPERVISOR.running()


def _lower_priority(niceness: int) -> None:
    """Raise this process's nice value: the operating system then prefers every page and browser."""
    if niceness > 0 and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(niceness)


def _child_main(
    points,
    model: ModelConfig,
    train: TrainConfig,
    connection,
    niceness: int,
    idle_exit: float,
    abandon_after: float,
    heartbeat_timeout: float = math.inf,
) -> None:
    """The training process: runs the Trainer in slices and answers the parent's requests between them.

    Requests are (what, sequence number): "snapshot" (answered with the records since
    the last answer and the current weights, and the request's number), "pause",
    "resume", "stop", "close". The process sends nothing
    unasked, so a page that stops asking never fills the pipe. Once the final state
    (done, stopped, failed) has been reported it waits ``idle_exit`` seconds for
    another request, then exits; a result nobody has fetched yet, or a paused run,
    waits ``abandon_after`` seconds without a request (a person who left).
    "ping" is the server's keep-alive (see :class:`TrainingProcess`): it is not a visit
    and gets no answer, but with neither a request nor a ping for ``heartbeat_timeout``
    seconds the process ends in any state, running too: its server or its page is gone.
    """
    _lower_priority(niceness)
    torch.set_num_threads(1)
    state, error, sent = "running", None, 0
    trainer = None
    try:
        trainer = Trainer(points, model, train)
    except Exception as problem:  # reported to the page, never raised there
        state, error = "failed", f"{type(problem).__name__}: {problem}"
    last_request = last_signal = time.monotonic()
    reported_final = False
    while True:
        try:
            timeout = 0.0 if state == "running" else 0.25
            while connection.poll(timeout):
                request, sequence = connection.recv()
                last_signal = time.monotonic()
                timeout = 0.0
                if request == "ping":
                    continue
                last_request = last_signal
                if request == "snapshot":
                    records = trainer.history[sent:] if trainer else []
                    sent += len(records)
                    connection.send(_report(trainer, state, error, records) | {"sequence": sequence})
                    reported_final = state in ("done", "stopped", "failed")
                elif request == "pause" and state == "running":
                    state = "paused"
                elif request == "resume" and state == "paused":
                    state = "running"
                elif request == "stop" and state in ("running", "paused"):
                    state = "stopped"
                    trainer.validate()
                elif request == "close":
                    return
        except (EOFError, OSError):  # the server went away
            return
        if time.monotonic() - last_signal > heartbeat_timeout:
            sys.exit(EXIT_UNTENDED)
        if state == "running":
            try:
                trainer.run_for(0.1)
                if trainer.done:
                    state = "done"
            except Exception as problem:
                state, error = "failed", f"{type(problem).__name__}: {problem}"
        else:
            idle = time.monotonic() - last_request
            if idle > abandon_after or (reported_final and idle > idle_exit):
                return


def _report(trainer: Trainer | None, state: str, error: str | None, records: list[Progress]) -> dict:
    report: dict = {"state": state, "error": error, "records": records}
    if trainer is None:
        return report
    report.update(
        step=trainer.step_count,
        fraction_done=trainer.fraction_done,
        best_step=trainer.best_step,
        architecture=trainer.architecture(),
        summary=trainer.summary(),
        weights={k: v.detach().clone() for k, v in trainer.flow.state_dict().items()},
        best_weights=trainer._best_state,
    )
    return report


class TrainingProcess:
    """Train in a separate, lower-priority process, so no page waits for it.

    A thread in the server would share the GIL with every session's script: the
    training would hand the interpreter back and forth with the pages at every
    tensor operation (slowing both), and its intra-op threads would compete for
    the same cores. A process has its own interpreter; its raised nice value
    makes the operating system serve the pages first. The page keeps this
    object in its session state and calls :meth:`snapshot` to redraw.
    """

    def __init__(
        self,
        points: np.ndarray,
        model: ModelConfig,
        train: TrainConfig,
        niceness: int = 10,
        idle_exit: float = 300.0,
        abandon_after: float = 3600.0,
        owner_alive: Callable[[], bool] | None = None,
        owner_grace: float = 20.0,
        heartbeat_timeout: float = 30.0,
    ) -> None:
        self.points = check_trainable(points)
        self.model_config = model.check()
        self.config = train.check()
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        self.owner_alive = owner_alive
        self.owner_grace = float(owner_grace)
        self._owner_gone_since: float | None = None
        self._closed_because: str | None = None
        self._process = context.Process(
            target=_child_main,
            args=(
                self.points,
                model,
                train,
                child_end,
                niceness,
                idle_exit,
                abandon_after,
                heartbeat_timeout,
            ),
            name="flowviz-training",
            daemon=True,
        )
        self._abandon_after = float(abandon_after)
        self.collected = False  # set by the page once it has taken the result
        self._built: tuple[dict, Flow] | None = None  # the last weights and the flow made from them
        self._lock = threading.RLock()
        self.history: list[Progress] = []
        self.events: list[str] = []
        self.state = "starting"
        self.error: str | None = None
        self.step_count = 0
        self.fraction_done = 0.0
        self.best_step = 0
        self.architecture: dict | None = None
        self.summary: dict = {}
        self._weights: dict[str, Tensor] | None = None
        self._best_weights: dict[str, Tensor] | None = None
        self._sequence = 0  # of the last message sent
        self._last_command = 0  # sequence number of the last pause / resume / stop
        self._waiting = False  # a snapshot request is still unanswered

    # ---------------------------------------------------------------- control

    def start(self) -> None:
        """Start the process, or a SpecError if the server already trains MAX_TRAINING_PROCESSES flows."""
        _SUPERVISOR.admit(self)

    def _send(self, message: str) -> int:
        with self._lock:
            self._sequence += 1
            with contextlib.suppress(OSError, EOFError, ValueError):  # ValueError: closed already
                self._connection.send((message, self._sequence))
            if message not in ("snapshot", "ping"):
                self._last_command = self._sequence
            return self._sequence

    def tend(self, now: float) -> bool:
        """The supervisor's visit: keep the process alive while its page's session lives.

        Returns False once the process should be let go: it has ended, or its owner
        (the page's session) has been gone for ``owner_grace`` seconds (a closed tab,
        a reload: the new page cannot reach this run), in which case it is closed.
        """
        if not self._process.is_alive():
            return False
        alive = True if self.owner_alive is None else bool(self.owner_alive())
        if alive:
            self._owner_gone_since = None
            self._send("ping")
            return True
        if self._owner_gone_since is None:
            self._owner_gone_since = now
        if now - self._owner_gone_since >= self.owner_grace:
            self._closed_because = (
                "the training process was closed: the page that started it was closed or reloaded"
            )
            self.close()
            return False
        return True

    def pause(self) -> None:
        self._send("pause")
        if self.state == "running":
            self.state = "paused"

    def resume(self) -> None:
        self._send("resume")
        if self.state == "paused":
            self.state = "running"

    def stop(self) -> None:
        """Stop for good; the best model so far is kept (ask :meth:`snapshot` once more to fetch it)."""
        self._send("stop")

    def close(self) -> None:
        """End the process (after a last snapshot, if the model is wanted)."""
        if self._process.pid is None:  # never started
            return
        self._send("close")
        self._process.join(timeout=2.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=2.0)
        with self._lock:
            self._connection.close()

    @property
    def active(self) -> bool:
        """Whether the model may still change (starting, running or paused)."""
        return self.state in ("starting", "running", "paused")

    # ---------------------------------------------------------------- reading

    def poll(self, timeout: float = 5.0) -> None:
        """Ask the process where it is; update history, state and weights (no-op once it has ended)."""
        with self._lock:
            if not self._process.is_alive() and self.state != "starting":
                if self.active:
                    self.state, self.error = "failed", self.error or self._ended()
                return
            if (
                self.state == "starting"
                and not self._process.is_alive()
                and self._process.exitcode is not None
            ):
                self.state, self.error = "failed", "the training process could not start"
                return
            try:
                if not self._waiting:  # one request at a time: answers never pile up or go stale
                    self._send("snapshot")
                    self._waiting = True
                if not self._connection.poll(timeout):
                    return  # still starting (importing torch), or busy: keep the last picture
                report = self._connection.recv()
                self._waiting = False
            except (OSError, EOFError):
                if self.active:
                    self.state, self.error = "failed", self._ended()
                return
            self._update(report)

    def _ended(self) -> str:
        """Why a process that was still training or paused is gone."""
        self._process.join(timeout=0.5)
        if self._closed_because:
            return self._closed_because
        if self._process.exitcode == EXIT_UNTENDED:
            return "the training process ended itself: the server stopped reaching it"
        if self._process.exitcode == 0:
            return (
                f"the training process closed after {self._abandon_after / 60:.0f} minutes without a visit "
                "from this page"
            )
        return f"the training process ended unexpectedly (exit code {self._process.exitcode})"

    def _update(self, report: dict) -> None:
        # An answer to a request sent before the last command may predate it: keep its
        # records and weights, but not its state (a "running" from before "pause").
        if report["sequence"] > self._last_command:
            self.state = report["state"]
        self.error = report["error"]
        records = report["records"]
        self.history.extend(records)
        for record in records:
            self.events.extend(record.events)
        if "weights" in report:
            self.step_count = report["step"]
            self.fraction_done = report["fraction_done"]
            self.best_step = report["best_step"]
            self.architecture = report["architecture"]
            self.summary = report["summary"]
            self._weights = report["weights"]
            self._best_weights = report["best_weights"]

    def _flow(self, weights: dict[str, Tensor] | None) -> Flow | None:
        if self.architecture is None or weights is None:
            return None
        if self._built is not None and self._built[0] is weights:  # no new weights since the last call
            return self._built[1]
        architecture = self.architecture
        flow = build_model(self.model_config, architecture["mean"], architecture["scale"]).float()
        flow.load_state_dict(weights)
        self._built = (weights, flow.eval())
        return self._built[1]

    def snapshot(self) -> tuple[list[Progress], Flow | None]:
        """Poll, then return the records so far and the flow as it is now (None before the first answer)."""
        self.poll(timeout=1.0)
        return list(self.history), self._flow(self._weights)

    def result(self, title: str = "") -> TrainedModel | None:
        """The model with the best validation NLL (the latest without validation), or None if there is none."""
        weights = self._best_weights if self._best_weights is not None else self._weights
        flow = self._flow(weights)
        if flow is None:
            return None
        return TrainedModel(flow, dict(self.architecture), title, dict(self.summary))
