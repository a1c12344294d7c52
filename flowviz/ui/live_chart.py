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

import shutil
from pathlib import Path

import plotly
import plotly.io as pio
import streamlit as st

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "static"
PLOTLY_SOURCE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_FILE = f"plotly-{plotly.__version__}.min.js"

_JS = """
function loadPlotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__flowvizPlotly) {
    window.__flowvizPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = new URL(url, document.baseURI).href;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { window.__flowvizPlotly = null; reject(new Error("plotly.js did not load")); };
      document.head.appendChild(script);
    });
  }
  return window.__flowvizPlotly;
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
  host.style.height = data.height + "px";
  host.setAttribute("aria-label", data.label);
  host.setAttribute("role", "img");
  if (host.__flowvizFigure === data.figure) return;
  host.__flowvizFigure = data.figure;
  loadPlotly(data.script).then((Plotly) => {
    if (host.__flowvizFigure !== data.figure) return;  // a newer figure has arrived meanwhile
    const figure = JSON.parse(data.figure);
    return Plotly.react(host, figure.data, figure.layout, data.config);
  }).catch((error) => {
    host.textContent = "The chart could not be drawn: " + error.message;
  });
}
"""

_component = st.components.v2.component("flowviz.live_chart", js=_JS, isolate_styles=False)


def ensure_plotly_asset() -> str:
    """Copy the installed plotly.js into the app's static folder (once); return its URL path."""
    target = STATIC_DIR / PLOTLY_FILE
    if not target.exists():
        STATIC_DIR.mkdir(exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copyfile(PLOTLY_SOURCE, partial)
        partial.replace(target)
    return f"app/static/{PLOTLY_FILE}"


def live_chart(figure: dict, key: str, height: int, label: str, config: dict | None = None) -> None:
    """Draw ``figure`` (plotly's JSON form) in a chart that stays mounted under ``key``."""
    _component(
        key=key,
        data={
            "figure": pio.to_json(figure, validate=False),
            "height": height,
            "label": label,
            "config": {"responsive": True, **(config or {})},
            "script": ensure_plotly_asset(),
        },
    )
