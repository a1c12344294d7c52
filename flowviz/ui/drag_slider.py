"""A slider whose pictures follow the thumb while it is dragged.

Streamlit's slider sends its value only when the thumb is let go, so a drag shows
nothing until the end. This one is a native range input (``role="slider"``, its
visible label as accessible name, one step per arrow key, a finger drag on a
phone) in a component of the project's own:

- a key press, or letting the thumb go, sends the exact value to Python at once;
  the page reruns and draws the exact pictures, as with any widget;
- grabbing the thumb asks Python once for a *frame strip* of the slider's
  parameter (``flowviz.strips``: the flow evaluated by the core at a preview
  resolution for values along the whole range, colour-mapped by the figure's own
  code); while the thumb moves, the frame nearest its value is shown in the
  chart's pictures, with no round trip. The browser keeps the strips it has, so
  the next drag of the same slider (nothing else changed) needs none.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field

import streamlit as st

from flowviz.strips import (
    ALIASES,
    PREVIEW_RESOLUTION,
    STRIP_LEVELS,
    explorer_strip,
    line_strip,
    spec_with,
    strip_chunk,
)
from flowviz.ui.live_chart import ensure_plotly_asset

EXPLORER_CHART = "Base and pushed-forward densities, volume change"  # the main chart's accessible name

_CSS = """
.flowviz-slider { font-family: inherit; padding: 0 2px 2px 2px; }
.flowviz-slider-head { display: flex; justify-content: space-between; align-items: baseline; gap: 8px;
  font-size: 14px; line-height: 1.4; color: inherit; min-height: 1.4em; }
.flowviz-slider-head label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.flowviz-slider-head > span:first-child { display: flex; align-items: baseline; min-width: 0; }
.flowviz-slider-help { margin-left: 6px; cursor: help; font-size: 10px; line-height: 13px; width: 13px;
  height: 13px; border: 1px solid currentColor; border-radius: 50%; text-align: center; opacity: 0.5;
  flex: none; align-self: center; }
.flowviz-slider-value { color: #ff4b4b; font-variant-numeric: tabular-nums; font-size: 14px; white-space: nowrap; }
.flowviz-slider input[type=range] { width: 100%; margin: 4px 0 0 0; accent-color: #ff4b4b;
  touch-action: none; cursor: pointer; height: 22px; }
.flowviz-slider-note { position: absolute; top: 45%; left: 0; right: 0; text-align: center; font-size: 15px;
  color: #333; pointer-events: none; }
.flowviz-slider-ends { display: flex; justify-content: space-between; font-size: 12px; opacity: 0.6;
  font-variant-numeric: tabular-nums; }
"""

_JS = """
// id -> {level, values, frames}: the chunks of a strip received so far, merged in value order
const STRIPS = window.__flowvizStrips || (window.__flowvizStrips = new Map());
const KEEP = 16;  // strips kept in the page (a whole one is a few MB)

function remember(chunk) {
  const known = STRIPS.get(chunk.id);
  if (known && known.level >= chunk.level) return;
  const merged = (known ? known.frames : []).concat(chunk.frames).sort((a, b) => a.value - b.value);
  STRIPS.delete(chunk.id);
  STRIPS.set(chunk.id, {
    id: chunk.id, level: chunk.level, aliases: chunk.aliases,
    frames: merged, values: merged.map((frame) => frame.value),
  });
  while (STRIPS.size > KEEP) STRIPS.delete(STRIPS.keys().next().value);
}

function best(id) {
  return STRIPS.get(id) || null;
}

function decimals(step) {
  const text = String(step);
  return text.includes("e-") ? Number(text.split("e-")[1]) : (text.split(".")[1] || "").length;
}

function chartNamed(name) {
  return Array.from(document.querySelectorAll("div.flowviz-live-chart"))
    .find((host) => host.getAttribute("aria-label") === name) || null;
}

function loadPlotly(url) {  // the plotly.js the live charts use, loaded once per page
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__flowvizPlotly) {
    window.__flowvizPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = new URL(url, window.location.origin).href;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { window.__flowvizPlotly = null; reject(new Error("plotly.js did not load")); };
      document.head.appendChild(script);
    });
  }
  return window.__flowvizPlotly;
}

function spacing(values) {  // the widest gap between neighbouring frames
  let gap = 0;
  for (let k = 1; k < values.length; k++) gap = Math.max(gap, values[k] - values[k - 1]);
  return gap;
}

function nearest(values, value) {
  let best = 0;
  for (let k = 1; k < values.length; k++) {
    if (Math.abs(values[k] - value) < Math.abs(values[best] - value)) best = k;
  }
  return best;
}

