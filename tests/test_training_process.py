"""Training in a separate process: control, results, and what happens when nobody is looking."""

from __future__ import annotations

import base64
import os
import time

import numpy as np
import pytest
import torch

import flowviz.train
from flowviz.errors import SpecError
from flowviz.train import ModelConfig, TrainConfig, Trainer, TrainingProcess, mean_nll, training_processes

SMALL = ModelConfig(kind="nsf", layers=2, hidden=16, depth=1, bins=6, bound=4.0)
POINTS = np.random.default_rng(0).normal(size=(600, 2)) * [2.0, 0.5] + [1.0, -1.0]


def wait_for(job: TrainingProcess, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.poll(timeout=0.5)
        if predicate(job):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out in state {job.state!r} ({job.error})")


def started(steps: int, **kwargs) -> TrainingProcess:
    job = TrainingProcess(POINTS, SMALL, TrainConfig(steps=steps, val_every=20, seed=3), **kwargs)
    job.start()
    return job


def test_a_run_ends_with_the_same_model_as_training_here():
    job = started(60)
    try:
        wait_for(job, lambda j: j.state == "done")
        assert job.step_count == 60 and job.history[-1].done
        model = job.result("test")
        assert model is not None and model.title == "test"
        # the same seed and steps in this process give the same weights, hence the same NLL
        here = Trainer(POINTS, SMALL, TrainConfig(steps=60, val_every=20, seed=3))
        list(here.progress(slice_seconds=10.0))
        with torch.no_grad():
            assert mean_nll(model.flow, POINTS) == pytest.approx(mean_nll(here.best_flow(), POINTS), rel=1e-4)
    finally:
        job.close()


def test_the_process_builds_its_flow_with_the_spline_bound_chosen_from_the_data():
    heavy = np.random.default_rng(4).standard_t(2.5, size=(600, 2)) * [3.0, 0.1]
    model = ModelConfig(kind="nsf", layers=2, hidden=16, depth=1, bins=6)  # bound None: from the data
    config = TrainConfig(steps=40, val_every=20, seed=3)
    job = TrainingProcess(heavy, model, config)
    job.start()
    try:
        wait_for(job, lambda j: j.state == "done")
        result = job.result("heavy")
        here = Trainer(heavy, model, config)
        list(here.progress(slice_seconds=10.0))
        assert here.model_config.bound > 4.0
        assert result.architecture["model"]["bound"] == here.model_config.bound
        x = torch.as_tensor(heavy * 1.3)  # beyond the data too, where the bound decides
        with torch.no_grad():
            torch.testing.assert_close(
                result.flow.double().log_prob(x), here.best_flow().double().log_prob(x), rtol=1e-4, atol=1e-4
            )
    finally:
        job.close()


def test_pause_holds_the_step_count_and_resume_goes_on():
    job = started(100_000)
    try:
        wait_for(job, lambda j: j.step_count > 0)
        job.pause()
        wait_for(job, lambda j: j.state == "paused")
        time.sleep(0.3)
        job.poll(timeout=2.0)
        held = job.step_count
        time.sleep(0.5)
        job.poll(timeout=2.0)
        assert job.step_count == held and job.state == "paused"
        job.resume()
        wait_for(job, lambda j: j.state == "running" and j.step_count > held)
        job.stop()
        wait_for(job, lambda j: j.state == "stopped")
        assert job.result() is not None
    finally:
        job.close()


def test_a_result_nobody_asked_for_waits_for_the_page():
    """Training ends while the person is on another page: the result is still there when they come back."""
    job = started(40, idle_exit=0.2, abandon_after=60.0)
    try:
        time.sleep(8.0)  # start (imports), train 40 steps and sit idle far beyond idle_exit, unasked
        assert job._process.is_alive()
        wait_for(job, lambda j: j.state == "done")
        assert job.step_count == 40 and job.result() is not None
        job._process.join(timeout=20.0)  # reported: now it goes after idle_exit
        assert job._process.exitcode == 0
        job.poll()
        assert job.state == "done" and job.result() is not None
    finally:
        job.close()


def test_a_paused_run_left_alone_closes_and_says_why():
    job = started(100_000, abandon_after=2.0)
    try:
        wait_for(job, lambda j: j.step_count > 0)
        job.pause()
        wait_for(job, lambda j: j.state == "paused")
        time.sleep(3.0)
        job.poll()
        assert job.state == "failed"
        assert "without a visit" in job.error
    finally:
        job.close()


# --------------------------------------------------------------------------- the server's cap and abandoned runs


def _gone(pid: int, timeout: float) -> bool:
    """Whether the process has ended and been reaped (no /proc entry, not even a zombie) within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.1)
    return False


def test_the_server_trains_at_most_its_cap_and_says_so(monkeypatch):
    monkeypatch.setattr(flowviz.train._SUPERVISOR, "limit", 1)
    first = started(100_000)
    second = TrainingProcess(POINTS, SMALL, TrainConfig(steps=10, seed=3))
    try:
        with pytest.raises(SpecError, match=r"^training: this server is already training 1 flows") as error:
            second.start()
        assert "try again" in error.value.reason
        assert training_processes() == 1
        first.close()
        second.start()  # the slot is free again
        wait_for(second, lambda j: j.state == "done")
    finally:
        first.close()
        second.close()


def test_a_run_whose_page_has_gone_is_closed_promptly():
    """A reload or a closed tab: the session is gone, so the run is ended within the grace period."""
    page_open = [True]
    job = started(100_000, owner_alive=lambda: page_open[0], owner_grace=0.5)
    try:
        wait_for(job, lambda j: j.step_count > 0)
        time.sleep(3.0)  # unpolled, but its session lives: the supervisor keeps it alive
        assert job._process.is_alive()
        page_open[0] = False
        assert _gone(job._process.pid, timeout=10.0)
        assert training_processes() == 0
        job.poll()  # were the session to come back, it would be told why
        assert job.state == "failed" and job.error.endswith("the page that started it was closed or reloaded")
    finally:
        job.close()


def test_a_run_nobody_pings_ends_itself_and_is_reaped():
    """If the server stops tending it (hung, or its session gone but not yet closed), the run ends itself."""
    job = started(100_000, owner_alive=lambda: False, owner_grace=1e9, heartbeat_timeout=2.0)
    try:
        wait_for(job, lambda j: j.step_count > 0)  # polls are requests: from here on nothing is sent
        assert _gone(job._process.pid, timeout=15.0)  # ended by itself, and no zombie left
        job.poll()
        assert job.state == "failed" and job.error.endswith("ended itself: the server stopped reaching it")
    finally:
        job.close()


def _array(value) -> np.ndarray:
    """A figure's data array, as plotly's JSON form holds it: a list, an array, or a base64 typed array."""
    if isinstance(value, dict):
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype="<" + value["dtype"])
        shape = value.get("shape")
        return (array.reshape([int(n) for n in shape.split(",")]) if shape else array).astype(float)
    return np.asarray(value, dtype=float)


def test_a_watched_run_sends_pictures_of_the_model_at_that_step():
    """The live pictures are made in the training process (the server only forwards them):
    the density picture's values are the density of the model whose weights came in the same
    answer, at the picture's own coordinates; the loss curve has every record so far."""
    job = started(100_000, figures=True)
    try:
        wait_for(job, lambda j: isinstance(j.figures, dict) and j.step_count > 0)
        job.pause()
        wait_for(job, lambda j: j.state == "paused")
        job.poll(timeout=5.0)  # an answer from the paused run: its pictures and weights are of one step
        assert isinstance(job.figures, dict), job.figures
        _, flow = job.snapshot()
        heat = job.figures["density"]["data"][0]
        xs, ys, z = _array(heat["x"]), _array(heat["y"]), _array(heat["z"])
        grid_x, grid_y = np.meshgrid(xs, ys)
        points = torch.tensor(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1), dtype=torch.float32)
        with torch.no_grad():
            truth = flow.log_prob(points).exp().double().numpy().reshape(z.shape)
        np.testing.assert_allclose(z, truth, rtol=1e-3, atol=1e-6 * truth.max())
        loss = job.figures["loss"]["data"][0]
        assert len(_array(loss["x"])) == len(job.history) and _array(loss["x"])[-1] == job.history[-1].step
        samples = _array(job.figures["samples"]["data"][0]["x"])
        assert len(samples) > 100 and np.all(np.isfinite(samples))
    finally:
        job.close()


