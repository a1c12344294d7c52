"""A plotly chart that stays mounted and redraws in place.

``st.plotly_chart`` gives each new figure a new element, so the browser throws
the old chart away and builds a new one from scratch on every slider move
(about 170 ms of plotly.js work for the Explorer's four panels on these
machines). This component keeps one chart per key and hands each new figure to
``Plotly.react``, which redraws only what changed (here, the images and lines)
and keeps the person's zoom. It uses the plotly.js that ships with the plotly
Python package, served once from the app's static folder.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import plotly
import streamlit as st

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "static"
PLOTLY_SOURCE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_FILE = f"plotly-{plotly.__version__}.min.js"

# plotly.js loaded once per page, shared by every component that draws with it
LOAD_PLOTLY_JS = """
function loadPlotly(url) {
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
"""

_JS = (
    LOAD_PLOTLY_JS
    + """
// What must match for a new figure to be drawn by swapping images alone: everything but
// the image sources and the data of "lazy" traces (hover layers).
function skeleton(figure) {
  const layout = Object.assign({}, figure.layout, {
    images: (figure.layout.images || []).map((image) => Object.assign({}, image, { source: null })),
  });
  const data = figure.data.map((trace) => (trace.meta === "lazy" ? Object.assign({}, trace, { z: null }) : trace));
  return JSON.stringify({ data, layout });
}

function hrefOf(element) {
  return element.getAttribute("href") || element.getAttributeNS("http://www.w3.org/1999/xlink", "href");
}

// Which <image> element draws which layout image: plotly draws them in order, so the
// k-th image takes the first element not yet taken that shows its source.
function imageElements(host, sources) {
  const cached = host.__flowvizImageEls;
  if (cached && cached.length === sources.length &&
      cached.every((element, k) => element && element.isConnected && hrefOf(element) === sources[k])) {
    return cached;
  }
  const free = Array.from(host.querySelectorAll("image"));
  const mapped = sources.map((source) => {
    const n = free.findIndex((element) => hrefOf(element) === source);
    return n < 0 ? null : free.splice(n, 1)[0];
  });
  host.__flowvizImageEls = mapped;
  return mapped;
}

// Swap the images in place: no plotly pipeline, the browser just decodes and paints.
// Returns false when the chart's images cannot be matched (then plotly redraws it).
function swapImages(host, figure) {
  const old = host.__flowvizSources;
  const fresh = (figure.layout.images || []).map((image) => image.source);
  const elements = imageElements(host, old);
  if (elements.some((element) => element === null)) return false;
  fresh.forEach((source, k) => {
    if (source === old[k]) return;
    elements[k].setAttribute("href", source);
    elements[k].setAttributeNS("http://www.w3.org/1999/xlink", "href", source);
    // plotly remembers what each <image> shows (and skips setting a source it set last time):
    // it must know of this one, or a later plotly draw of the previous source leaves this one up
    elements[k]._imgSrc = source;
    host.layout.images[k].source = source;
    if (host._fullLayout && host._fullLayout.images[k]) host._fullLayout.images[k].source = source;
  });
  host.__flowvizSources = fresh;
  return true;
}

// Show other pictures in the named layout images of a chart at once (a slider's preview
// frames while its thumb moves): {name: source}. The next figure from Python replaces them.
window.flowvizShowImages = function (host, byName) {
  if (!host || !host._fullLayout || !host.__flowvizSources) return false;
  const images = host.layout.images || [];
  const fresh = host.__flowvizSources.map((source, k) => {
    const name = images[k] && images[k].name;
    return name && byName[name] !== undefined ? byName[name] : source;
  });
  const swapped = swapImages(host, { layout: { images: fresh.map((source) => ({ source })) } });
  if (swapped) host.__flowvizPreviewed = true;
  return swapped;
};

// Colour bars that say what a slider's preview frame means: its pictures are coloured on their
// own range ({trace name: [low, high]}), so each tick label of a bar becomes the value at its
// place for that range, in the SVG plotly drew (a plotly call would recompute the whole figure,
// tens of ms a frame). null: plotly's own labels again. The next figure drawn puts them back too.
const SI = { k: 1e3, M: 1e6, G: 1e9, B: 1e9, T: 1e12, m: 1e-3, "\u03bc": 1e-6, "\u00b5": 1e-6, n: 1e-9 };

function tickValue(text) {  // plotly's tick text ("\u22123", "0.05", "5k") as a number, or NaN
  const plain = (text || "").replace(/\u2212/g, "-").trim();
  const unit = SI[plain.slice(-1)];
  return unit ? Number(plain.slice(0, -1)) * unit : Number(plain);
}

function tickText(value, span) {
  if (Math.abs(value) < span * 1e-9) return "0";
  return String(Number(value.toPrecision(3))).replace("-", "\u2212");
}

window.flowvizColourBarLimits = function (host, limits) {
  if (!host || !host._fullData) return;
  if (!limits) {
    if (!host.__flowvizRelabelled) return;
    host.__flowvizRelabelled = false;
    host.querySelectorAll("g.colorbar g.cbaxis text").forEach((text) => {
      const own = text.getAttribute("data-unformatted");
      if (own !== null && text.textContent !== own) text.textContent = own;
    });
    return;
  }
  host._fullData.forEach((trace) => {
    const wanted = limits[trace.name];
    const low = trace.zmin;
    const high = trace.zmax;
    if (!trace.showscale || !wanted || !(high > low)) return;
    const bar = host.querySelector("g.cb" + trace.uid);
    if (!bar) return;
    const span = Math.abs(wanted[1] - wanted[0]) || 1;
    bar.querySelectorAll("g.cbaxis text").forEach((text) => {
      const drawn = tickValue(text.getAttribute("data-unformatted"));
      if (!Number.isFinite(drawn)) return;
      const label = tickText(wanted[0] + ((drawn - low) / (high - low)) * (wanted[1] - wanted[0]), span);
      if (text.textContent !== label) text.textContent = label;
    });
    host.__flowvizRelabelled = true;
  });
};

// A chart whose traces were changed in place (a slider's preview frames, restyled): its data is
// no longer its figure's, so the next figure, even the same one, is drawn by plotly anew.
window.flowvizRestyled = function (host) {
  host.__flowvizPreviewed = true;
  host.__flowvizSkeleton = null;
};

// Hover layers follow a moment later, once the person pauses.
function refreshLazy(Plotly, host, figure) {
  clearTimeout(host.__flowvizLazy);
  host.__flowvizLazy = setTimeout(() => {
    const indices = [];
    const zs = [];
    figure.data.forEach((trace, k) => {
      if (trace.meta === "lazy") { indices.push(k); zs.push(trace.z); }
    });
    if (indices.length) Plotly.restyle(host, { z: zs }, indices);
  }, 250);
}

// A figure may carry a one-column variant for narrow charts (layout.meta.narrow, made by
// flowviz.plots.explore): on a phone, panels side by side would shrink to stamps.
function fitWidth(host, figure) {
  const narrow = figure.layout.meta && figure.layout.meta.narrow;
  if (!narrow || host.clientWidth >= narrow.below) return null;
  Object.entries(narrow.layout).forEach(([name, axis]) => Object.assign(figure.layout[name], axis));
  Object.entries(narrow.colorbars).forEach(([k, bar]) => { figure.data[Number(k)].colorbar = bar; });
  figure.layout.height = narrow.height;
  return narrow.height;
}

// Plotly measures its container when it first draws: a chart drawn before the page has laid
// its column out (width 0) gets NaN sizes, which the browser reports as broken SVG paths.
function laidOut(host) {
  if (host.clientWidth > 0) return Promise.resolve();
  return new Promise((resolve) => {
    const observer = new ResizeObserver(() => {
      if (host.clientWidth > 0) { observer.disconnect(); resolve(); }
    });
    observer.observe(host);
  });
}

export default function (component) {
  const { data, parentElement } = component;
  let host = parentElement.querySelector("div.flowviz-live-chart");
  if (!host) {
    host = document.createElement("div");
    host.className = "flowviz-live-chart";
    host.style.width = "100%";
    parentElement.appendChild(host);
  }
  host.style.height = (host.__flowvizNarrowHeight || data.height) + "px";
  host.setAttribute("aria-label", data.label);
  host.setAttribute("role", "img");
  // the same figure again: nothing to do, unless a slider's preview frames replaced its
  // pictures and were let go at a value that changed nothing (or one the spec refuses)
  if (host.__flowvizFigure === data.figure && !(host.__flowvizPreviewed && !window.__flowvizDragging)) return;
  host.__flowvizFigure = data.figure;
  host.__flowvizPreviewed = false;
  Promise.all([loadPlotly(data.script), laidOut(host)]).then(([Plotly]) => {
    if (host.__flowvizFigure !== data.figure) return;  // a newer figure has arrived meanwhile
    const figure = JSON.parse(data.figure);
    host.__flowvizNarrowHeight = fitWidth(host, figure);
    host.style.height = (host.__flowvizNarrowHeight || data.height) + "px";
    const shape = skeleton(figure);
    window.flowvizColourBarLimits(host, null);  // plotly's labels, before plotly compares them
    if (host.__flowvizSkeleton === shape && host._fullLayout && swapImages(host, figure)) {
      refreshLazy(Plotly, host, figure);
      host.__flowvizDrawn = data.figure;  // the figure on screen (what tests wait for)
      return;
    }
    clearTimeout(host.__flowvizLazy);
    return Plotly.react(host, figure.data, figure.layout, data.config).then(() => {
      host.__flowvizSkeleton = shape;
      host.__flowvizSources = (figure.layout.images || []).map((image) => image.source);
      host.__flowvizDrawn = data.figure;
    });
  }).catch((error) => {
    host.textContent = "The chart could not be drawn: " + error.message;
  });
}
"""
)

_component = st.components.v2.component("flowviz.live_chart", js=_JS, isolate_styles=False)


_DTYPES = {"float32": "f4", "float64": "f8", "int32": "i4", "int64": "i8", "uint8": "u1"}


def _plain(value):
    """plotly's JSON form: NumPy arrays as base64 typed arrays, which plotly.js decodes natively."""
    if isinstance(value, np.ndarray):
        code = _DTYPES.get(value.dtype.name)
        if code is None:
            return value.tolist()
        array = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        typed = {"dtype": code, "bdata": base64.b64encode(array.tobytes()).decode("ascii")}
        if array.ndim > 1:
            typed["shape"] = ",".join(str(n) for n in array.shape)
        return typed
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def figure_json(figure: dict) -> str:
    """Compact JSON of a figure dict (several times faster than plotly.io for image-heavy figures)."""
    return json.dumps(_plain(figure), separators=(",", ":"), allow_nan=False)


_ASSET_LOCK = threading.Lock()


def ensure_plotly_asset() -> str:
    """Copy the installed plotly.js into the app's static folder (once); return its URL path."""
    target = STATIC_DIR / PLOTLY_FILE
    with _ASSET_LOCK:
        if not target.exists():
            STATIC_DIR.mkdir(exist_ok=True)
            # a name of this process's own, then an atomic rename: a second server starting
            # from the same folder never sees half a file
            partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
            shutil.copyfile(PLOTLY_SOURCE, partial)
            partial.replace(target)
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(part for part in (base, "app/static", PLOTLY_FILE) if part)


def live_chart(figure: dict, key: str, height: int, label: str, config: dict | None = None) -> None:
    """Draw ``figure`` (plotly's JSON form) in a chart that stays mounted under ``key``."""
    _component(
        key=key,
        data={
            "figure": figure_json(figure),
            "height": height,
            "label": label,
            "config": {"responsive": True, **(config or {})},
            "script": ensure_plotly_asset(),
            # new in every run, so the browser sees each run's figure even when it is the same
            # (a slider's preview may have to be replaced by it)
            "run": time.monotonic_ns(),
        },
    )
