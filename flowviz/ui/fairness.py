"""One visitor's costly grid must not slow everyone else's sliders.

Streamlit runs each visitor's script in a thread of one server process. A run whose
grid is costly (a link to a fine grid or a heavy flow: up to the spec's work limit)
lowers its own thread's priority (Linux keeps a nice value per thread) to that of
training, so the operating system serves the other visitors' light runs first; its torch work, which
releases the GIL, then uses the time they leave. Training runs in its own process at
nice 10 (flowviz.train), which also makes the pictures of a run being watched
(flowviz.trained_views.live_figures): the page that shows them only forwards them, so
it holds the interpreter lock for a few milliseconds twice a second, not a hundred.
(Lowering that page's thread instead would make things worse: a thread that holds the
lock and waits for a core makes every other visitor's script wait with it.)

Quick runs first. While any visitor's page runs (a slider pressed, a page opened: every
run of the app's script and of a part of a page that reruns alone, but those of a costly
grid, which say so, and of the Train page, whose visitor watches the training), the server holds its training processes (SIGSTOP: no processor at
all, whatever their priority), and lets them go on ``TAIL`` seconds after the last such
run ends (the browser is drawing its answer then). A training run is never held more
than ``MAX_HOLD`` seconds at a time: it then goes on for ``FREE`` seconds at least; its
training clock leaves the held time out. A costly grid is evaluated in pieces of about
``PIECE_WORK`` (about a 30th of the largest grid's work: some 60 ms), and between two
pieces it waits (at most 1 s at a time) while any quick run is in progress, and ``TAIL``
seconds after.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping

from flowviz.grid import Pieces, in_pieces
from flowviz.spec import MAX_GRID_WORK, point_cost

HEAVY_WORK = MAX_GRID_WORK / 4  # beyond the plainest flows on a 512² grid, the live range
PIECE_WORK = MAX_GRID_WORK / 32  # a costly grid's piece: about 60 ms of the 2 s budget
HEAVY_NICE = 10  # as training runs: a person at a slider (nice 0) still comes well first
TAIL = 0.2  # s: training stays held this long after the last quick run (its page is being drawn)
MAX_HOLD = 2.0  # s: the longest training is held at a time
FREE = 0.5  # s: then it goes on at least this long


def grid_work(spec: Mapping) -> float:
    """The work of the spec's grid: its points times what the flow costs at each."""
    return point_cost(spec) * spec["view"]["resolution"] ** 2


def play_ahead(spec: Mapping, frames: int, resolution: int) -> bool:
    """Whether a page may ask for this flow's play strip (``frames`` pictures of ``resolution``²
    points) before Play is pressed: not for a costly grid, nor where the strip's work passes two
    of the largest grids' (about a second of one core)."""
    return grid_work(spec) <= HEAVY_WORK and point_cost(spec) * frames * resolution**2 <= 2 * MAX_GRID_WORK


def _set_priority(nice: int) -> None:
    try:
        thread = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, thread) != nice:
            os.setpriority(os.PRIO_PROCESS, thread, nice)
    except (AttributeError, OSError):  # not Linux, or not allowed to raise a priority again
        pass


@contextlib.contextmanager
def lowered(low: bool = True) -> Iterator[None]:
    """This thread at training's priority for the work inside (where ``low``), then back."""
    if not low:
        yield
        return
    _set_priority(HEAVY_NICE)
    try:
        yield
    finally:
        _set_priority(0)


def yield_if_heavy(spec: Mapping) -> bool:
    """Lower this script thread's priority for a costly grid (and raise it back for a light
    one where the system allows), and count the run as no quick one; returns whether the run
    now yields to the others."""
    heavy = grid_work(spec) > HEAVY_WORK
    _set_priority(HEAVY_NICE if heavy else 0)
    # a costly grid is evaluated in pieces, and waits between them while quick runs go first
    in_pieces.set(
        Pieces(max(256, int(PIECE_WORK / point_cost(spec))), QUICK_RUNS.wait_turn) if heavy else None
    )
    if heavy:
        QUICK_RUNS.not_quick()  # nobody's training waits for this one
    return heavy


