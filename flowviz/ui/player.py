"""Play the flow from p_Z to p_X in the browser: a strip of exact frames, animated at display rate.

The frames (``flowviz.playback``) are computed by the torch core only once the page asks
for them: at Play or a move of the time scrubber, or ahead of them, so that Play starts
at once: when the pointer comes onto Play, or, at low priority, when the player has been
in view with the pointer near it on a still page (no run, no drag, no key in use) for a
moment. Until then the player costs the page a few hundred bytes, so the sliders answer
as fast as without it. The player is a part of the page that reruns alone: asking for
frames reruns it, not the views around it. The component then receives every frame at
once and animates them with ``requestAnimationFrame``: no server round trip per frame,
and no layer math in JavaScript (the browser only shows pictures and draws the lines and
points it was given).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping

import numpy as np
import streamlit as st

from flowviz.memo import array_cache
from flowviz.playback import PLAY_SAMPLES, frame_times
from flowviz.plots.common import DENSITY_SCALE, colour_table, pixel_extent
from flowviz.ui import fairness

PLAYER_KEY = "fv_player"
FRAME_RATE = 30  # frames a second at 1×
AHEAD_SUFFIX = ":ahead"  # ends a request the page made ahead of Play (see ``_asked``)
STAGE_PX = 400  # the picture's side in CSS pixels
FLIP_NOTE = (
    "This layer reverses orientation (det J < 0), and no path of invertible maps leads there from the "
    "identity, since det J would have to pass through 0 on the way: so it flips in one step, halfway."
)

_CSS = """
.fv-play { font-size: 0.95rem; color: inherit; --fv-side: 400px; }
.fv-play-row { display: flex; gap: 0.5rem; align-items: stretch; }
.fv-play-yaxis, .fv-play-bar-ticks { display: flex; flex-direction: column; justify-content: space-between;
  font-size: 0.75rem; color: #555; }
.fv-play-yaxis { width: 2.2rem; text-align: right; }
.fv-play-stage { position: relative; flex: none; width: min(var(--fv-side), calc(100% - 5.5rem)); aspect-ratio: 1;
  border: 1px solid #888; background: #f2f2f2; }
.fv-play-stage img, .fv-play-stage canvas { position: absolute; inset: 0; width: 100%; height: 100%; }
.fv-play-stage img:not([src]) { visibility: hidden; }
.fv-play-placeholder { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  text-align: center; padding: 2rem; color: #333; }
.fv-play-bar { display: flex; gap: 0.35rem; }
.fv-play-bar[hidden] { display: none; }
.fv-play-bar-colours { width: 12px; border: 1px solid #888; }
.fv-play-axis { display: flex; justify-content: space-between; width: min(var(--fv-side), calc(100% - 5.5rem));
  margin-left: 2.7rem;
  font-size: 0.75rem; color: #555; }
.fv-play-now { margin: 0.2rem 0 0 2.7rem; font-size: 1.15rem; font-weight: 600; min-height: 1.6em; }
.fv-play-now span { font-weight: 400; font-size: 0.9rem; color: #555; margin-left: 0.6rem; }
.fv-play-controls { display: flex; gap: 0.7rem; align-items: center; flex-wrap: wrap; margin: 0.3rem 0 0 2.7rem; }
.fv-play-controls button { min-width: 6.5rem; padding: 0.3rem 0.9rem; border-radius: 0.5rem;
  border: 1px solid rgba(49, 51, 63, 0.3); background: #fff; color: #222; font: inherit; cursor: pointer; }
.fv-play-controls button:hover { border-color: #ff4b4b; color: #ff4b4b; }
.fv-play-controls input[type=range] { width: 12rem; accent-color: #ff4b4b; }
.fv-play-controls select { font: inherit; }
.fv-play-status { color: #555; font-size: 0.85rem; }
.fv-play-flip { margin: 0.5rem 0 0 2.7rem; border-left: 3px solid #ff4b4b; padding-left: 0.6rem; }
.fv-play-flip[hidden] { display: none; }
.fv-play-what { margin: 0.5rem 0 0 2.7rem; font-size: 0.85rem; color: #666; }
"""

_JS = """
const AHEAD_SUFFIX = "{AHEAD_SUFFIX}";

function decodeInt16(text) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new Int16Array(bytes.buffer);
}

function build(parent) {
  const uid = Math.random().toString(36).slice(2);
  const root = document.createElement("div");
  root.className = "fv-play";
  root.setAttribute("role", "group");
  root.setAttribute("aria-label", "Play the flow from p_Z to p_X");
  root.innerHTML = `
    <div class="fv-play-row">
      <div class="fv-play-yaxis"><span class="fv-play-y1"></span><span>x₂</span><span class="fv-play-y0"></span></div>
      <div class="fv-play-stage">
        <img alt="The density of the flow at time t, with the carried grid and samples">
        <canvas aria-hidden="true"></canvas>
        <div class="fv-play-placeholder"></div>
      </div>
      <div class="fv-play-bar" hidden>
        <div class="fv-play-bar-colours"></div>
        <div class="fv-play-bar-ticks"><span class="fv-play-top"></span><span class="fv-play-name"></span><span class="fv-play-bottom"></span></div>
      </div>
    </div>
    <div class="fv-play-axis"><span class="fv-play-x0"></span><span>x₁</span><span class="fv-play-x1"></span></div>
    <div class="fv-play-now" aria-live="off"></div>
    <div class="fv-play-controls">
      <button type="button" class="fv-play-button"></button>
      <label for="fv-play-t-${uid}">Flow time t</label>
      <input type="range" id="fv-play-t-${uid}" class="fv-play-scrub" min="0" step="1" value="0">
      <label><input type="checkbox" class="fv-play-loop"> Loop</label>
      <label>Speed <select class="fv-play-speed">
        <option value="0.5">0.5×</option><option value="1" selected>1×</option><option value="2">2×</option>
      </select></label>
      <span class="fv-play-status" role="status"></span>
    </div>
    <p class="fv-play-flip" hidden></p>
    <p class="fv-play-what"></p>`;
  parent.appendChild(root);
  const q = (s) => root.querySelector(s);
  const P = {
    root, img: q("img"), canvas: q("canvas"), placeholder: q(".fv-play-placeholder"), stage: q(".fv-play-stage"),
    now: q(".fv-play-now"), button: q(".fv-play-button"), scrub: q(".fv-play-scrub"), loop: q(".fv-play-loop"),
    speed: q(".fv-play-speed"), status: q(".fv-play-status"), flip: q(".fv-play-flip"), bar: q(".fv-play-bar"),
    what: q(".fv-play-what"),
    data: null, stripId: null, loadedId: null, loadingId: null, frames: null, urls: [], images: [],
    index: 0, playing: false, raf: 0, startTime: 0, startIndex: 0, pending: null, setState: null,
    aheadId: null, inView: false, aheadOnce: false, used: false,
  };
  root.__fvPlayer = P;
  P.button.addEventListener("click", () => (P.playing ? pause(P) : play(P)));
  P.button.addEventListener("pointerenter", () => ahead(P, false));  // a hand on its way to Play
  watchStill(P);
  P.scrub.addEventListener("input", () => {
    const i = Number(P.scrub.value);
    P.used = true;
    if (P.loadedId !== P.stripId) { request(P, { show: i }); return; }
    show(P, i);
    if (P.playing) { P.startIndex = i; P.startTime = performance.now(); }
  });
  P.speed.addEventListener("change", () => {
    if (P.playing) { P.startIndex = P.index; P.startTime = performance.now(); }
  });
  return P;
}

function setButton(P) {
  P.button.textContent = P.playing ? "❚❚ Pause" : "▶ Play";
  P.button.setAttribute("aria-label", P.playing ? "Pause the flow" : "Play the flow from p_Z to p_X");
}

function request(P, what) {
  P.pending = what;
  P.status.textContent = "Computing the frames…";
  ask(P);
}

// Each request is a new value (the strip and a count), so asking again for the same strip is heard too.
function ask(P, early = false) {
  P.asked = (P.asked || 0) + 1;
  P.setState("want", P.stripId + ":" + P.asked + (early ? AHEAD_SUFFIX : ""));
}

// Ahead of Play, once per flow, so that Play starts at once; not for a costly flow (Python says
// which: data.ahead). ``early``: nobody waits for the frames yet, so the server makes them at low
// priority; a pointer coming onto Play is a click on its way, so that request is an ordinary one.
// True where it asked.
function ahead(P, early) {
  if (!P.data || !P.data.ahead || P.aheadId === P.stripId || P.loadedId === P.stripId ||
      P.loadingId === P.stripId || P.pending) return false;
  P.aheadId = P.stripId;
  ask(P, early);
  return true;
}

// The page still (no run, no drag, no key in use, the tab shown) for AHEAD_AFTER ms, the player in
// view and the pointer on or near it: its frames are asked for ahead of Play, for the first flow of
// the page, then only once its visitor has played or scrubbed (each new flow's frames cost up to a
// second of a core and about a MB: not for a page whose player is in view but unused). The pointer
// near the player, not at the sliders: a run made ahead delays the next runs of the page a little.
const AHEAD_AFTER = 800;  // ms
const NEAR_PX = 48;

function pointerNear(element) {  // (where the pointer is: the drag previews' watch of the page's input)
  const at = window.__flowvizReady && window.__flowvizReady.pointer;
  if (!at) return false;
  const r = element.getBoundingClientRect();
  return at.x >= r.left - NEAR_PX && at.x <= r.right + NEAR_PX && at.y >= r.top - NEAR_PX &&
    at.y <= r.bottom + NEAR_PX;
}

function watchStill(P) {
  const seen = window.IntersectionObserver
    ? new IntersectionObserver((entries) => { P.inView = entries.some((e) => e.isIntersecting); })
    : null;
  if (seen) seen.observe(P.stage);
  let stillSince = 0;
  const timer = setInterval(() => {
    if (!P.root.isConnected) {
      clearInterval(timer);
      if (seen) seen.disconnect();
      return;
    }
    const app = document.querySelector('[data-testid="stApp"]');
    const keys = window.__flowvizReady && window.__flowvizReady.keys;
    const still = P.inView && !document.hidden && !keys && !window.__flowvizDragging &&
      app && app.getAttribute("data-test-script-state") === "notRunning";
    const now = performance.now();
    if (!still) { stillSince = 0; return; }
    if (!stillSince) stillSince = now;
    if (now - stillSince >= AHEAD_AFTER && (P.used || !P.aheadOnce) && pointerNear(P.root) && ahead(P, true)) {
      P.aheadOnce = true;
    }
  }, 200);
}

function play(P) {
  P.used = true;
  if (P.loadedId !== P.stripId) { request(P, { play: true }); return; }
  const last = P.frames.n - 1;
  if (P.index >= last) show(P, 0);
  P.playing = true;
  P.startIndex = P.index;
  P.startTime = performance.now();
  setButton(P);
  if (!P.raf) P.raf = requestAnimationFrame((now) => tick(P, now));
}

function pause(P) {
  P.playing = false;
  if (P.raf) cancelAnimationFrame(P.raf);
  P.raf = 0;
  setButton(P);
}

function tick(P, now) {
  P.raf = 0;
  if (!P.playing || !P.root.isConnected || P.loadedId !== P.stripId) { P.playing = false; setButton(P); return; }
  const rate = P.rate * Number(P.speed.value);
  const last = P.frames.n - 1;
  const elapsed = Math.max(0, now - P.startTime) / 1000;
  let i = P.startIndex + Math.floor(elapsed * rate);
  if (i >= last) {
    i = last;
    if (!P.loop.checked) { show(P, last); pause(P); return; }
    // hold the finished flow a moment, then start again from the base
    if (elapsed - (last - P.startIndex) / rate > 0.8) { P.startIndex = 0; P.startTime = now; i = 0; }
  }
  if (i !== P.index) show(P, i);
  P.raf = requestAnimationFrame((t) => tick(P, t));
}

function show(P, i) {
  const F = P.frames;
  P.index = i;
  P.scrub.value = String(i);
  P.img.src = P.urls[i];
  P.root.dataset.frame = String(i);
  const t = F.t[i];
  const label = F.labels[i];
  P.now.innerHTML = "";
  P.now.append(label);
  const small = document.createElement("span");
  small.textContent = `t = ${t.toFixed(2)} of ${F.n_layers}`;
  P.now.append(small);
  P.scrub.setAttribute("aria-valuetext", `t = ${t.toFixed(2)}, ${label}`);
  const layer = F.layer[i];
  P.flip.hidden = !(layer > 0 && F.flips[layer - 1]);
  draw(P, i);
}

function draw(P, i) {
  const F = P.frames;
  const canvas = P.canvas;
  const ratio = window.devicePixelRatio || 1;
  const side = P.stage.clientWidth;
  if (canvas.width !== Math.round(side * ratio)) {
    canvas.width = Math.round(side * ratio);
    canvas.height = Math.round(side * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const [ex0, ex1, ey0, ey1] = F.extent;
  const [qx0, qx1, qy0, qy1] = F.window;
  const W = canvas.width, H = canvas.height;
  const toX = (q) => ((qx0 + (q + 32767) / 65534 * (qx1 - qx0)) - ex0) / (ex1 - ex0) * W;
  const toY = (q) => (ey1 - (qy0 + (q + 32767) / 65534 * (qy1 - qy0))) / (ey1 - ey0) * H;
  // the carried grid: lines split where a point is missing (left the window or float64)
  const L = F.lineData, m = F.lines_per_frame, base = i * m * 2;
  ctx.beginPath();
  let down = false;
  for (let k = 0; k < m; k++) {
    const qx = L[base + 2 * k], qy = L[base + 2 * k + 1];
    if (qx === -32768 || qy === -32768) { down = false; continue; }
    const x = toX(qx), y = toY(qy);
    if (down) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    down = true;
  }
  ctx.strokeStyle = "rgba(255, 255, 255, 0.4)";
  ctx.lineWidth = ratio;
  ctx.stroke();
  // the samples
  const S = F.pointData, n = F.points_per_frame, sb = i * n * 2, r = 1.7 * ratio;
  ctx.beginPath();
  for (let k = 0; k < n; k++) {
    const qx = S[sb + 2 * k], qy = S[sb + 2 * k + 1];
    if (qx === -32768 || qy === -32768) continue;
    const x = toX(qx), y = toY(qy);
    ctx.moveTo(x + r, y);
    ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
  ctx.fillStyle = "rgba(255, 255, 255, 0.9)";
  ctx.fill();
  ctx.strokeStyle = "rgba(0, 0, 0, 0.5)";
  ctx.lineWidth = 0.5 * ratio;
  ctx.stroke();
}

function dropFrames(P) {
  P.urls.forEach((url) => URL.revokeObjectURL(url));
  P.urls = []; P.images = []; P.frames = null; P.loadedId = null;
}

function load(P, data) {
  const F = JSON.parse(data.frames);
  const id = data.strip_id;
  P.loadingId = id;
  const urls = F.png.map((text) => {
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  });
  const images = urls.map((url) => { const image = new Image(); image.src = url; return image; });
  F.lineData = decodeInt16(F.lines);
  F.pointData = decodeInt16(F.points);
  // decode every picture before the first is shown, so that playing only swaps ready pictures
  Promise.all(images.map((image) => image.decode().catch(() => null))).then(() => {
    if (P.stripId !== id || P.loadingId !== id) { urls.forEach((url) => URL.revokeObjectURL(url)); return; }
    dropFrames(P);
    P.frames = F; P.urls = urls; P.images = images; P.loadedId = id; P.loadingId = null;
    P.placeholder.hidden = true;
    P.status.textContent = "";
    P.bar.hidden = false;
    P.root.querySelector(".fv-play-top").textContent = F.tick_top;
    P.root.querySelector(".fv-play-bottom").textContent = F.tick_bottom;
    P.root.querySelector(".fv-play-name").textContent = F.bar_name;
    const pending = P.pending;
    P.pending = null;
    if (pending && pending.show !== undefined) { show(P, Math.min(pending.show, F.n - 1)); return; }
    show(P, Math.min(P.index, F.n - 1));
    if (pending && pending.play) play(P);
  });
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let P = parentElement.querySelector("div.fv-play");
  P = P ? P.__fvPlayer : build(parentElement);
  P.setState = setStateValue;
  P.data = data;
  P.rate = data.rate;
  P.root.style.setProperty("--fv-side", data.stage + "px");
  const ticks = { x0: data.window[0], x1: data.window[1], y0: data.window[2], y1: data.window[3] };
  Object.entries(ticks).forEach(([name, text]) => { P.root.querySelector(".fv-play-" + name).textContent = text; });
  P.root.querySelector(".fv-play-bar-colours").style.background = data.gradient;
  P.what.textContent = data.what;
  P.flip.textContent = data.flip_note;
  P.scrub.max = String(data.n_frames - 1);
  if (data.strip_id !== P.stripId) {
    // another flow: its frames are computed when asked for
    pause(P);
    dropFrames(P);
    P.stripId = data.strip_id;
    P.index = 0;
    P.scrub.value = "0";
    P.img.removeAttribute("src");
    delete P.root.dataset.frame;
    P.canvas.getContext("2d").clearRect(0, 0, P.canvas.width, P.canvas.height);
    P.placeholder.hidden = false;
    P.placeholder.textContent = data.placeholder;
    P.now.textContent = "";
    P.flip.hidden = true;
    P.bar.hidden = true;
    P.status.textContent = P.pending ? "Computing the frames…" : "";
    if (P.pending) ask(P);
  }
  setButton(P);
  if (data.frames && P.loadedId !== data.strip_id && P.loadingId !== data.strip_id) load(P, data);
}
"""

_component = st.components.v2.component(
    "flowviz.flow_player", js=_JS.replace("{AHEAD_SUFFIX}", AHEAD_SUFFIX), css=_CSS, isolate_styles=False
)

_MISSING = -32768  # the Int16 code of a point that is not drawn


def _quantise(points: np.ndarray, window: tuple[float, float, float, float]) -> str:
    """Points as base64 little-endian Int16 pairs over ``window`` (x0, x1, y0, y1): 0.4 ‰ of its width,
    a fraction of a pixel. Points outside the window or not finite get -32768 (not drawn)."""
    x0, x1, y0, y1 = window
    flat = points.reshape(-1, 2)
    u = (flat[:, 0] - x0) / (x1 - x0)
    v = (flat[:, 1] - y0) / (y1 - y0)
    inside = np.isfinite(u) & np.isfinite(v) & (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    q = np.full(flat.shape, _MISSING, dtype="<i2")
    q[inside, 0] = np.round(u[inside] * 65534 - 32767)
    q[inside, 1] = np.round(v[inside] * 65534 - 32767)
    return base64.b64encode(q.tobytes()).decode("ascii")


def _tick(value: float) -> str:
    return f"{value + 0.0:.3g}"  # + 0.0: no "-0"


def strip_json(strip: Mapping[str, np.ndarray], log_scale: bool) -> str:
    """Everything the browser needs to play a strip, as one compact JSON text."""
    (ex0, ex1), (ey0, ey1) = pixel_extent(strip["x"], strip["y"])
    w, h = ex1 - ex0, ey1 - ey0
    window = (ex0 - w, ex1 + w, ey0 - h, ey1 + h)  # lines may leave the picture and come back
    offsets = strip["png_offsets"]
    png = strip["png"]
    vmin, vmax = (float(v) for v in strip["limits"])
    n_frames = len(strip["t"])
    payload = {
        "n": n_frames,
        "n_layers": len(strip["flips"]),
        "t": [float(t) for t in strip["t"]],
        "labels": [str(label) for label in strip["labels"]],
        "layer": [int(k) for k in strip["layer"]],
        "flips": [bool(f) for f in strip["flips"]],
        "png": [
            base64.b64encode(png[offsets[k] : offsets[k + 1]].tobytes()).decode("ascii")
            for k in range(n_frames)
        ],
        "extent": [ex0, ex1, ey0, ey1],
        "window": list(window),
        "lines": _quantise(strip["lines"], window),
        "lines_per_frame": int(strip["lines"].shape[1]),
        "points": _quantise(strip["points"], window),
        "points_per_frame": int(strip["points"].shape[1]),
        "tick_top": _tick(vmax),
        "tick_bottom": _tick(vmin) if log_scale else "0",
        "bar_name": "log density" if log_scale else "density",
    }
    return json.dumps(payload, separators=(",", ":"))


# A strip's JSON is about 1 MB (its frames are PNGs; a 96² strip more): 64 MB is ample for the
# last four strips, so a rerun that keeps the flow (another view asked for) sends it as is.
@array_cache(max_bytes=64 * 2**20, max_entries=4, key=lambda ident, make: ident)
def _payload(ident: str, make: Callable[[], str]) -> str:
    """The strip ``ident``'s JSON, made by ``make()`` the first time."""
    return make()


def _gradient() -> str:
    table = colour_table(DENSITY_SCALE)
    stops = [table[round(k * (len(table) - 1) / 8)] for k in range(8, -1, -1)]
    return "linear-gradient(" + ", ".join(f"rgb({r}, {g}, {b})" for r, g, b in stops) + ")"


def _asked(key: str) -> None:
    """The browser asked for a strip: send it in this run only (later runs leave the loaded frames be).
    Remembered as (the strip's id, whether it was asked for ahead of Play)."""
    state = st.session_state.get(key)
    want = state.get("want") if isinstance(state, Mapping) else None
    if isinstance(want, str):
        st.session_state[f"{key}_asked"] = (want.split(":")[0], want.endswith(AHEAD_SUFFIX))


def strip_id(flow_key: str, log_scale: bool) -> str:
    """A short name for one strip: the flow (its canonical JSON, or a trained flow's identity) and colouring."""
    return hashlib.blake2b(f"{flow_key}|{log_scale}".encode(), digest_size=12).hexdigest()


@st.fragment
@fairness.quick
def flow_player(
    flow_key: str,
    n_layers: int,
    view: Mapping,
    make_strip: Callable[[bool], Mapping[str, np.ndarray]],
    log_scale: bool,
    key: str = PLAYER_KEY,
    ahead: bool = True,
) -> None:
    """The player of one flow. ``make_strip(log_scale)`` gives ``flowviz.playback.play_strip``'s
    arrays (cached by the caller); it is called only once the browser has asked for this strip.
    ``ahead``: whether the page may ask for it before Play (not for a costly flow).

    A fragment: asking for the frames reruns the player alone, not the views around it.
    """
    ident = strip_id(flow_key, log_scale)
    frames = ""
    asked = st.session_state.pop(f"{key}_asked", None)
    if isinstance(asked, tuple) and asked[0] == ident:
        early = bool(asked[1])
        if early:  # nobody waits for these frames yet: no quick run, and its thread yields to everyone's
            fairness.QUICK_RUNS.not_quick()
        try:
            with fairness.lowered(early):
                frames = _payload(ident, lambda: strip_json(make_strip(log_scale), log_scale))
        except NotImplementedError as error:  # a layer without a path from the identity
            st.info(f"This flow cannot be played: {error}")
            return
    _component(
        key=key,
        data={
            "strip_id": ident,
            "n_frames": len(frame_times(n_layers)),
            "frames": frames,
            "stage": STAGE_PX,
            "rate": FRAME_RATE,
            "window": [_tick(float(v)) for v in (*view["xlim"], *view["ylim"])],
            "gradient": _gradient(),
            "placeholder": f"Press Play: the density, the grid and {PLAY_SAMPLES} samples move from p_Z (t = 0) to p_X "
            f"(t = {n_layers}), one layer after another."
            if n_layers
            else "Add a layer to play the flow: with none, p_X is p_Z.",
            "what": "Each frame is the exact density of the flow at time t: the first ⌊t⌋ layers whole and "
            f"the next one part of the way from the identity. The even grid of p_Z and the same {PLAY_SAMPLES} draws "
            "are carried along. One colour range serves every frame, so where mass piles up the picture "
            "brightens and where it spreads out it darkens.",
            "flip_note": FLIP_NOTE,
            "ahead": bool(ahead and n_layers),
        },
        default={"want": None},
        on_want_change=lambda: _asked(key),
    )
