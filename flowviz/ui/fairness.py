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
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from flowviz.spec import MAX_GRID_WORK, point_cost

HEAVY_WORK = MAX_GRID_WORK / 4  # beyond the plainest flows on a 512² grid, the live range
HEAVY_NICE = 10  # as training runs: a person at a slider (nice 0) still comes well first


def grid_work(spec: Mapping) -> float:
    """The work of the spec's grid: its points times what the flow costs at each."""
    return point_cost(spec) * spec["view"]["resolution"] ** 2


def _set_priority(nice: int) -> None:
    try:
        thread = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, thread) != nice:
            os.setpriority(os.PRIO_PROCESS, thread, nice)
    except (AttributeError, OSError):  # not Linux, or not allowed to raise a priority again
        pass


def yield_if_heavy(spec: Mapping) -> bool:
    """Lower this script thread's priority for a costly grid (and raise it back for a light
    one where the system allows); returns whether the run now yields to the others."""
    heavy = grid_work(spec) > HEAVY_WORK
    _set_priority(HEAVY_NICE if heavy else 0)
    return heavy
