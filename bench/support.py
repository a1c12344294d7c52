"""Helpers for the browser tests and benchmarks: a live app on loopback and headless Chromium.

Nothing here is needed to use flowviz; it starts ``streamlit run app.py`` as a
subprocess on a free loopback port and times what a person would see.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'

# A fingerprint of every plotly chart on the page: the images laid under the axes
# and the size of each trace, so "the picture changed" can be detected in the browser.
CHART_FINGERPRINT_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => {
  const images = (g.layout && g.layout.images) ? g.layout.images.map(i => i.source.length + ':' + i.source.slice(-48)) : [];
  const traces = (g.data || []).map(t => (t.z ? t.z.length : 0) + ':' + (t.x ? t.x.length : 0));
  return images.join('|') + '#' + traces.join(',');
})"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(
    port: int | None = None, timeout: float = 60.0, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start ``streamlit run app.py`` on loopback (``env``: more environment variables); return the
    process and its base URL."""
    port = port or free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        **(env or {}),
    }
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"streamlit did not answer on {url}/_stcore/health within {timeout:.0f} s")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Debian's chromium is needed: apt-get install -y chromium")
    return path


def wait_idle(page, timeout: float = 30_000) -> None:
    page.wait_for_selector(IDLE, timeout=timeout)


def chart_fingerprints(page) -> list[str]:
    return page.evaluate(CHART_FINGERPRINT_JS)


def time_slider_key(
    page,
    slider,
    key: str,
    before: list[str],
    timeout: float = 20_000,
    every: bool = True,
    fingerprint_js: str = CHART_FINGERPRINT_JS,
) -> float:
    """Milliseconds from a key press on a focused slider until every chart (or, with
    ``every=False``, some chart) shows new data and the script is idle again.
    ``before``: the charts' fingerprints before the press, by ``fingerprint_js``."""
    page.evaluate("before => { window.__fvBefore = before; }", before)
    start = time.perf_counter()
    slider.press(key)
    changed = "every" if every else "some"
    page.wait_for_function(
        "() => { const now = (" + fingerprint_js + ")();"
        " const app = document.querySelector('[data-testid=\"stApp\"]');"
        " return app && app.getAttribute('data-test-script-state') === 'notRunning'"
        " && now.length === window.__fvBefore.length && now.length > 0"
        f" && now.{changed}((v, k) => v !== window.__fvBefore[k]); }}",
        polling="raf",
        timeout=timeout,
    )
    return (time.perf_counter() - start) * 1e3


def worst_valid_specs() -> dict[str, dict]:
    """The largest valid spec along each of the spec's limits, each at the finest grid it may ask
    for: the cases the stated time budget is measured on (tests and bench/worst_case.py)."""
    from flowviz import spec as limits

    def spline(bins: int) -> dict:
        return {
            "type": "spline",
            "widths": [1] * bins,
            "heights": [1] * bins,
            "derivatives": [1] * (bins - 1),
        }

    def piecewise(knots: int) -> dict:
        return {
            "type": "piecewise_linear",
            "knots": [0.1 * k for k in range(knots)],
            "slopes": [1] * (knots + 1),
        }

    count = limits.MAX_MIXTURE_COMPONENTS
    ring = [
        [2 * math.cos(2 * math.pi * i / count), 2 * math.sin(2 * math.pi * i / count)] for i in range(count)
    ]
    mixture = {"type": "mixture", "components": [{"mean": m, "cov": [[0.1, 0], [0, 0.1]]} for m in ring]}
    gaussian = {"type": "gaussian"}
    rotation = {"type": "rotation", "degrees": 10}
    slow_planar = {"type": "planar", "w": [30, 0], "u": [-0.0333333, 0], "b": 0.3}  # the most Newton steps
    layers, bins, knots = limits.MAX_LAYERS, limits.MAX_SPLINE_BINS, limits.MAX_KNOTS
    specs = {
        "plain, largest grid": {"base": gaussian, "layers": [rotation]},
        f"mixture of {count}": {"base": mixture, "layers": [rotation]},
        f"{layers} splines of {bins} bins": {"base": gaussian, "layers": [spline(bins)] * layers},
        f"{layers} piecewise of {knots} knots": {"base": gaussian, "layers": [piecewise(knots)] * layers},
        f"{layers} slow planar": {"base": gaussian, "layers": [slow_planar] * layers},
        "everything at once": {"base": mixture, "layers": [spline(bins)] * layers},
    }
    for spec in specs.values():
        finest = limits.max_resolution(limits.parse_spec({**spec, "view": {"resolution": 2}}))
        spec["view"] = {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0], "resolution": finest}
    return specs


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