// The Explorer: a frame is pictures, swapped into the live chart's named layout images.
const IMAGES = {
  find: (target) => chartNamed(target.chart),
  show(state, host, frame, strip) {
    if (!window.flowvizShowImages) return false;
    const images = Object.assign({}, frame.images);
    Object.entries(strip.aliases || {}).forEach(([alias, name]) => {
      if (images[name] !== undefined) images[alias] = images[name];
    });
    if (!state.originals) {  // what the chart showed before the drag, to restore if nothing changes
      state.originals = {};
      (host.layout.images || []).forEach((image) => {
        if (image.name && images[image.name] !== undefined) state.originals[image.name] = image.source;
      });
    }
    return window.flowvizShowImages(host, images);
  },
  restore(state, host) {
    if (window.flowvizShowImages) window.flowvizShowImages(host, state.originals);
  },
  stale: () => false,  // the live chart puts its own figure back after every run
};

// The 1D page: a frame is the data of the traces a parameter moves (found by their meta),
// restyled in Streamlit's plotly chart; the others (interval, probe, histogram) wait hidden.
const TRACES = {
  find: () => document.querySelector('[data-testid="stMain"] .js-plotly-plot'),
  show(state, gd, frame) {
    if (!window.Plotly || !gd.data) return false;
    const traces = frame.traces || {};
    const indices = gd.data.map((_, k) => k);
    if (!state.originals) {
      state.originals = { indices, x: [], y: [], "marker.color": [], visible: [] };
      gd.data.forEach((trace) => {
        state.originals.x.push(trace.x);
        state.originals.y.push(trace.y);
        state.originals["marker.color"].push(trace.marker ? trace.marker.color : undefined);
        state.originals.visible.push(trace.visible === undefined ? true : trace.visible);
      });
    }
    const moved = (trace) => trace.meta && traces[trace.meta];
    const update = {
      x: gd.data.map((trace) => (moved(trace) ? traces[trace.meta].x : undefined)),
      y: gd.data.map((trace) => (moved(trace) ? traces[trace.meta].y : undefined)),
      "marker.color": gd.data.map((trace) => (moved(trace) ? traces[trace.meta]["marker.color"] : undefined)),
      visible: gd.data.map((trace) => (moved(trace) ? true : false)),
    };
    window.Plotly.restyle(gd, update, indices);
    state.shownArrays = gd.data.map((trace) => trace.x);
    gd.__flowvizDrag = state;
    if (!gd.__flowvizWatched && gd.on) {
      // A run during the drag (the one bringing a strip) redraws Streamlit's chart from its
      // figure: put the frame under the thumb back at once, before anything is painted.
      gd.__flowvizWatched = true;
      gd.on("plotly_afterplot", () => {
        const drag = gd.__flowvizDrag;
        if (drag && drag.dragging && drag.shownArrays &&
            gd.data.some((trace, k) => trace.meta && trace.x !== drag.shownArrays[k])) {
          drag.frame = -1;
          preview(drag);
        }
      });
    }
    note(gd, frame.invertible === false ? "Not valid here: " + frame.reason : "");
    return true;
  },
  restore(state) {
    const gd = TRACES.find();
    if (!gd) return;
    if (window.Plotly && gd.data) window.Plotly.restyle(gd, state.originals, state.originals.indices);
    note(gd, "");
  },
  // still showing a preview after Python's run: its figure did not change (refused, or the same)
  stale(state) {
    const gd = TRACES.find();
    return !!gd && !!state.shownArrays && !!gd.data &&
      gd.data.some((trace, k) => trace.meta && trace.x === state.shownArrays[k]);
  },
};

function note(gd, text) {  // a line over the chart where a frame has no curves
  const holder = gd.parentElement;
  let box = holder.querySelector(".flowviz-slider-note");
  if (!text) { if (box) box.remove(); return; }
  if (!box) {
    box = document.createElement("div");
    box.className = "flowviz-slider-note";
    holder.style.position = "relative";
    holder.appendChild(box);
  }
  box.textContent = text;
}

const KINDS = { images: IMAGES, traces: TRACES };

// The frame of the value nearest the thumb, in the chart (once per animation frame).
function preview(state) {
  state.pending = 0;
  const data = state.data;
  const strip = data.strip_id ? best(data.strip_id) : null;
  const kind = data.target ? KINDS[data.target.kind] : null;
  // (Streamlit may swap in a new plotly chart element on a run: find it each time)
  const host = kind ? kind.find(data.target) : null;
  if (!strip || !host) return;
  const k = nearest(strip.values, Number(state.input.value));
  if (strip === state.strip && k === state.frame) return;
  state.strip = strip;
  state.host = host;
  if (kind.show(state, host, strip.frames[k], strip)) {
    state.frame = k;
    host.dataset.previewValue = String(strip.frames[k].value);
    host.dataset.previewSpacing = String(spacing(strip.values));
  }
}

