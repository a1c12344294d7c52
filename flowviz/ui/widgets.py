"""The editor's widgets: keyed sliders that keep their value, the exact-values switch, compact tables.

A widget's key starts with the spec's generation, so a new flow (a preset, a link)
starts every widget afresh; within one flow the person owns each value.
"""

from __future__ import annotations

import copy
import threading

import pandas as pd
import streamlit as st

from flowviz.strips import has_number
from flowviz.ui import state
from flowviz.ui.drag_slider import FrameSource, drag_preview


def key(*parts) -> str:
    """A widget key: the spec generation, then the parts (layer id, field path)."""
    return "fv" + str(state.generation()) + "." + ".".join(str(p) for p in parts)


def init(widget_key: str, value) -> str:
    """Seed a widget's value once; afterwards the widget (the person) owns it."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = value
    return widget_key


# Values of widgets that outlive a visit to another page, kept apart from the widgets themselves:
# Streamlit forgets the state of a widget that a run does not draw.
KEPT = "fv_kept"


def kept(widget_key: str, value) -> str:
    """Seed a widget with its kept value (``value`` the first time); ``remember`` it once drawn."""
    return init(widget_key, st.session_state.get(KEPT, {}).get(widget_key, value))


def remember(*widget_keys: str) -> None:
    """Keep these widgets' values for when the page is drawn again (see ``kept``)."""
    store = st.session_state.setdefault(KEPT, {})
    for widget_key in widget_keys:
        store[widget_key] = copy.copy(st.session_state[widget_key])


EXACT = "fv_exact"  # session key of the "Type exact values" toggle
LIMITS = "fv_widget_limits"  # the limits each slider was last drawn with


def keep_value(widget_key: str, limits: tuple, value) -> None:
    """Keep a widget's value when its limits (or its kind) change.

    Streamlit makes a keyed slider a new widget when its minimum, maximum or step
    change (radial β's lower limit follows α; the probe's range follows the view),
    and a new widget starts from its minimum. So when the limits differ from last
    time, hand the widget its value explicitly.
    """
    ss = st.session_state
    seen = ss.setdefault(LIMITS, {})
    if len(seen) > 4096:  # keys of earlier flows (generations) pile up: forget them
        seen.clear()
    if widget_key in ss and seen.get(widget_key, limits) != limits:
        ss[widget_key] = value
    seen[widget_key] = limits


def slider(
    label: str,
    value: float,
    low: float,
    high: float,
    step: float,
    widget_key: str,
    help: str = "",
    path: tuple | None = None,
) -> float:
    """A float slider whose range widens to include a value that came from a link or file.

    With "Type exact values" on, the same control is a number box (same key, so the value
    carries over both ways), with the same limits. ``path``: where the number lives in the
    spec; given, the Explorer's pictures follow the thumb while it is dragged, once
    ``drag_previews`` is called with the spec the run draws.
    """
    ss = st.session_state
    if widget_key not in ss:
        ss[widget_key] = float(value)
    current = float(ss[widget_key])
    low, high = float(min(low, current)), float(max(high, current))
    exact = bool(ss.get(EXACT))
    keep_value(widget_key, (low, high, float(step), exact), current)
    if exact:
        return float(
            st.number_input(
                label, low, high, step=float(step), format="%g", key=widget_key, help=help or None
            )
        )
    chosen = float(st.slider(label, low, high, step=float(step), key=widget_key, help=help or None))
    if path is not None:
        _waiting().append((label, low, high, float(step), widget_key, tuple(path)))
    return chosen


# The sliders drawn in this run whose pictures follow a drag, waiting for the spec they change:
# the one the editor makes of all its controls once every one of them is drawn. (A slider's frames
# vary its own number in that spec; drawn from the spec the run started with, they would show the
# flow without the change that started the run, and keep showing it until the next run.)
_PREVIEWS = threading.local()  # each visitor's run has a thread of its own


def _waiting() -> list:
    if not hasattr(_PREVIEWS, "waiting"):
        _PREVIEWS.waiting = []
    return _PREVIEWS.waiting


def drag_previews(spec: dict | None) -> None:
    """The drag previews of the sliders drawn since the last call, for ``spec`` (the flow the
    pictures show now; None: none, they are forgotten); anywhere on the page: each finds its
    slider by its label."""
    waiting = list(_waiting())
    _PREVIEWS.waiting = []
    if spec is None:
        return
    ss = st.session_state
    for label, low, high, step, widget_key, path in waiting:
        if not has_number(spec, path):  # not in the spec yet (e.g. a coupling term still zero)
            continue
        frames = FrameSource(
            spec,
            path,
            log_scale=bool(ss.get("fv_log", False)),
            lines=not ss.get("fv_samples_on", False),  # samples ride on the same overlay: leave it be
        )
        drag_preview(label, low, high, step, widget_key, frames)


def range_slider(
    label: str, value: tuple, reach: float, step: float, widget_key: str, help: str = ""
) -> tuple[float, float]:
    """A (low, high) slider over [-reach, reach], widened to hold a value that came from a link or file."""
    ss = st.session_state
    if widget_key not in ss:
        ss[widget_key] = (float(value[0]), float(value[1]))
    current = tuple(float(v) for v in ss[widget_key])
    low, high = min(-reach, current[0]), max(reach, current[1])
    keep_value(widget_key, (low, high, step), current)
    chosen = st.slider(label, low, high, step=step, key=widget_key, help=help or None)
    return float(chosen[0]), float(chosen[1])


def exact_values_toggle() -> None:
    st.toggle(
        "Type exact values",
        key=init(EXACT, False),
        help="Number boxes instead of sliders: type a value and press Enter. The limits stay the same.",
    )


TABLE_ROWS_SHOWN = 10
TABLE_ROW_PX = 35


def table(columns: dict[str, list], widget_key: str, **column_config) -> dict[str, list[float]]:
    """One compact table for a long list of numbers (spline bins, knots, components).

    A single widget whatever the number of rows, so the editor's time does not grow
    with the count; rows are fixed (the count has its own control). Each edit is
    applied to the values it was drawn from, so drawing it again from the edited
    spec changes nothing. A cleared cell reads NaN, which the spec refuses by name.
    """
    rows = len(next(iter(columns.values())))
    edited = st.data_editor(
        pd.DataFrame(columns, dtype=float),
        key=widget_key,
        num_rows="fixed",
        hide_index=True,
        width="stretch",
        height=TABLE_ROW_PX * (min(rows, TABLE_ROWS_SHOWN) + 1) + 3,  # a few rows, then it scrolls
        column_config={
            name: st.column_config.NumberColumn(name, **{"format": "%.4g", "width": "small", **config})
            for name, config in column_config.items()
        },
    )
    return {name: [float(v) for v in edited[name]] for name in columns}
