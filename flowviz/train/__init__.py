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

The defaults (5 spline couplings with K = 12 bins on [-B, B], conditioners of
two hidden layers of 64 units, a fixed rotation between couplings, batch 512,
peak learning rate 5e-3, 10% of the points to validate, weight average of decay
0.998; the command line on every core) are what ``python -m flowviz train`` and
the Train page use. B is 4, or up to 6 when the standardised training points
reach further (:func:`spline_bound`). The defaults were chosen on the *tuning*
half of bench/train.py (14 data sets x 200 / 1 000 / 5 000 points, 30 s each)
and judged on its held-out half (7 other sets), against zuko's NSF given the
same 30 s:

- For 2D data, CPU steps per second matter as much as capacity: these couplings
  make 90-160 steps/s on 2 threads where zuko's NSF makes 70-100.
- On small and medium sets a 30 s run overfits within a few hundred steps: the
  best validation checkpoint came at 5-60% of the run, while the learning rate
  was still high, and was noisy. Scoring and keeping the weights' running
  average instead cut the gap to the true entropy by 28%, 35% and 27% (medians
  over the first 7 tuning sets at 200, 1 000 and 5 000 points); against zuko, the
  ratio of the gaps went from 0.78 to 0.54 in geometric mean, the worst from 1.55
  to 0.97. Decays 0.99, 0.995 and 0.998 did alike; a lower peak rate (3e-3) did worse.
- Outside [-B, B] a spline coupling is the identity. Heavy tails (a Student t)
  and a skewed banana put 0.6-0.9% of their points beyond 4 standard
  deviations: B = 6 cut their gap at 5 000 points from 0.102 to 0.061 and from
  0.090 to 0.038, but cost compact shapes resolution (checkerboard 0.127 -> 0.153,
  double spiral 0.247 -> 0.449); B = 3 helped two compact shapes and hurt two
  (spiral 0.040 -> 0.046, ring 0.023 -> 0.030). Hence B = 4, widened only as
  far as the data reach (means of 2 seeds).
- A second hidden layer costs about 20% of the steps per second. Over the 14
  tuning sets (one seed) it cut the gap at 200 and 5 000 points (geometric mean
  of the ratios 0.94 and 0.90, smaller in 10 and 11 of 14 sets; sharp edges and
  tight curves most: checkerboard 0.120 -> 0.087, letters 0.051 -> 0.033 at 5 000)
  and was even at 1 000 (1.02, 8 of 14). One hidden layer with 96 units, or 8 or
  16 bins, 7 couplings, a peak rate of 3e-3 did not pay for themselves.
- Both threads of a 2-core machine give 10-15% more steps per second, so the
  command line uses every core; the app's training processes keep to one thread
  so that visitors' pages keep the other.

On the held-out half (7 sets written before any learner ran on them, 2 seeds,
both learners on 2 threads as the command line runs), the defaults' mean gap
was the smaller in all 21 (set, size) cases, and in each seed: worst ratio to
zuko's 0.80 (a 3-turn spiral at 1 000 points), geometric means 0.35, 0.57 and
0.53 at 200, 1 000 and 5 000 points, and 0.42-1.51 nats smaller at 200 points.

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