# Watches one picture of a chart at every animation frame, and the values a slider passes, so
# a drag can be judged by what was painted (see ``drag_slider``). The picture: a named layout
# image of a live chart ({"kind": "image", "chart": LABEL, "name": NAME}) or the data of the
# trace with a given meta in the page's first plotly chart ({"kind": "trace", "meta": META}).
_PICTURE_JS = """
const __fvPicture = (target) => {
  if (target.kind === 'image') {
    const host = Array.from(document.querySelectorAll('div.flowviz-live-chart'))
      .find(h => h.getAttribute('aria-label') === target.chart);
    if (!host || !host._fullLayout || !host.__flowvizSources) return null;
    return { host, shown: () => {
      const k = (host.layout.images || []).findIndex(i => i.name === target.name);
      const els = host.__flowvizImageEls;
      const el = els && els[k];
      return el ? (el.getAttribute('href') || '') : (k >= 0 ? host.layout.images[k].source : '');
    } };
  }
  const find = () => document.querySelector('[data-testid="stMain"] .js-plotly-plot');
  if (!find() || !find().data) return null;
  return { get host() { return find() || document.body; }, shown: () => {
    const gd = find();  // Streamlit may swap in a new chart element on a run
    const trace = ((gd && gd.data) || []).find(t => t.meta === target.meta);
    return trace ? __fvTraceKey(trace.x) : '';
  } };
};
const __fvInput = (label) => Array.from(document.querySelectorAll('input[type=range]')).find(i => {
  if (i.labels && i.labels[0] && i.labels[0].textContent === label) return true;  // the project's own
  const box = i.closest('[data-testid="stSlider"]');  // Streamlit's
  const text = box && box.querySelector('[data-testid="stWidgetLabel"]');
  return !!text && text.textContent.trim() === label;
}) || null;
// Where a slider's thumb is at fraction 0 and 1 of its range, and at what height.
const __fvTrack = (label) => {
  const input = __fvInput(label);
  const box = input.closest('[data-testid="stSlider"]');
  if (!box) {  // a native range: the thumb's centre runs half a thumb (16 px) in from each end
    const r = input.getBoundingClientRect();
    return { left: r.x + 8, width: r.width - 16, y: r.y + r.height / 2 };
  }
  const bar = box.querySelector('[data-testid="stSliderTickBar"]').getBoundingClientRect();
  const thumb = input.parentElement.parentElement.getBoundingClientRect();
  return { left: bar.x, width: bar.width, y: thumb.y + thumb.height / 2 };
};
// The strips the page holds for a slider (those of its drag companion; every strip where it has none).
const __fvStrips = (label) => {
  const all = Array.from((window.__flowvizStrips || new Map()).values());
  const root = Array.from(document.querySelectorAll('div.flowviz-slider-companion'))
    .find(r => r.__fv && r.__fv.data && r.__fv.data.attach === label);
  return root ? all.filter(s => s.id === root.__fv.data.strip_id) : all;
};
// plotly's JSON arrays may come as {dtype, bdata} (base64 of the raw numbers): read them as numbers
const __fvNumbers = (x) => {
  if (!x || x.bdata === undefined) return x;
  const raw = atob(x.bdata), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const typed = { f4: Float32Array, f8: Float64Array, i4: Int32Array, u1: Uint8Array }[x.dtype];
  return typed ? new typed(bytes.buffer) : x;
};
const __fvTraceKey = (x) => (x = __fvNumbers(x)) ? Array.from(x).slice(0, 12).map(v => Number(v).toPrecision(9)).join(',') + ':' + x.length
  + ':' + Array.from(x).reduce((a, b) => a + Number(b), 0).toPrecision(12) : '';
const __fvFrameKey = (target, frame) => target.kind === 'image' ? frame.images[target.name]
  : (frame.traces && frame.traces[target.meta] ? __fvTraceKey(frame.traces[target.meta].x) : undefined);
"""

_MOTION_READY_JS = "(target) => {" + _PICTURE_JS + " return __fvPicture(target) !== null; }"

_MOTION_RECORDER_JS = (
    "([target, slider]) => {"
    + _PICTURE_JS
    + """
  const picture = __fvPicture(target);
  if (!picture || !__fvInput(slider)) return false;
  if (window.__fvMotion) window.__fvMotion.stop = true;
  const rec = { painted: [], passed: [], down: null, up: null, stop: false, target, slider };
  window.__fvMotion = rec;
  let last = picture.shown();
  rec.painted.push({ t: performance.now(), href: last, spacing: 0 });
  let value = Number(__fvInput(slider).value);
  const tick = () => {
    if (rec.stop) return;
    const input = __fvInput(slider);  // (Streamlit's own slider sends no input events while dragged)
    if (input && rec.down !== null && rec.up === null && Number(input.value) !== value) {
      value = Number(input.value);
      rec.passed.push({ t: performance.now(), v: value });
    }
    const now = picture.shown();
    if (now !== last) {
      last = now;
      rec.painted.push({ t: performance.now(), href: now,
                         spacing: Number(picture.host.dataset.previewSpacing || 0) });
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  window.addEventListener('pointerdown', () => {  // the sweep starts where the thumb is grabbed
    if (rec.down !== null) return;
    rec.down = performance.now();
    rec.passed.push({ t: rec.down, v: value });
  }, true);
  window.addEventListener('pointerup', () => { if (rec.up === null) rec.up = performance.now(); }, true);
  return true;
}"""
)