// Ask Python for the next finer strip of this slider (none yet: the coarse one), once each.
function ask(state) {
  const id = state.data.strip_id;
  if (!id) return;
  const known = best(id);
  const level = known ? known.level + 1 : 0;
  if (level >= state.data.levels || state.requested === id + "/" + level) return;
  state.requested = id + "/" + level;
  state.send("grab", { id, level });  // the strip comes with the next render
}

function restore(state) {
  const kind = state.data.target ? KINDS[state.data.target.kind] : null;
  if (kind && state.originals && state.host) kind.restore(state, state.host);
  forget(state);
}

// After a release, once Python's run is over: a chart still showing the preview gets its own back.
function settle(state) {
  const kind = state.data.target ? KINDS[state.data.target.kind] : null;
  if (!kind || !state.host) return;
  const started = performance.now();
  let seenRun = false;
  const check = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    const running = app && app.getAttribute("data-test-script-state") === "running";
    seenRun = seenRun || running;
    if (state.dragging || !state.host) return;
    if ((seenRun && !running) || performance.now() - started > 3000) {
      if (kind.stale(state, state.host)) restore(state); else forget(state);
      return;
    }
    setTimeout(check, 50);
  };
  setTimeout(check, 50);
}

function forget(state) {
  if (state.host) {
    delete state.host.dataset.previewValue;
    delete state.host.dataset.previewSpacing;
  }
  state.originals = null;
  state.host = null;
  state.strip = null;
  state.shownArrays = null;
  state.frame = -1;
}

function showValue(state) {
  state.readout.textContent = Number(state.input.value).toFixed(decimals(state.data.step));
  state.input.setAttribute("aria-valuenow", state.input.value);
}

