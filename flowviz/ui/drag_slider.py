"""Pictures that follow a slider's thumb while it is dragged.

Streamlit's slider moves its thumb while dragged but sends the value only when it
is let go, so until then the pictures stand still. Beside each slider of a flow's
parameters sits this component (invisible, no control of its own: the slider keeps
its label, its keyboard and everything else it does):

- once the page has been still for a moment, each slider's component in turn asks for
  the first chunk of its strip (the values nearest its thumb), at low priority; when the
  pointer rests on the slider, or grabs it, the component asks Python for
  a *frame strip* of the slider's parameter (``flowviz.strips``: the flow evaluated
  by the core at a preview resolution for values along the whole range, drawn by the
  figure's own code), in chunks, the values the thumb is about to pass first;
- while the thumb moves, it shows the frame nearest the thumb's value in the chart
  (the Explorer's live chart images, or the 1D figure's curves), with no round trip;
- when the thumb is let go, Streamlit sends the value, the page reruns and the exact
  pictures replace the preview (or, where nothing changed, the old ones come back).

The browser keeps the strips it has: the next drag of the same slider (nothing else
changed) needs no run at all.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from flowviz.strips import (
    ALIASES,
    PREVIEW_RESOLUTION,
    STRIP_FRAMES,
    STRIP_LEVELS,
    chunk_lead,
    explorer_strip,
    line_strip,
    shared_base_images,
    spec_with,
    strip_chunk,
    strip_values,
)
from flowviz.ui import fairness
from flowviz.ui.live_chart import LOAD_PLOTLY_JS, ensure_plotly_asset

EXPLORER_CHART = "Base and pushed-forward densities, volume change"  # the main chart's accessible name
MASS_LABEL = "Mass in view"  # the Explorer's readout of the mass the window holds (a metric's label)
CONDITION_KEY = "fv_condition"  # the container of the selected layer's condition line (planar's w·u)
SETTING_KEY = "fv1d_setting"  # the 1D page's container of its base and map as formulas

_CSS = """
.flowviz-slider-companion { height: 0; overflow: hidden; }
[data-testid="stElementContainer"]:has(.flowviz-slider-companion) { display: none; }
.flowviz-dimmed { opacity: 0.3; transition: opacity 0.1s; }
.flowviz-slider-note { position: absolute; top: 45%; left: 0; right: 0; text-align: center; font-size: 15px;
  color: #333; pointer-events: none; }
"""

# The component's code, with the live chart's loader of plotly.js put in where it says so.
_JS = (Path(__file__).with_name("drag_slider.js").read_text(encoding="utf-8")).replace(
    "// {LOAD_PLOTLY_JS}\n", LOAD_PLOTLY_JS
)

_component = st.components.v2.component("flowviz.drag_slider", js=_JS, css=_CSS, isolate_styles=False)


def _strip_id(*parts) -> str:
    key = json.dumps([*parts, PREVIEW_RESOLUTION], separators=(",", ":"), sort_keys=True)
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class FrameSource:
    """The Explorer's frames: the spec, the number's place in it, the chart they are shown in."""

    spec: dict = field(hash=False)
    path: tuple
    chart: str = EXPLORER_CHART
    log_scale: bool = False
    lines: bool = True

    @property
    def target(self) -> dict:
        # and the words a frame changes beside the pictures (see strips.frame_readouts): where they are
        return {
            "kind": "images",
            "chart": self.chart,
            "readouts": {"mass": MASS_LABEL, "condition": CONDITION_KEY},
        }

    @property
    def made_ready(self) -> bool:
        """Whether the page asks for the first chunk before any drag: not for a costly flow,
        whose visitor's page already yields to everybody else's."""
        return fairness.grid_work(self.spec) <= fairness.HEAVY_WORK

    def strip_id(self, limits: tuple[float, float, float]) -> str:
        """Names the strips by everything they depend on (not the number's current value)."""
        spec = spec_with(self.spec, self.path, 0.0)
        return _strip_id(spec, list(self.path), limits, self.log_scale, self.lines)

    def strip(self, values: tuple[float, ...]) -> list[dict]:
        return explorer_strip(self.spec, self.path, values, self.log_scale, self.lines)


@dataclass(frozen=True)
class LineFrameSource:
    """The 1D page's frames: its base and map (kind, parameters), the number's place in one of them."""

    base: tuple = field(hash=False)
    fmap: tuple = field(hash=False)
    part: str  # "base" or "map"
    path: tuple

    @property
    def target(self) -> dict:
        # the formulas of the setting stay those of the released value: dimmed while a frame shows
        return {"kind": "traces", "script": ensure_plotly_asset(), "dim": [SETTING_KEY]}

    made_ready = True  # a few curves: cheap

    def strip_id(self, limits: tuple[float, float, float]) -> str:
        setting = [list(self.base), list(self.fmap)]
        side = 0 if self.part == "base" else 1
        setting[side][1] = spec_with(setting[side][1], self.path, 0.0)
        return _strip_id(setting, self.part, list(self.path), limits)

    def strip(self, values: tuple[float, ...]) -> list[dict]:
        return line_strip(self.base, self.fmap, self.part, self.path, values)


def _sent(drag_key: str, name: str):
    state = st.session_state.get(drag_key)
    if state is None:
        return None
    return state.get(name) if hasattr(state, "get") else getattr(state, name, None)


def _number(value, low: float, high: float) -> float:
    """A number the browser sent, inside [low, high] (the middle where it is none)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return (low + high) / 2
    return min(max(number, low), high) if math.isfinite(number) else (low + high) / 2


def _finite(value) -> float:
    """A finite number the browser sent (0 where it sent none)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return float(value)


def _numbers(values, limit: int) -> list[float]:
    """The finite numbers of a list the browser sent (none where it is not a short list)."""
    if not isinstance(values, list) or len(values) > limit:
        return []
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _want(drag_key: str, want_key: str) -> None:
    st.session_state[want_key] = _sent(drag_key, "grab")


def drag_preview(
    label: str, low: float, high: float, step: float, widget_key: str, frames: FrameSource | LineFrameSource
) -> None:
    """Previews for Streamlit's own slider ``label`` (drawn just before, under ``widget_key``):
    its thumb's value is followed while dragged, the slider itself sends it when let go.

    A fragment: asking for the next chunk of a strip reruns this component alone, not the page.
    """
    _warm(type(frames).__name__, frames, _number(st.session_state.get(widget_key), low, high))
    _companion(label, low, high, step, widget_key, frames)


_WARMED: set[str] = set()
_WARMING = threading.Lock()


def _warm(kind: str, frames: FrameSource | LineFrameSource, value: float) -> None:
    """Once per server process and kind of frames: one frame made in the background, so that
    the first strip anybody asks for does not also pay the core's first-call costs (about
    0.4 s: torch's first calls of each operation, the PNG encoder)."""
    with _WARMING:
        if kind in _WARMED:
            return
        _WARMED.add(kind)

    def one_frame() -> None:
        try:
            frames.strip((value,))
        except Exception:  # a warm-up: the strip asked for later says what is wrong
            return

    threading.Thread(target=one_frame, name=f"flowviz-warm-{kind}", daemon=True).start()


@st.fragment
@fairness.quick
def _companion(
    label: str, low: float, high: float, step: float, widget_key: str, frames: FrameSource | LineFrameSource
) -> None:
    ss = st.session_state
    drag_key, want_key = widget_key + ".drag", widget_key + ".want"
    strip_id = frames.strip_id((low, high, step))
    data = {
        "attach": label,
        "target": frames.target,
        "strip_id": strip_id,
        "levels": STRIP_LEVELS,
        "low": low,
        "high": high,
        "count": len(strip_values(low, high, step)),
        "ready": frames.made_ready,
    }
    wanted = ss.pop(want_key, None)
    if isinstance(wanted, dict) and wanted.get("id") == strip_id:
        level = wanted.get("level")
        level = level if isinstance(level, int) and 0 <= level < STRIP_LEVELS else 0
        at = _number(wanted.get("at"), low, high)
        heading = wanted.get("heading") if wanted.get("heading") in (-1, 0, 1) else 0
        have = _numbers(wanted.get("have"), limit=2 * STRIP_FRAMES)
        # aimed where the thumb will be when the chunk arrives: the page measured its speed
        # (units a second) and the last chunk's round trip (seconds)
        speed = _finite(wanted.get("speed"))
        lead = chunk_lead(level, speed, _finite(wanted.get("lag"))) if speed * heading > 0 else 0.0
        values = strip_chunk(low, high, step, level, at, heading, have, lead)
        # made ready before any drag (the page was still): nobody waits for it, so it is no
        # quick run and its thread yields to everybody else's
        ready = wanted.get("ready") is True
        if ready:
            fairness.QUICK_RUNS.not_quick()
        with fairness.lowered(ready):
            made = frames.strip(values)
        bases = shared_base_images(made)  # p_Z once per colour range, not once per frame
        data["strip"] = {"id": strip_id, "level": level, "aliases": ALIASES, "bases": bases, "frames": made}
    _component(key=drag_key, data=data, on_grab_change=functools.partial(_want, drag_key, want_key))
