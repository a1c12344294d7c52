"""Quick runs first: training is held while visitors' pages run, within bounds (flowviz.ui.fairness)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from flowviz.ui.fairness import QuickRuns


class Recorder:
    """A stand-in for the training processes: the times it was held and let go."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, bool]] = []
        self.start = time.monotonic()

    def __call__(self, held: bool) -> None:
        self.calls.append((time.monotonic() - self.start, held))

    @property
    def held(self) -> bool:
        return bool(self.calls) and self.calls[-1][1]


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_a_run_holds_the_work_until_its_tail_has_passed():
    work = Recorder()
    runs = QuickRuns(work, tail=0.15, max_hold=5.0, free=0.5)
    with runs.run():
        wait_until(lambda: work.held)
        assert runs.running == 1
        time.sleep(0.1)
        ended = time.monotonic() - work.start
    assert runs.running == 0 and work.held  # its page is being drawn: still held
    wait_until(lambda: not work.held)
    released = work.calls[-1][0]
    assert released == pytest.approx(ended + 0.15, abs=0.08)
    assert [held for _, held in work.calls] == [True, False]


def test_runs_inside_runs_count_once_and_an_error_ends_them_too():
    work = Recorder()
    runs = QuickRuns(work, tail=0.01)
    with pytest.raises(RuntimeError), runs.run():
        with runs.run():  # a part of the page that reruns alone, inside the app's run
            assert runs.running == 1
        assert runs.running == 1
        raise RuntimeError("a run that stops half-way (Streamlit's rerun, or a bug)")
    assert runs.running == 0
    wait_until(lambda: not work.held)


def test_a_costly_run_says_so_and_nothing_waits_for_it():
    work = Recorder()
    runs = QuickRuns(work, tail=0.05)
    with runs.run():
        wait_until(lambda: work.held)
        runs.not_quick()  # a link to the finest grid: training goes on meanwhile
        assert runs.running == 0
        wait_until(lambda: not work.held)
        time.sleep(0.1)
        assert not work.held
    assert runs.running == 0 and not work.held


def test_runs_in_many_threads_hold_until_the_last_has_ended():
    work = Recorder()
    runs = QuickRuns(work, tail=0.05)
    gate = threading.Barrier(4)

    def visitor(seconds: float) -> None:
        with runs.run():
            gate.wait()
            time.sleep(seconds)

    threads = [threading.Thread(target=visitor, args=(0.1 * (k + 1),)) for k in range(3)]
    for thread in threads:
        thread.start()
    gate.wait()
    assert runs.running == 3
    time.sleep(0.15)  # the first visitor's run has ended
    assert work.held and runs.running == 2
    for thread in threads:
        thread.join()
    wait_until(lambda: not work.held)
    assert [held for _, held in work.calls] == [True, False]  # held once, across all three


def test_work_is_never_held_longer_than_max_hold_then_goes_on_for_free():
    work = Recorder()
    runs = QuickRuns(work, tail=0.05, max_hold=0.3, free=0.2)
    with runs.run():  # a visitor whose runs never end
        time.sleep(1.3)
    wait_until(lambda: not work.held)
    times = [t for t, _ in work.calls]
    kinds = [held for _, held in work.calls]
    assert kinds[:4] == [True, False, True, False]
    assert times[1] - times[0] == pytest.approx(0.3, abs=0.08)  # held at most max_hold
    assert times[2] - times[1] == pytest.approx(0.2, abs=0.08)  # then free for `free`
    assert runs.holds >= 3


def test_costly_work_waits_its_turn_between_pieces_while_a_quick_run_is_in_progress():
    runs = QuickRuns(lambda held: None, tail=0.1)
    started = time.monotonic()
    runs.wait_turn(limit=1.0)  # nothing running: no wait
    assert time.monotonic() - started < 0.05

    def quick_visitor() -> None:
        with runs.run():
            time.sleep(0.3)

    visitor = threading.Thread(target=quick_visitor)
    visitor.start()
    wait_until(lambda: runs.running == 1)
    started = time.monotonic()
    runs.wait_turn(limit=2.0)  # until the quick run has ended, and its page has been drawn
    assert time.monotonic() - started == pytest.approx(0.3 + 0.1, abs=0.1)
    assert runs.running == 0
    visitor.join()

    with runs.run():  # a quick run that does not end while the costly work waits
        started = time.monotonic()
        runs.wait_turn(limit=0.2)  # never longer than the limit
        assert time.monotonic() - started == pytest.approx(0.2, abs=0.1)


def test_a_costly_grid_in_pieces_with_a_hook_is_the_grid_in_one_piece():
    import flowviz
    from flowviz.explorer import base_density_on_grid
    from flowviz.flow import Flow
    from flowviz.grid import Pieces, evaluate_flow, in_pieces
    from flowviz.spec import parse_spec

    spec = parse_spec(
        {
            "base": {
                "type": "mixture",
                "components": [{"mean": [-1, 0]}, {"mean": [1, 1]}],
                "weights": [0.3, 0.7],
            },
            "layers": [
                {"type": "planar", "w": [2.0, 0.5], "u": [0.8, 0.1]},
                {"type": "rotation", "degrees": 25.0},
            ],
            "view": {"resolution": 300},
        }
    )
    whole = flowviz.evaluate(spec)
    flow = Flow.from_spec(spec)
    calls = []
    token = in_pieces.set(Pieces(10_000, lambda: calls.append(1)))
    try:
        pieces = evaluate_flow(flow, spec["view"])
        base = base_density_on_grid(flow, spec["view"])
    finally:
        in_pieces.reset(token)
    pieces_expected = -(-(300 * 300) // 10_000)
    assert len(calls) == 2 * (pieces_expected - 1)  # the grid's terms, then the base density
    for name in ("density", "log_density", "base_log_prob", "log_det_inverse", "log_det_forward"):
        np.testing.assert_allclose(pieces[name], whole[name], rtol=1e-12, atol=1e-300, err_msg=name)
    assert base.shape == (300, 300)


def test_lowered_runs_its_work_at_trainings_priority_and_then_goes_back():
    import os

    from flowviz.ui.fairness import HEAVY_NICE, lowered

    seen = {}

    def work() -> None:
        thread = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, thread)
        with lowered(False):
            seen["not lowered"] = os.getpriority(os.PRIO_PROCESS, thread)
        with lowered():
            seen["inside"] = os.getpriority(os.PRIO_PROCESS, thread)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, thread)

    worker = threading.Thread(target=work)  # a thread of its own: the test's keeps its priority
    worker.start()
    worker.join()
    assert seen["before"] == 0 and seen["not lowered"] == 0
    assert seen["inside"] == HEAVY_NICE
    if os.geteuid() == 0:  # only a privileged process may raise a priority again
        assert seen["after"] == 0


def test_only_a_flow_that_is_not_costly_has_its_sliders_made_ready_before_a_drag():
    from bench.support import worst_valid_specs
    from flowviz.presets import default_spec
    from flowviz.spec import parse_spec
    from flowviz.ui.drag_slider import FrameSource, LineFrameSource
    from flowviz.ui.fairness import HEAVY_WORK, grid_work

    plain = parse_spec(default_spec())
    assert grid_work(plain) <= HEAVY_WORK
    assert FrameSource(plain, ("layers", 0, "w", 0)).made_ready
    for name, spec in worst_valid_specs().items():
        spec = parse_spec(spec)
        assert grid_work(spec) > HEAVY_WORK, name  # the worst links are all costly
        assert not FrameSource(spec, ("view", "resolution")).made_ready, name
    assert LineFrameSource(("uniform", {}), ("affine", {}), "map", ("a",)).made_ready
