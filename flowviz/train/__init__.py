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

In three modules: :mod:`flowviz.train.model` (the config, the flow it builds, the NLL),
:mod:`flowviz.train.loop` (the Trainer and its progress records) and
:mod:`flowviz.train.process` (training beside a server); all is imported from here.
"""

from flowviz.train.loop import Progress, TrainConfig, Trainer, with_overrides
from flowviz.train.model import (
    KINDS,
    LOG_2PI,
    MIXINGS,
    ModelConfig,
    TrainedModel,
    build_model,
    check_trainable,
    layer_name,
    mean_nll,
    mixing_angle,
    negative_log_likelihood,
    standardisation,
)
from flowviz.train.process import (
    _SUPERVISOR,
    EXIT_UNTENDED,
    MAX_TRAINING_PROCESSES,
    TrainingProcess,
    training_processes,
)

__all__ = [
    "EXIT_UNTENDED",
    "KINDS",
    "LOG_2PI",
    "MAX_TRAINING_PROCESSES",
    "MIXINGS",
    "_SUPERVISOR",
    "ModelConfig",
    "Progress",
    "TrainConfig",
    "TrainedModel",
    "Trainer",
    "TrainingProcess",
    "build_model",
    "check_trainable",
    "layer_name",
    "mean_nll",
    "mixing_angle",
    "negative_log_likelihood",
    "standardisation",
    "training_processes",
    "with_overrides",
]