_MOTION_SETTLED_JS = (
    "() => {"
    + _PICTURE_JS
    + """
  const rec = window.__fvMotion; if (!rec || rec.up === null) return false;
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const frames = new Set();
  __fvStrips(rec.slider).forEach(s => s.frames.forEach(f => frames.add(__fvFrameKey(rec.target, f))));
  const last = rec.painted[rec.painted.length - 1];
  const previewed = rec.painted.some(p => p.t >= rec.down && frames.has(p.href));
  // the exact picture, painted after the button went up (or no preview to replace)
  return !frames.has(last.href) && (last.t >= rec.up || !previewed);
}"""
)

_MOTION_RESULT_JS = (
    "() => {"
    + _PICTURE_JS
    + """
  const rec = window.__fvMotion;
  const frames = new Map();  // a strip frame's picture -> its value
  __fvStrips(rec.slider).forEach(strip => strip.frames.forEach(f => {
    const key = __fvFrameKey(rec.target, f);
    if (key !== undefined) frames.set(key, f.value);
  }));
  const painted = rec.painted.map(p => {
    const value = frames.has(p.href) ? frames.get(p.href) : null;
    const before = rec.passed.filter(q => q.t <= p.t).map(q => q.v);
    // the frame shown is that of a value inside the thumb's sweep so far (to half a frame's spacing)
    const passed = value !== null && before.length > 0 &&
      value >= Math.min(...before) - p.spacing / 2 - 1e-9 && value <= Math.max(...before) + p.spacing / 2 + 1e-9;
    return { t: p.t, frame: value, passed, href: p.href.length + ':' + p.href.slice(-40) };
  });
  return { painted, passed: rec.passed, down: rec.down, up: rec.up };
}"""
)


APPROACH_PX = 60  # from above a slider's label down to its track


def strip_held(page, slider_label: str) -> list[float]:
    """The values whose frames the page holds for the slider's strip, in order."""
    script = "(label) => {" + _PICTURE_JS + " return __fvStrips(label).flatMap(s => s.values); }"
    return sorted(page.evaluate(script, slider_label))


def drag_slider(
    page,
    slider_label: str,
    target: dict,
    start: float,
    end: float,
    duration_ms: float = 2000.0,
    settle_timeout: float = 20_000,
    approach_ms: float = 0.0,
) -> dict:
    """Drag a slider's thumb with the mouse from fraction ``start`` to ``end`` of its track over
    ``duration_ms``, watching the picture ``target`` (see ``_PICTURE_JS``) at every animation frame.

    Returns ``fps`` (distinct pictures painted per second while the button was down),
    ``frames`` (how many), ``matched`` (whether each was the strip frame of a value inside
    the thumb's sweep so far), ``first_frame_ms`` (button down to the first new picture),
    ``release_ms`` (button up to the first picture that is no strip frame: the exact one),
    ``value`` (where the thumb was let go) and ``passed`` (input events seen).
    ``approach_ms``: the pointer first comes down onto the thumb from ``APPROACH_PX`` above the
    track (over the slider's label) in that time; 0: it jumps onto the thumb and presses at once.
    """
    slider = page.get_by_role("slider", name=slider_label)
    page.wait_for_function(_MOTION_READY_JS, arg=target, timeout=settle_timeout)
    if not page.evaluate(_MOTION_RECORDER_JS, [target, slider_label]):
        raise RuntimeError(f"no picture {target!r} or slider {slider_label!r} on the page")
    track = page.evaluate("(label) => {" + _PICTURE_JS + " return __fvTrack(label); }", slider_label)
    left, width, y = track["left"], track["width"], track["y"]
    if approach_ms > 0:  # as a hand does: into the slider from above, onto the thumb, then press
        above = y - APPROACH_PX
        page.mouse.move(left + start * width, above)
        begin = time.perf_counter()
        while (elapsed := (time.perf_counter() - begin) * 1e3) < approach_ms:
            page.mouse.move(left + start * width, above + APPROACH_PX * elapsed / approach_ms)
    page.mouse.move(left + start * width, y)
    page.mouse.down()
    begin = time.perf_counter()
    while (elapsed := (time.perf_counter() - begin) * 1e3) < duration_ms:
        page.mouse.move(left + (start + (end - start) * elapsed / duration_ms) * width, y)
    page.mouse.move(left + end * width, y)
    page.mouse.up()
    page.wait_for_function(_MOTION_SETTLED_JS, polling="raf", timeout=settle_timeout)
    page.wait_for_timeout(300)  # a run that was about to start after the release
    wait_idle(page)
    record = page.evaluate(_MOTION_RESULT_JS)
    page.evaluate("() => { window.__fvMotion.stop = true; }")
    down, up = record["down"], record["up"]
    during = [p for p in record["painted"][1:] if down <= p["t"] <= up]
    after = [p for p in record["painted"] if p["t"] > up and p["frame"] is None]
    distinct = {p["href"] for p in during}
    return {
        "fps": len(distinct) / ((up - down) / 1e3),
        "frames": len(distinct),
        "matched": all(p["passed"] for p in during),
        "first_frame_ms": (during[0]["t"] - down) if during else None,
        "release_ms": after[0]["t"] - up if after else None,
        "value": float(slider.input_value()),
        "passed": len(record["passed"]),
    }