function build(parentElement) {
  const root = document.createElement("div");
  root.className = "flowviz-slider";
  const id = "flowviz-slider-" + Math.random().toString(36).slice(2);
  root.innerHTML =
    '<div class="flowviz-slider-head"><span><label></label></span><span class="flowviz-slider-value"></span></div>' +
    '<input type="range"><div class="flowviz-slider-ends"><span></span><span></span></div>';
  const input = root.querySelector("input");
  const label = root.querySelector("label");
  input.id = id;
  label.htmlFor = id;
  const state = {
    input, label, readout: root.querySelector(".flowviz-slider-value"),
    ends: root.querySelectorAll(".flowviz-slider-ends span"),
    dragging: false, pending: 0, frame: -1, strip: null, hover: 0, hovered: false, originals: null, host: null,
    committed: null, lastData: null, requested: null, data: null, send: null,
  };
  root.__fv = state;
  const grab = () => {
    state.dragging = true;
    window.__flowvizDragging = true;
    ask(state);
  };
  const letGo = () => {
    if (!state.dragging) return;
    state.dragging = false;
    state.requested = null;  // a chunk whose run was cut short is asked for again next time
    window.__flowvizDragging = false;
    if (state.pending) { cancelAnimationFrame(state.pending); state.pending = 0; }
    if (Number(input.value) === state.committed) restore(state);
  };
  input.addEventListener("pointerdown", grab);
  // A mouse on its way to the thumb: ask for the coarse strip now, so the round trip is
  // over (or nearly) when the button goes down.
  // (After a moment's rest, so a pointer passing over many sliders asks for nothing.)
  input.addEventListener("pointerenter", (event) => {
    if (event.pointerType === "touch") return;
    clearTimeout(state.hover);
    state.hover = setTimeout(() => { state.hovered = true; ask(state); }, 60);
  });
  input.addEventListener("pointerleave", () => { clearTimeout(state.hover); state.hovered = false; });
  window.addEventListener("pointerup", letGo);
  window.addEventListener("pointercancel", letGo);
  input.addEventListener("input", () => {
    showValue(state);
    if (state.dragging && !state.pending) state.pending = requestAnimationFrame(() => preview(state));
  });
  // A key press, or the thumb let go at a new value: the exact value goes to Python at once.
  input.addEventListener("change", () => {
    const value = Number(input.value);
    if (value === state.committed) return;
    state.committed = value;
    state.send("value", value);
    settle(state);  // the exact pictures replace the preview (or, if none come, the old ones)
  });
  parentElement.appendChild(root);
  return root;
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector("div.flowviz-slider") || build(parentElement);
  const state = root.__fv;
  state.data = data;
  state.send = setTriggerValue;
  if (data.strip) {
    remember(data.strip);
    if (state.dragging || state.hovered) ask(state);  // the next chunk, while the thumb is near
    if (state.dragging) {  // and the frame under the thumb now
      if (!state.pending) state.pending = requestAnimationFrame(() => preview(state));
    }
  }
  const input = state.input;
  state.label.textContent = data.label;
  const help = root.querySelector(".flowviz-slider-help");
  if (data.help && !help) {
    const mark = document.createElement("span");
    mark.className = "flowviz-slider-help";
    mark.textContent = "?";
    mark.setAttribute("aria-hidden", "true");
    state.label.after(mark);
  }
  if (data.target && data.target.script) loadPlotly(data.target.script).catch(() => {});
  const mark = root.querySelector(".flowviz-slider-help");
  if (mark) mark.title = data.help || "";
  input.min = String(data.min);
  input.max = String(data.max);
  input.step = String(data.step);
  input.setAttribute("aria-valuemin", String(data.min));
  input.setAttribute("aria-valuemax", String(data.max));
  state.ends[0].textContent = Number(data.min).toFixed(decimals(data.step));
  state.ends[1].textContent = Number(data.max).toFixed(decimals(data.step));
  // Python's value wins when it changed there (a link, a preset, a moved limit); a value
  // this slider has just sent is Python's too once it comes back.
  if (data.value !== state.lastData && !state.dragging) {
    input.value = String(data.value);
    state.committed = Number(input.value);
  }
  state.lastData = data.value;
  if (!state.dragging && state.committed === null) state.committed = Number(input.value);
  showValue(state);
}
"""

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
        return {"kind": "images", "chart": self.chart}

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
        return {"kind": "traces", "script": ensure_plotly_asset()}

    def strip_id(self, limits: tuple[float, float, float]) -> str:
        setting = [list(self.base), list(self.fmap)]
        side = 0 if self.part == "base" else 1
        setting[side][1] = spec_with(setting[side][1], self.path, 0.0)
        return _strip_id(setting, self.part, list(self.path), limits)

    def strip(self, values: tuple[float, ...]) -> list[dict]:
        return line_strip(self.base, self.fmap, self.part, self.path, values)


def snap(value: float, low: float, high: float, step: float) -> float:
    """The slider position nearest ``value``: on a step from ``low``, inside [low, high]."""
    position = low + round((float(value) - low) / step) * step
    return float(round(min(max(position, low), high), 10))


def _sent(drag_key: str, name: str):
    state = st.session_state.get(drag_key)
    if state is None:
        return None
    return state.get(name) if hasattr(state, "get") else getattr(state, name, None)


def _adopt(widget_key: str, drag_key: str, low: float, high: float, step: float) -> None:
    value = _sent(drag_key, "value")
    if value is not None:
        st.session_state[widget_key] = snap(value, low, high, step)


def _want(drag_key: str, want_key: str) -> None:
    st.session_state[want_key] = _sent(drag_key, "grab")


def drag_slider(
    label: str,
    low: float,
    high: float,
    step: float,
    widget_key: str,
    help: str = "",
    frames: FrameSource | LineFrameSource | None = None,
) -> float:
    """A float slider over [low, high] whose value lives in ``st.session_state[widget_key]``."""
    ss = st.session_state
    drag_key, want_key = widget_key + ".drag", widget_key + ".want"
    data = {
        "label": label,
        "min": low,
        "max": high,
        "step": step,
        "value": float(ss[widget_key]),
        "help": help,
        "target": None,
        "strip_id": None,
    }
    if frames is not None:
        strip_id = frames.strip_id((low, high, step))
        data.update(target=frames.target, strip_id=strip_id, levels=len(STRIP_LEVELS))
        wanted = ss.pop(want_key, None)
        if isinstance(wanted, dict) and wanted.get("id") == strip_id:
            level = min(max(int(wanted.get("level", 0)), 0), len(STRIP_LEVELS) - 1)
            values = strip_chunk(low, high, step, level)
            data["strip"] = {
                "id": strip_id,
                "level": level,
                "values": list(values),
                "frames": frames.strip(values),
                "aliases": ALIASES,
            }
    _component(
        key=drag_key,
        data=data,
        on_value_change=functools.partial(_adopt, widget_key, drag_key, low, high, step),
        on_grab_change=functools.partial(_want, drag_key, want_key),
    )
    return float(ss[widget_key])
