"""Training: it learns, it keeps the best model, it survives NaN, and likelihoods stay in the data's units."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flowviz.errors import SpecError
from flowviz.grid import evaluate_flow
from flowviz.train import (
    DEFAULT_BOUND,
    ModelConfig,
    TrainConfig,
    Trainer,
    build_model,
    mean_nll,
    spline_bound,
)

SMALL = ModelConfig(kind="nsf", layers=2, hidden=16, depth=1, bins=6, bound=4.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _correlated_gaussian(n: int, seed: int = 0, rho: float = 0.9):
    """Points from N(mu, Sigma) with correlation rho, and the true entropy 1 + log 2 pi + log det Sigma / 2."""
    covariance = np.array([[4.0, rho * 2.0 * 0.5], [rho * 2.0 * 0.5, 0.25]])
    points = np.random.default_rng(seed).multivariate_normal([3.0, -1.0], covariance, size=n)
    entropy = 1.0 + math.log(2 * math.pi) + 0.5 * math.log(np.linalg.det(covariance))
    return points, entropy


@pytest.mark.parametrize("kind", ["nsf", "realnvp"])
def test_training_brings_the_nll_down_to_the_entropy(kind):
    points, entropy = _correlated_gaussian(4000)
    test_points, _ = _correlated_gaussian(4000, seed=1)
    model = ModelConfig(kind=kind, layers=4, hidden=32, depth=1, bins=8, mixing="alternate")
    trainer = Trainer(points, model, TrainConfig(steps=300, lr=1e-2, batch_size=512, val_every=50))
    before = mean_nll(trainer.best_flow(), test_points)
    # The untrained flow is the per-coordinate standardisation: it misses the correlation,
    # by -log(1 - rho^2) / 2 = 0.83 nats.
    assert before - entropy == pytest.approx(-0.5 * math.log(1 - 0.9**2), abs=0.05)
    records = list(trainer.progress(slice_seconds=0.5))
    assert records[-1].done and trainer.step_count == 300
    after = mean_nll(trainer.best_flow(), test_points)
    assert after - entropy < 0.05
    assert after < before - 0.7


def test_nll_is_in_the_data_coordinates_scaling_by_50_shifts_it_by_2_log_50():
    points, _ = _correlated_gaussian(600, seed=2)
    pixels = points * 50.0 + 400.0
    config = TrainConfig(steps=60, batch_size=256, val_every=20)
    nlls = []
    for data in (points, pixels):
        trainer = Trainer(data, SMALL, config, dtype=torch.float64)
        untrained = mean_nll(trainer.current_flow(), data)
        trainer.step(60)
        nlls.append((untrained, mean_nll(trainer.best_flow(), data)))
    shift = 2 * math.log(50.0)
    # The untrained flow is exactly the standardisation: the shift is exact.
    assert nlls[1][0] - nlls[0][0] == pytest.approx(shift, abs=1e-9)
    # Training sees the same standardised points (to rounding), so it stays exact after training too.
    assert nlls[1][1] - nlls[0][1] == pytest.approx(shift, abs=1e-6)
    assert nlls[0][1] < nlls[0][0]


def test_standardisation_is_a_counted_affine_layer_at_the_data_end():
    flow = build_model(SMALL, mean=(400.0, -3.0), scale=(50.0, 0.5)).double()
    x = torch.tensor([[400.0, -3.0]], dtype=torch.float64)
    # At the mean, z = 0: log p = log N(0; 0, I) - log(50 * 0.5).
    with torch.no_grad():
        log_p = float(flow.log_prob(x))
    assert log_p == pytest.approx(-math.log(2 * math.pi) - math.log(25.0), abs=1e-12)
    grid = evaluate_flow(flow, {"xlim": [200.0, 600.0], "ylim": [-5.0, -1.0], "resolution": 200})
    assert float(grid["mass"]) == pytest.approx(1.0, abs=1e-3)


def test_nan_guard_restores_the_last_good_weights_and_says_so():
    points, _ = _correlated_gaussian(500, seed=3)
    trainer = Trainer(points, SMALL, TrainConfig(steps=100, val_every=1000))
    trainer.step(5)
    good = [p.detach().clone() for p in trainer.flow.parameters()]
    trainer.step(1)  # a finite loss: these weights become the last good state, then move on
    lr_before = trainer.learning_rate()
    with torch.no_grad():
        next(trainer.flow.parameters()).fill_(float("nan"))  # a step gone wrong
    record = trainer.step(1)
    assert len(record.events) == 1
    assert "restored the last good weights" in record.events[0] and "nan" in record.events[0].lower()
    for restored, kept in zip(trainer.flow.parameters(), good, strict=True):
        assert torch.equal(restored.detach(), kept)
    assert trainer.learning_rate() == pytest.approx(lr_before / 2, rel=0.05)
    record = trainer.step(5)
    assert record.events == [] and math.isfinite(record.train_nll)
    assert all(torch.isfinite(p).all() for p in trainer.flow.parameters())
    assert trainer.events == [trainer.history[-2].events[0]]


def test_nan_in_the_gradient_is_caught_too():
    points, _ = _correlated_gaussian(300, seed=4)
    trainer = Trainer(points, SMALL, TrainConfig(steps=100))
    trainer.step(3)
    good = [p.detach().clone() for p in trainer.flow.parameters()]
    handle = next(trainer.flow.parameters()).register_hook(lambda g: g * float("inf"))
    record = trainer.step(1)
    handle.remove()
    assert "gradient" in record.events[0]
    for restored, kept in zip(trainer.flow.parameters(), good, strict=True):
        assert torch.equal(restored.detach(), kept)


def test_the_best_validation_model_is_kept():
    points, _ = _correlated_gaussian(1000, seed=5)
    trainer = Trainer(points, SMALL, TrainConfig(steps=1000, val_every=10**6, ema=None))
    trainer.step(40)
    best = trainer.validate()
    with torch.no_grad():
        for parameter in trainer.flow.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    worse = trainer.validate()
    assert worse > best
    assert trainer.best_val_nll == best and trainer.best_step == 40
    kept = trainer.best_flow()
    x_val = torch.as_tensor(trainer.val_points)
    assert mean_nll(kept, x_val) == pytest.approx(best, abs=1e-4)
    assert mean_nll(trainer.current_flow(), x_val) == pytest.approx(worse, abs=1e-4)


def test_learning_rate_schedule_warms_up_then_follows_a_cosine():
    points, _ = _correlated_gaussian(100)
    trainer = Trainer(points, SMALL, TrainConfig(lr=1e-2, steps=1000, warmup=0.1, final_lr=0.01))
    assert trainer.learning_rate(0.0) < 1e-3
    assert trainer.learning_rate(0.1) == pytest.approx(1e-2)
    assert trainer.learning_rate(0.55) == pytest.approx(1e-2 * (0.01 + 0.99 * 0.5))
    assert trainer.learning_rate(1.0) == pytest.approx(1e-4)


def test_budget_in_seconds_and_steps_whichever_comes_first():
    points, _ = _correlated_gaussian(200)
    by_steps = Trainer(points, SMALL, TrainConfig(steps=7, seconds=60))
    records = list(by_steps.progress(0.05))
    assert by_steps.step_count == 7 and records[-1].done
    by_time = Trainer(points, SMALL, TrainConfig(steps=None, seconds=0.3))
    list(by_time.progress(0.05))
    assert by_time.done and 0.3 <= by_time.active_seconds < 1.5
    assert by_time.fraction_done == 1.0


def test_progress_records_carry_the_numbers_a_page_draws():
    points, _ = _correlated_gaussian(400)
    trainer = Trainer(points, SMALL, TrainConfig(steps=30, val_every=10))
    record = trainer.step(10)
    assert record.step == 10 and record.val_nll is not None and record.best_val_nll is not None
    assert record.steps_per_second > 0 and record.lr > 0 and record.seconds > 0
    assert math.isfinite(record.train_nll)
    assert len(trainer.val_points) == 40 and len(trainer.train_points) == 360


def test_training_is_reproducible_with_a_seed():
    points, _ = _correlated_gaussian(300)
    states = []
    for _ in range(2):
        trainer = Trainer(points, SMALL, TrainConfig(steps=20, seed=11))
        trainer.step(20)
        states.append(trainer.flow.state_dict())
    for name, value in states[0].items():
        assert torch.equal(value, states[1][name])


def test_tiny_data_sets_train_without_a_validation_split():
    points = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]])
    trainer = Trainer(
        points, ModelConfig(kind="realnvp", layers=2, hidden=8, actnorm=True), TrainConfig(steps=20)
    )
    record = trainer.step(20)
    assert len(trainer.val_points) == 0 and record.val_nll is None and record.done
    assert math.isfinite(mean_nll(trainer.best_flow(), points))


def test_bad_data_and_settings_are_refused_with_a_reason():
    with pytest.raises(SpecError, match="only 1 point"):
        Trainer(np.array([[1.0, 2.0]]))
    with pytest.raises(SpecError, match="no spread in y"):
        Trainer(np.array([[1.0, 2.0], [3.0, 2.0], [4.0, 2.0]]))
    with pytest.raises(SpecError, match=r"model\.bins"):
        ModelConfig(bins=1).check()
    for bound in (True, 0.0, "4", float("nan")):  # null is allowed: chosen from the data
        with pytest.raises(SpecError, match=r"model\.bound"):
            ModelConfig(bound=bound).check()
    assert ModelConfig(bound=None).check().bound is None
    with pytest.raises(SpecError, match=r"model\.kind"):
        ModelConfig(kind="maf").check()
    with pytest.raises(SpecError, match="learning rate"):
        TrainConfig(lr=0).check()
    with pytest.raises(SpecError, match="budget"):
        TrainConfig(steps=None, seconds=None).check()


def test_early_stopping_when_validation_stops_improving():
    points, _ = _correlated_gaussian(40, seed=8)  # few points: a flexible flow learns them by heart
    model = ModelConfig(kind="nsf", layers=4, hidden=64, depth=1, bins=16)
    trainer = Trainer(points, model, TrainConfig(steps=3000, lr=2e-2, val_every=10, patience=5))
    list(trainer.progress(0.5))
    assert trainer.stopped_early and trainer.done
    assert trainer.step_count < 3000
    assert trainer.step_count == trainer.best_step + 5 * 10
    assert trainer.summary()["stopped_early"] is True


@pytest.mark.parametrize(
    ("scale", "message"),
    [(1e39, r"the x values reach 2e\+39, beyond float32's range"), (1e-39, "below float32's range")],
)
def test_data_whose_standardisation_leaves_float32_is_refused(scale, message):
    """Before, such data trained 'successfully' to a model that scored inf and sampled NaN."""
    from flowviz.errors import SpecError
    from flowviz.train import check_trainable

    points = np.array([[-2.0, 0.0], [0.0, 1.0], [2.0, 2.0]]) * [scale, 1.0]
    with pytest.raises(SpecError, match=message):
        Trainer(points, ModelConfig(layers=1, hidden=4), TrainConfig(steps=1))
    assert check_trainable(points, torch.float64) is not None  # float64 holds them


def test_the_kept_model_is_the_running_average_of_the_weights():
    """With ``ema``, the weights validated and kept are a_t = d_t a_{t-1} + (1 - d_t) w_t,
    d_t = min(ema, (1 + t) / (10 + t)), recomputed here from the weights after every step."""
    points, _ = _correlated_gaussian(600)
    trainer = Trainer(points, SMALL, TrainConfig(steps=40, lr=1e-2, ema=0.9, val_fraction=0.0))
    names = [name for name, p in trainer.flow.named_parameters() if p.requires_grad]
    average = {name: p.detach().clone() for name, p in trainer.flow.named_parameters() if p.requires_grad}
    for t in range(1, 41):
        trainer.step(1)
        decay = min(0.9, (1.0 + t) / (10.0 + t))
        weights = dict(trainer.flow.named_parameters())
        for name in names:
            average[name] = decay * average[name] + (1 - decay) * weights[name].detach()
    kept = dict(trainer.best_flow().named_parameters())
    now = dict(trainer.flow.named_parameters())
    for name in names:
        torch.testing.assert_close(kept[name], average[name], rtol=1e-5, atol=1e-6)
    # the training weights themselves are not the average (and were not replaced by it)
    assert any(not torch.allclose(now[name], average[name]) for name in names)


def test_validation_scores_the_running_average():
    points, _ = _correlated_gaussian(2000)
    trainer = Trainer(points, SMALL, TrainConfig(steps=60, lr=1e-2, ema=0.95, val_every=60))
    trainer.step(60)
    kept = trainer.best_flow()
    val = torch.as_tensor(trainer.val_points, dtype=torch.float32)
    with torch.no_grad():
        expected = float(-kept.log_prob(val).mean())
    assert trainer.val_nll == pytest.approx(expected, rel=1e-5)
    assert trainer.best_step == 60
    with torch.no_grad():
        raw = float(-trainer.flow.eval().log_prob(val).mean())
    assert abs(raw - expected) > 1e-3  # the average is not the last weights: the check can tell


def test_a_step_that_breaks_the_weights_does_not_poison_their_average():
    """An update that makes a weight NaN enters the average at once; the guard restores both."""
    points, _ = _correlated_gaussian(500, seed=6)
    trainer = Trainer(points, SMALL, TrainConfig(steps=100, val_every=1000, ema=0.9))
    trainer.step(5)
    first = next(trainer.flow.parameters())
    hook = trainer.optimizer.register_step_post_hook(lambda *_: first.data.fill_(float("nan")))
    trainer.step(1)  # finite loss, then the update breaks a weight
    hook.remove()
    record = trainer.step(1)  # its loss is NaN: restored
    assert "restored the last good weights" in record.events[0]
    trainer.step(5)
    kept = trainer.best_flow()
    assert all(torch.isfinite(p).all() for p in kept.parameters())
    with torch.no_grad():
        assert math.isfinite(float(kept.log_prob(torch.as_tensor(points[:50], dtype=torch.float32)).mean()))


def test_the_spline_bound_covers_heavy_tailed_data_and_stays_4_for_compact_data():
    rng = np.random.default_rng(5)
    compact = rng.uniform(-1.0, 1.0, size=(2000, 2)) * [300.0, 0.02]  # |u| <= sqrt(3)
    heavy = rng.standard_t(3.0, size=(2000, 2)) * [5.0, 1e3]
    reaching = rng.normal(size=(2000, 2))
    reaching[:20] = [4.8, 0.0]  # a few points about 4.8 standard deviations out
    for points, expected in ((compact, 4.0), (heavy, 6.0)):
        trainer = Trainer(points, ModelConfig(layers=2, hidden=8), TrainConfig(steps=1))
        assert trainer.model_config.bound == expected
        assert trainer.architecture()["model"]["bound"] == expected
    # in between: the farthest standardised training point plus 10%, rounded up to 0.1
    trainer = Trainer(reaching, ModelConfig(layers=2, hidden=8), TrainConfig(steps=1))
    u = (trainer.train_points - trainer.train_points.mean(0)) / trainer.train_points.std(0)
    reach = 1.1 * np.abs(u).max()
    assert 4.0 < reach < 6.0
    assert trainer.model_config.bound == pytest.approx(np.ceil(10 * reach) / 10)
    # every spline of the built flow uses it; a bound given explicitly is kept
    assert {layer.bound for layer in trainer.flow.layers if hasattr(layer, "bins")} == {
        trainer.model_config.bound
    }
    assert Trainer(heavy, SMALL, TrainConfig(steps=1)).model_config.bound == 4.0
    assert spline_bound(np.zeros((0, 2))) == DEFAULT_BOUND == 4.0


def test_a_flow_built_from_the_saved_architecture_is_the_trained_flow_for_heavy_tails():
    points = np.random.default_rng(6).standard_t(2.5, size=(800, 2)) * [3.0, 0.1]
    trainer = Trainer(points, ModelConfig(layers=3, hidden=16), TrainConfig(steps=30, seed=2))
    list(trainer.progress(slice_seconds=10.0))
    assert trainer.model_config.bound > 4.0
    architecture = trainer.architecture()
    rebuilt = build_model(
        ModelConfig.from_dict(architecture["model"]), architecture["mean"], architecture["scale"]
    )
    rebuilt.load_state_dict(trainer.best_flow().state_dict())
    x = torch.as_tensor(points[:200] * 1.5)  # some points beyond the training range: the identity tails
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.double().log_prob(x), trainer.best_flow().double().log_prob(x))