class QuickRuns:
    """The runs in progress that other work waits for, and a thread that holds that work
    (``hold(True)``) while any runs, and ``tail`` seconds after, within ``max_hold``/``free``."""

    def __init__(
        self,
        hold: Callable[[bool], None],
        tail: float = TAIL,
        max_hold: float = MAX_HOLD,
        free: float = FREE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hold, self.tail, self.max_hold, self.free, self._clock = hold, tail, max_hold, free, clock
        self._changed = threading.Condition()
        self._running = 0
        self._quiet_at = -float("inf")  # when the last quick run ended
        self._counted = threading.local()
        self._thread: threading.Thread | None = None
        self.holds = 0  # how many times the work was held (for tests and benchmarks)

    @contextlib.contextmanager
    def run(self) -> Iterator[None]:
        """A quick run of this thread, from start to end (unless it says it is costly); a run
        inside another (a part of the page inside the app's script) counts once."""
        depth = getattr(self._counted, "depth", 0)
        if depth == 0:
            with self._changed:
                self._running += 1
                self._counted.value = True
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._govern, name="flowviz-quick-runs", daemon=True
                    )
                    self._thread.start()
                self._changed.notify_all()
        self._counted.depth = depth + 1
        try:
            yield
        finally:
            self._counted.depth = depth
            if depth == 0:
                self.not_quick()

    def not_quick(self) -> None:
        """This thread's run is costly (or over): the others no longer wait for it."""
        if not getattr(self._counted, "value", False):
            return
        with self._changed:
            self._counted.value = False
            self._running -= 1
            if self._running == 0:
                self._quiet_at = self._clock()
            self._changed.notify_all()

    @property
    def running(self) -> int:
        return self._running

    def wait_turn(self, limit: float = 1.0) -> None:
        """For costly work, between two of its pieces: wait while quick runs are in progress
        and ``tail`` seconds after (their pages are being drawn), at most ``limit`` seconds,
        holding no lock the quick runs need."""
        deadline = self._clock() + limit
        with self._changed:
            while True:
                now = self._clock()
                if now >= deadline:
                    return
                if self._running > 0:
                    self._changed.wait(deadline - now)
                elif now < self._quiet_at + self.tail:
                    self._changed.wait(min(deadline, self._quiet_at + self.tail) - now)
                else:
                    return

    def _govern(self) -> None:
        held_since: float | None = None
        free_until = -float("inf")
        with self._changed:
            while True:
                now = self._clock()
                wanted = self._running > 0 or now < self._quiet_at + self.tail
                if held_since is not None and (not wanted or now - held_since >= self.max_hold):
                    self._apply(False)
                    held_since = None
                    free_until = now + self.free if wanted else now
                elif held_since is None and wanted and now >= free_until:
                    self._apply(True)
                    held_since = now
                    self.holds += 1
                if held_since is not None:  # next: the end of the tail or of the longest hold
                    ends = [held_since + self.max_hold]
                    if self._running == 0:
                        ends.append(self._quiet_at + self.tail)
                    timeout = max(min(ends) - now, 0.001)
                elif wanted:
                    timeout = max(free_until - now, 0.001)
                else:
                    timeout = None
                self._changed.wait(timeout)

    def _apply(self, held: bool) -> None:
        try:
            self._hold(held)
        except Exception:  # a process that cannot be held or let go is never this thread's end
            return


def _hold_training(held: bool) -> None:
    from flowviz.train.process import hold_training

    hold_training(held)


QUICK_RUNS = QuickRuns(_hold_training)


def between_pieces() -> None:
    """Between two pieces of a costly run's work: its turn, as between two chunks of its grid."""
    pieces = in_pieces.get()
    if pieces is not None:
        pieces.between()


def quick_run() -> contextlib.AbstractContextManager[None]:
    """Wrap a run of the app's script: while it runs, training waits."""
    return QUICK_RUNS.run()


def quick(function: Callable) -> Callable:
    """A part of a page that reruns alone (a fragment) as a quick run: ``@st.fragment`` over it."""

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        with QUICK_RUNS.run():
            return function(*args, **kwargs)

    return wrapped
