"""Training beside a server: a Trainer in a separate, lower-priority process, supervised."""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from flowviz.errors import SpecError
from flowviz.flow import Flow
from flowviz.train.loop import Progress, TrainConfig, Trainer
from flowviz.train.model import ModelConfig, TrainedModel, build_model, check_trainable

# Each training process holds 350-400 MB (torch, the data, the model): a server trains at
# most this many at once, whoever asks.
MAX_TRAINING_PROCESSES = 3
EXIT_UNTENDED = 3  # a training process's exit status when nothing reached it for its heartbeat timeout


def _seconds_from_environment(name: str, default: float, least: float) -> float:
    """A number of seconds a server's operator may set (a bad or missing value: the default)."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return max(least, value) if math.isfinite(value) else default


# How long a training run outlives its page's session (a reload or a closed tab): FLOWVIZ_TRAINING_GRACE_S.
OWNER_GRACE = _seconds_from_environment("FLOWVIZ_TRAINING_GRACE_S", 20.0, least=1.0)


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
            _lower_priority(job._process.pid, job.nice)
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

    def hold(self, held: bool) -> None:
        """Hold every training process (``held``), or let them all go on."""
        with self._lock:
            jobs = list(self._jobs)
        for job in jobs:
            job.hold(held)


_SUPERVISOR = _Supervisor()


def hold_training(held: bool) -> None:
    """Hold this server's training processes while ``held`` (SIGSTOP), or let them go on (SIGCONT).

    A held process uses no processor at all, whatever its priority; its training clock
    leaves the held time out, so a run given seconds still gets them. The server holds
    training while other visitors' pages run (flowviz.ui.fairness), a few hundred ms at a time.
    """
    _SUPERVISOR.hold(held)


atexit.register(hold_training, False)  # a held process left behind could never end itself


def training_processes() -> int:
    """How many training processes this server runs now."""
    return _SUPERVISOR.running()


def _lower_priority(pid: int, nice: int | None) -> None:
    """Give process ``pid`` (0: this one) the nice value ``nice`` (``None``: leave it as it is).

    The operating system then prefers every page and browser. The server lowers the process
    the moment it starts, before it spends seconds importing torch. (Not the idle scheduling
    class: measured, it did not make other visitors' sliders faster, and on a busy machine it
    can hold a run back indefinitely, even its exit.)
    """
    if nice is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # gone already, or not allowed
        os.setpriority(os.PRIO_PROCESS, pid, nice)


def _child_main(
    points,
    model: ModelConfig,
    train: TrainConfig,
    connection,
    nice: int | None,
    idle_exit: float,
    abandon_after: float,
    heartbeat_timeout: float = math.inf,
    figures: bool = False,
    held_seconds=None,
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
    With ``figures``, each answer while the model can still change also holds the live
    pictures (:func:`flowviz.trained_views.live_figures`), made here rather than in the server.
    ``held_seconds``: a shared number, the seconds the server has held this process so far
    (:meth:`TrainingProcess.hold`), left out of the training clock.
    """
    _lower_priority(0, nice)  # done by the server already; again in case it could not
    torch.set_num_threads(1)
    state, error, sent = "running", None, 0
    drawn: tuple[int | None, dict | str | None] = (None, None)  # the step last drawn, its pictures
    trainer = None
    try:
        trainer = Trainer(points, model, train)
        if held_seconds is not None:
            trainer.clock = lambda: time.perf_counter() - held_seconds.value
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
                    report = _report(trainer, state, error, records)
                    if figures and trainer is not None and state in ("running", "paused"):
                        if drawn[0] != trainer.step_count:  # a paused run is not drawn again
                            drawn = (trainer.step_count, _figures(trainer, points))
                        report["figures"] = drawn[1]
                    connection.send(report | {"sequence": sequence})
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
        weights=_arrays(trainer.flow.state_dict()),
        best_weights=None if trainer._best_state is None else _arrays(trainer._best_state),
    )
    return report


def _arrays(state: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """Weights as NumPy copies: pickled as plain bytes. A tensor would go through torch's
    shared-memory hand-over, one socket connection and handshake per tensor, each waiting
    for this busy process's interpreter: tens of milliseconds per answer."""
    return {k: v.detach().cpu().numpy().copy() for k, v in state.items()}


def _figures(trainer: Trainer, points: np.ndarray) -> dict | str:
    """The live pictures, or why they could not be made (training goes on either way)."""
    from flowviz.trained_views import live_figures  # plotly: imported only by a watched run

    try:
        return live_figures(trainer.flow, points, trainer.history, trainer.best_step)
    except Exception as problem:
        return f"{type(problem).__name__}: {problem}"


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
        owner_grace: float = OWNER_GRACE,
        heartbeat_timeout: float = 30.0,
        figures: bool = False,
    ) -> None:
        self.points = check_trainable(points)
        self.model_config = model.check()
        self.config = train.check()
        # the training process's nice value: ``niceness`` above the server's (none if 0)
        self.nice = min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness) if niceness > 0 else None
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        # seconds this process has been held (SIGSTOP) by the server: its clock leaves them out
        self._held_seconds = context.Value("d", 0.0, lock=False)
        self._held_since: float | None = None
        self._hold_lock = threading.Lock()  # not the reading lock: a read may wait on a held process
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
                self.nice,
                idle_exit,
                abandon_after,
                heartbeat_timeout,
                figures,
                self._held_seconds,
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
        self._weights: dict[str, np.ndarray] | None = None
        self._best_weights: dict[str, np.ndarray] | None = None
        # the live pictures of the last answer (with ``figures``), or why they are missing
        self.figures: dict | str | None = None
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

    def hold(self, held: bool) -> None:
        """Hold the process where it is (SIGSTOP), or let it go on (SIGCONT); the held time is
        added to its shared count before it goes on, so its training clock never sees it."""
        with self._hold_lock:
            pid = self._process.pid
            if pid is None or (held == (self._held_since is not None)):
                return
            try:
                if held:
                    os.kill(pid, signal.SIGSTOP)
                    self._held_since = time.monotonic()
                else:
                    self._held_seconds.value += time.monotonic() - self._held_since
                    self._held_since = None
                    os.kill(pid, signal.SIGCONT)
            except (ProcessLookupError, PermissionError):  # ended already
                self._held_since = None

    @property
    def held(self) -> bool:
        return self._held_since is not None

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
        self.hold(False)  # a held process could not end
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
        # it has closed its end of the pipe: its exit code follows, later on a busy machine
        self._process.join(timeout=2.0)
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
        if "figures" in report:
            self.figures = report["figures"]

    def _flow(self, weights: dict[str, np.ndarray] | None) -> Flow | None:
        if self.architecture is None or weights is None:
            return None
        if self._built is not None and self._built[0] is weights:  # no new weights since the last call
            return self._built[1]
        architecture = self.architecture
        # the architecture's config, whose spline bound the trainer chose from the data
        config = ModelConfig.from_dict(architecture["model"])
        flow = build_model(config, architecture["mean"], architecture["scale"]).float()
        flow.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
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