def test_an_unwatched_run_sends_no_pictures():
    job = started(100_000)
    try:
        wait_for(job, lambda j: j.step_count > 0)
        assert job.figures is None
    finally:
        job.close()


def test_the_training_process_runs_at_nice_10_from_its_start():
    """Its first seconds (starting Python, importing torch) must not compete with the pages either:
    the server lowers it as it starts, and it stays there while it trains."""
    job = TrainingProcess(POINTS, SMALL, TrainConfig(steps=100_000, seed=3))
    job.start()
    try:
        pid = job._process.pid
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        assert job.state == "starting"
        assert os.getpriority(os.PRIO_PROCESS, pid) == expected
        wait_for(job, lambda j: j.step_count > 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == expected
    finally:
        job.close()


def _process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_a_held_run_takes_no_step_and_its_clock_leaves_the_held_time_out():
    """Held by the server while other visitors' pages run: stopped (no processor at all),
    the step count frozen, and the training time reported afterwards is wall time minus the hold."""
    job = TrainingProcess(POINTS, SMALL, TrainConfig(seconds=600.0, val_every=20, seed=3))
    job.start()
    try:
        wait_for(job, lambda j: j.step_count > 0)
        began = time.monotonic()
        job.poll(timeout=2.0)
        seconds_before = job.history[-1].seconds
        flowviz.train.process.hold_training(True)
        assert job.held
        time.sleep(0.2)
        assert _process_state(job._process.pid) == "T"  # stopped
        held_steps = job.step_count
        job.poll(timeout=0.5)  # no answer from a stopped process
        assert job.step_count == held_steps
        time.sleep(1.0)
        flowviz.train.process.hold_training(False)
        assert not job.held and _process_state(job._process.pid) != "T"
        wait_for(job, lambda j: j.step_count > held_steps and j.history[-1].seconds > seconds_before)
        wall = time.monotonic() - began
        trained = job.history[-1].seconds - seconds_before
        assert trained <= wall - 1.5 + 0.3, (trained, wall)  # the 1.7 s held are no training time
        assert trained > 0
    finally:
        job.close()
    assert not job._process.is_alive()  # a run held or not, closing ends it


def test_closing_a_held_run_ends_it():
    job = started(100_000)
    try:
        wait_for(job, lambda j: j.step_count > 0)
        job.hold(True)
        assert _process_state(job._process.pid) == "T"
    finally:
        job.close()
    assert not job._process.is_alive() and not job.held


def test_the_grace_a_run_has_after_its_page_is_gone_can_be_set_and_a_bad_value_is_ignored(monkeypatch):
    from flowviz.train.process import _seconds_from_environment

    name = "FLOWVIZ_TEST_SECONDS"
    monkeypatch.delenv(name, raising=False)
    assert _seconds_from_environment(name, 20.0, least=1.0) == 20.0
    for text, seconds in (
        ("2.5", 2.5),
        ("0", 1.0),
        ("-3", 1.0),
        ("nan", 20.0),
        ("inf", 20.0),
        ("soon", 20.0),
    ):
        monkeypatch.setenv(name, text)
        assert _seconds_from_environment(name, 20.0, least=1.0) == seconds, text
