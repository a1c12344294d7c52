"""The training loop: a Trainer that runs maximum-likelihood steps in slices and reports its progress."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from flowviz.errors import SpecError
from flowviz.flow import Flow
from flowviz.train.model import (
    ModelConfig,
    TrainedModel,
    build_model,
    check_trainable,
    negative_log_likelihood,
    spline_bound,
    standardisation,
)


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
    # decay of the running average of the weights (Polyak), which is what is validated and kept
    ema: float | None = 0.998
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
        if self.ema is not None and not 0.0 <= self.ema < 1.0:
            raise SpecError("ema", f"{self.ema!r}, but it must be a number from 0 to 1 (1 excluded), or none")
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
        # The couplings are trained on u = (x - mu) / sigma, standardised in float64 before
        # the cast, plus the constant log(sigma_1 sigma_2): the same likelihood as the whole
        # flow's, and data given in other units (x * 50 + 400) give the very same u, so
        # the very same training, to the last bit of float32.
        mean_, scale_ = np.asarray(self.mean), np.asarray(self.scale)
        u_train = (self.train_points - mean_) / scale_
        if model.bound is None:
            self.model_config = replace(self.model_config, bound=spline_bound(u_train))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train.seed)
            self.flow = build_model(self.model_config, self.mean, self.scale).to(dtype)
        self.flow.train()
        self._x_train = torch.as_tensor(u_train, dtype=dtype)
        self._x_val = torch.as_tensor((self.val_points[: train.max_val_points] - mean_) / scale_, dtype=dtype)
        self._inner = self.flow.prefix(len(self.flow.layers) - 1)
        self._log_scale = float(np.log(scale_).sum())
        self._generator = torch.Generator().manual_seed(train.seed)
        self._params = [p for p in self.flow.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self._params, lr=train.lr, fused=True)
        self._last_good = [p.detach().clone() for p in self._params]
        self._average = [p.detach().clone() for p in self._params] if train.ema is not None else None
        self._lr_factor = 1.0
        self.step_count = 0
        # the training time's clock (seconds); a server's training process leaves out the time
        # it was held while other visitors' pages ran (flowviz.train.process)
        self.clock: Callable[[], float] = time.perf_counter
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
            # the step that went wrong may already be in the average: start it again from the good state
            if self._average is not None and not all(bool(torch.isfinite(a).all()) for a in self._average):
                torch._foreach_copy_(self._average, self._last_good)
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
        if self._average is not None:
            # Polyak averaging, the decay ramped up over the first steps (1 + t) / (10 + t)
            decay = min(self.config.ema, (1.0 + self.step_count) / (10.0 + self.step_count))
            with torch.no_grad():
                torch._foreach_lerp_(self._average, self._params, 1.0 - decay)

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
        with self._averaged_weights():
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

    @contextlib.contextmanager
    def _averaged_weights(self) -> Iterator[None]:
        """The flow holds the running average of its weights inside the block (when there is one)."""
        if self._average is None:
            yield
            return
        current = [p.detach().clone() for p in self._params]
        with torch.no_grad():
            torch._foreach_copy_(self._params, self._average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self._params, current)

    def step(self, n: int = 1) -> Progress:
        """Run up to n steps (fewer when the budget runs out); return the progress record."""
        stop_at = self.step_count + n
        return self._advance(lambda: self.step_count < stop_at)

    def run_for(self, seconds: float) -> Progress:
        """Run steps for about ``seconds`` of wall clock (or until the budget is spent)."""
        deadline = self.clock() + seconds
        return self._advance(lambda: self.clock() < deadline)

    def _advance(self, keep_going: Callable[[], bool]) -> Progress:
        started = self.clock()
        while not self.done and keep_going():
            self._one_step()
            now = self.clock()
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
        """A copy of the flow with the weights of the best validation NLL (the latest without validation).

        With ``ema``, the weights are the running average's: those are what is validated."""
        with self._averaged_weights():
            flow = copy.deepcopy(self.flow)
        if self._best_state is not None:
            flow.load_state_dict(self._best_state)
        return flow.eval()

    def current_flow(self) -> Flow:
        """A copy of the flow as it is now (for live pictures while training goes on); with ``ema``, the average."""
        with self._averaged_weights():
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


def default_training(
    seconds: float | None = 30.0, steps: int | None = None, seed: int = 0, kind: str = "nsf"
) -> tuple[ModelConfig, TrainConfig]:
    """The model and training configs of ``python -m flowviz train`` (and of bench/train.py's flowviz):
    the default architecture, a budget of ``seconds`` and/or ``steps``, the seed."""
    return ModelConfig(kind=kind), TrainConfig(seconds=seconds, steps=steps, seed=seed)


def with_overrides(config, **changes):
    """A frozen config with some fields changed (None values leave a field as it is)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
