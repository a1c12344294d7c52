"""Whether the browser tab behind this script's session is still there.

A training run belongs to the page that started it. After a reload or a closed
tab, Streamlit drops the old session, and a run it started can no longer be
seen or stopped by anyone: the server's training supervisor asks this callable
and ends such a run (see :class:`flowviz.train.TrainingProcess`).
"""

from __future__ import annotations

from collections.abc import Callable

from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx


def session_alive() -> Callable[[], bool] | None:
    """A callable telling whether this session still has a live browser connection (None outside a server)."""
    context = get_script_run_ctx()
    if context is None or not runtime.exists():
        return None  # AppTest and bare scripts: nobody to watch
    server, session_id = runtime.get_instance(), context.session_id
    return lambda: server.is_active_session(session_id)
