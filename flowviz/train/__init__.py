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
the step or time budget, gradient-norm clipping, a running (Polyak) average of
the weights, a held-out validation split on which the *average* is scored and
whose best is kept (optionally stopping early when it stops improving), and a
guard that restores the last good state when a step produces NaN or infinity
(and says so in the progress record).

The defaults (5 spline couplings with K = 12 bins on [-4, 4], one-hidden-layer
conditioners of 64 units, a fixed rotation between couplings, batch 512, peak
learning rate 5e-3, 10% of the points to validate, weight average of decay
0.998; the command line on every core) are what ``python -m flowviz train`` and
the Train page use. They were chosen on the *tuning* half of bench/train.py
(7 data sets x 200 / 1 000 / 5 000 points, 30 s each) and judged on its
held-out half, against zuko's NSF given the same 30 s:

- For 2D data, CPU steps per second matter as much as capacity: these couplings
  make 100-160 steps/s on one core where zuko's NSF makes 70-80, and a second
  hidden layer, 96 units or 8 bins did not pay for themselves.
- On small and medium sets a 30 s run overfits within a few hundred steps: the
  best validation checkpoint came at 5-60% of the run, while the learning rate
  was still high, and was noisy. Scoring and keeping the weights' running
  average instead cut the gap to the true entropy by 28%, 35% and 27% (medians
  over the sets at 200, 1 000 and 5 000 points; 0-57% in all); against zuko, the
  ratio of the gaps went from 0.78 to 0.54 in geometric mean, the worst from 1.55
  to 0.97 (tuning half, one seed, pairs run two at a time on one thread each). Decays 0.99, 0.995 and 0.998 did alike;
  a lower peak rate (3e-3) did worse.
- Both threads of a 2-core machine give 10-15% more steps per second, so the
  command line uses every core; the app's training processes keep to one thread
  so that visitors' pages keep the other.

On the held-out half (7 other sets, 2 seeds, both learners on 2 threads), the
defaults' gap was the smaller in 20 of 21 (set, size) cases, by 0.56-1.38 nats
at 200 points; the exception is a banana at 5 000 points (0.072 against 0.061).
The tables are in bench/results/train_tuning.json and train_held-out.json.

:class:`Trainer` runs the loop: ``step(n)`` does n steps, ``run_for(seconds)``
a time slice, and iterating over ``progress()`` yields a :class:`Progress`
record after each slice until the budget is spent; the CLI and the benchmark
just iterate. :class:`TrainingProcess` runs a Trainer in a separate, lower-priority
process for a page, which asks it for snapshots to redraw.

In three modules: :mod:`flowviz.train.model` (the config, the flow it builds, the NLL),
:mod:`flowviz.train.loop` (the Trainer and its progress records) and
:mod:`flowviz.train.process` (training beside a server); all is imported from here.
"""

from flowviz.train.loop import Progress, TrainConfig, Trainer, default_training, with_overrides
from flowviz.train.model import (
    DEFAULT_BOUND,
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
    spline_bound,
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
    "DEFAULT_BOUND",
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
    "default_training",
    "layer_name",
    "mean_nll",
    "mixing_angle",
    "negative_log_likelihood",
    "spline_bound",
    "standardisation",
    "training_processes",
    "with_overrides",
]
