// Pictures that follow a slider's thumb while it is dragged: see drag_slider.py.
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
    bases: Object.assign({}, known ? known.bases : null, chunk.bases),  // p_Z per colour range
    frames: merged, values: merged.map((frame) => frame.value),
  });
  while (STRIPS.size > KEEP) STRIPS.delete(STRIPS.keys().next().value);
}

function best(id) {
  return STRIPS.get(id) || null;
}

function chartNamed(name) {
  return Array.from(document.querySelectorAll("div.flowviz-live-chart"))
    .find((host) => host.getAttribute("aria-label") === name) || null;
}

// {LOAD_PLOTLY_JS}
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

function sameRange(host, name, limits) {  // the chart's colour range for the picture ``name``
  const trace = (host._fullData || []).find((t) => t.name === name);
  return Boolean(trace && limits && trace.zmin === limits[0] && trace.zmax === limits[1]);
}

// The words beside the pictures that a frame changes (flowviz.strips.frame_readouts), found by what
// Python says of their places (the metric's label, the container's key). Each is shown in a twin of
// its element put just after it, the element itself hidden, until the drag is over: the element is
// Streamlit's, and the run after the release writes the exact words into it.
const READOUT_PLACES = {
  mass: (label) => {
    const metric = Array.from(document.querySelectorAll('[data-testid="stMetric"]')).find((box) => {
      const name = box.querySelector('[data-testid="stMetricLabel"]');
      return name && name.textContent.trim() === label;
    });
    return metric ? metric.querySelector('[data-testid="stMetricValue"]') : null;
  },
  condition: (key) => document.querySelector(".st-key-" + key + ' [data-testid="stCaptionContainer"]'),
};

// At most one write of the words every READOUT_EVERY ms (the last frame's always): words that
// change faster cannot be read, and each write costs the page a layout during the drag.
const READOUT_EVERY = 100;  // ms

function showReadouts(state, places, readouts) {
  if (!places || !readouts) return;
  state.readoutsWanted = [places, readouts];
  const wait = READOUT_EVERY - (performance.now() - (state.readoutsAt || 0));
  if (wait <= 0) { writeReadouts(state); return; }
  if (!state.readoutsTimer) {
    state.readoutsTimer = setTimeout(() => {
      state.readoutsTimer = 0;
      if (state.readoutsWanted) writeReadouts(state);
    }, wait);
  }
}

function writeReadouts(state) {
  const [places, readouts] = state.readoutsWanted;
  state.readoutsAt = performance.now();
  state.readouts = state.readouts || [];
  Object.entries(readouts).forEach(([name, text]) => {
    let shown = state.readouts.find((r) => r.name === name && r.twin.isConnected && r.element.isConnected);
    const find = READOUT_PLACES[name];
    const element = shown ? shown.element : find && places[name] !== undefined ? find(places[name]) : null;
    if (!element) return;
    if (!shown) {
      const twin = element.cloneNode(true);
      [twin, ...twin.querySelectorAll("[data-testid]")].forEach((node) => node.removeAttribute("data-testid"));
      twin.style.display = "";  // (the element may be hidden already: a twin of an earlier frame's)
      twin.classList.add("flowviz-readout-preview");
      twin.dataset.readout = name;
      element.after(twin);
      element.style.display = "none";
      shown = { name, element, twin };
      state.readouts.push(shown);
    }
    let holder = shown.twin;  // the innermost element that holds the words, so that they keep their look
    while (holder.children.length === 1) holder = holder.children[0];
    if (holder.textContent !== text) holder.textContent = text;
  });
}

function hideReadouts(state) {
  clearTimeout(state.readoutsTimer);
  state.readoutsTimer = 0;
  state.readoutsWanted = null;
  (state.readouts || []).forEach(({ element, twin }) => {
    twin.remove();
    element.style.display = "";
  });
  state.readouts = null;
  document.querySelectorAll(".flowviz-dimmed").forEach((element) => element.classList.remove("flowviz-dimmed"));
}

// Words a frame does not follow (formulas of the setting): dimmed while it shows, until the drag is over.
function dim(keys) {
  (keys || []).forEach((key) => {
    const box = document.querySelector(".st-key-" + key);
    if (box) box.classList.add("flowviz-dimmed");
  });
}

// The Explorer: a frame is pictures, swapped into the live chart's named layout images, and the
// colour range of each (the colour bars' labels follow), and the words beside them.
const IMAGES = {
  find: (target) => chartNamed(target.chart),
  show(state, host, frame, strip) {
    if (!window.flowvizShowImages) return false;
    const images = Object.assign({}, frame.images);
    if (frame.base !== undefined && strip.bases[frame.base] !== undefined) images.panel0 = strip.bases[frame.base];
    Object.entries(strip.aliases || {}).forEach(([alias, name]) => {
      if (images[name] !== undefined) images[alias] = images[name];
    });
    if (!state.originals) {  // what the chart showed before the drag, to restore if nothing changes
      state.originals = {};
      (host.layout.images || []).forEach((image) => {
        if (image.name && images[image.name] !== undefined) state.originals[image.name] = image.source;
      });
    }
    // p_Z only recoloured (a layer's slider): on the chart's own colour range, its own sharper picture
    if (frame.base_recoloured && state.originals.panel0 !== undefined &&
        sameRange(host, "panel0", frame.limits.panel0)) images.panel0 = state.originals.panel0;
    if (!window.flowvizShowImages(host, images)) return false;
    // the frame's colours span its own range: the colour bars say so (a refused value's have none)
    if (frame.limits && window.flowvizColourBarLimits) window.flowvizColourBarLimits(host, frame.limits);
    showReadouts(state, state.data.target.readouts, frame.readouts);
    return true;
  },
  restore(state, host) {
    if (window.flowvizShowImages) window.flowvizShowImages(host, state.originals);
    if (window.flowvizColourBarLimits) window.flowvizColourBarLimits(host, null);
  },
};

// The 1D page: a frame is the data of the traces a parameter moves (found by their meta),
// restyled in the page's live chart; the others (interval, probe, histogram) wait hidden.
// The first frame of a drag restyles the whole figure (hiding the others); the next ones only
// move the moved traces' points in the SVG plotly drew (any plotly call recomputes the whole
// figure, tens of ms a frame): the axes' ranges are fixed, so nothing else changes. The chart
// is marked as previewed, so the next run's figure replaces the preview even where it is the
// same figure (a value the spec refuses).
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
    const movedIndices = indices.filter((k) => moved(gd.data[k]));
    const movedKey = movedIndices.join(",");
    const drawn = () => {
      state.shownArrays = gd.data.map((trace) => trace.x);
      gd.__flowvizDrag = state;
      if (window.flowvizRestyled) window.flowvizRestyled(gd);  // the live chart redraws it from its next figure
    };
    // Only points move, on the figure the last frame was drawn on: move them in its SVG alone.
    if (state.fastChart === gd && state.movedKey === movedKey && movedIndices.length && state.shownArrays &&
        movedIndices.every((k) => gd.data[k].x === state.shownArrays[k]) &&
        movedIndices.every((k) => drawPoints(gd, k, traces[gd.data[k].meta]))) {
      movedIndices.forEach((k) => {  // the data now says what is painted (for a redraw, and a check)
        const frameTrace = traces[gd.data[k].meta];
        gd.data[k].x = frameTrace.x;
        gd.data[k].y = frameTrace.y;
        if (frameTrace["marker.color"] !== undefined && gd.data[k].marker) {
          gd.data[k].marker.color = frameTrace["marker.color"];
        }
      });
      drawn();
      note(gd, frame.invertible === false ? "Not valid here: " + frame.reason : "");
      dim(state.data.target.dim);
      return true;
    }
    const update = {
      x: gd.data.map((trace) => (moved(trace) ? traces[trace.meta].x : undefined)),
      y: gd.data.map((trace) => (moved(trace) ? traces[trace.meta].y : undefined)),
      "marker.color": gd.data.map((trace) => (moved(trace) ? traces[trace.meta]["marker.color"] : undefined)),
      visible: gd.data.map((trace) => (moved(trace) ? true : false)),
    };
    window.Plotly.restyle(gd, update, indices);
    drawn();
    state.fastChart = gd;
    state.movedKey = movedKey;
    if (!gd.__flowvizWatched && gd.on) {
      // A figure drawn during the drag (another run's) replaces the frame: put the frame under
      // the thumb back at once, before anything is painted. One drawn after the drag is the
      // released value's own: the frame's note (a value the spec refuses) goes with the frame.
      gd.__flowvizWatched = true;
      gd.on("plotly_afterplot", () => {
        const drag = gd.__flowvizDrag;
        if (!drag || !drag.dragging) {
          note(gd, "");
        } else if (drag.shownArrays && gd.data.some((trace, k) => trace.meta && trace.x !== drag.shownArrays[k])) {
          drag.frame = -1;
          preview(drag);
        }
      });
    }
    note(gd, frame.invertible === false ? "Not valid here: " + frame.reason : "");
    dim(state.data.target.dim);
    return true;
  },
  restore(state) {
    const gd = TRACES.find();
    if (!gd) return;
    if (window.Plotly && gd.data) window.Plotly.restyle(gd, state.originals, state.originals.indices);
    note(gd, "");
  },
};

// Put trace k's points (a frame's x, y and marker colours) into the SVG plotly drew for it:
// its line's path, its markers' places and colours. False where that SVG is not as expected.
function drawPoints(gd, k, frameTrace) {
  const full = gd._fullData && gd._fullData[k];
  const layout = gd._fullLayout;
  if (!full || !layout) return false;
  const xa = layout[full.xaxis.replace("x", "xaxis")], ya = layout[full.yaxis.replace("y", "yaxis")];
  const group = Array.from(gd.querySelectorAll("g.trace.scatter"))
    .find((g) => g.__data__ && g.__data__[0] && g.__data__[0].trace && g.__data__[0].trace.index === k);
  if (!xa || !ya || !group || !xa.c2p || !ya.c2p) return false;
  const xs = frameTrace.x, ys = frameTrace.y;
  const px = [], py = [];
  for (let i = 0; i < xs.length; i++) {
    const good = xs[i] !== null && ys[i] !== null && Number.isFinite(xs[i]) && Number.isFinite(ys[i]);
    px.push(good ? xa.c2p(xs[i]) : NaN);
    py.push(good ? ya.c2p(ys[i]) : NaN);
  }
  const mode = full.mode || "";
  if (mode.includes("lines")) {
    const line = group.querySelector("path.js-line");
    if (!line) return false;
    let d = "", open = false;
    for (let i = 0; i < px.length; i++) {
      if (Number.isNaN(px[i])) { open = false; continue; }
      d += (open ? "L" : "M") + px[i].toFixed(2) + "," + py[i].toFixed(2);
      open = true;
    }
    line.setAttribute("d", d);
  }
  if (mode.includes("markers")) {
    const holder = group.querySelector("g.points");
    const points = holder ? Array.from(holder.querySelectorAll("path.point")) : [];
    if (!points.length) return false;
    while (points.length < px.length) {
      const copy = points[0].cloneNode(true);
      holder.appendChild(copy);
      points.push(copy);
    }
    const colour = frameTrace["marker.color"] !== undefined ? markerColour(full.marker) : null;
    points.forEach((point, i) => {
      if (i >= px.length || Number.isNaN(px[i])) { point.style.display = "none"; return; }
      point.style.display = "";
      point.setAttribute("transform", "translate(" + px[i].toFixed(2) + "," + py[i].toFixed(2) + ")");
      if (colour) point.style.fill = colour(frameTrace["marker.color"][i]);
    });
  }
  return true;
}

// A marker's colour for a number: the trace's colour scale between cmin and cmax, in RGB.
function markerColour(marker) {
  const scale = (marker.colorscale || []).map(([at, css]) => [at, rgb(css)]);
  const low = marker.cmin, high = marker.cmax;
  if (scale.length < 2 || !(high > low)) return null;
  return (value) => {
    const t = Math.min(Math.max((value - low) / (high - low), 0), 1);
    let j = 1;
    while (j < scale.length - 1 && scale[j][0] < t) j++;
    const [a, ca] = scale[j - 1], [b, cb] = scale[j];
    const u = b > a ? Math.min(Math.max((t - a) / (b - a), 0), 1) : 0;
    const mix = ca.map((c, m) => Math.round(c + (cb[m] - c) * u));
    return "rgb(" + mix.join(", ") + ")";
  };
}

function rgb(css) {  // "#rrggbb", "rgb(r, g, b)" or "rgba(...)" -> [r, g, b]
  if (css[0] === "#") {
    const hex = css.length === 4 ? css.slice(1).split("").map((c) => c + c).join("") : css.slice(1, 7);
    return [0, 2, 4].map((m) => parseInt(hex.slice(m, m + 2), 16));
  }
  return css.replace(/[^0-9.,]/g, "").split(",").slice(0, 3).map(Number);
}

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

// Ask Python for the next chunk of this slider's strip, once each: the values nearest the thumb
// now, ahead of it first (it sends which values the page holds), until the strip is whole.
// ``ready``: asked before anybody touched the slider (see readyNext), at low priority.
function ask(state, ready = false) {
  const id = state.data.strip_id;
  if (!id) return;
  const known = best(id);
  const level = known ? known.level + 1 : 0;
  if (level >= state.data.levels) return;
  // once each (a request whose run never came, as one a key press cut short, is asked again)
  if (state.requested === id + "/" + level && performance.now() - state.askedAt < ASK_AGAIN) return;
  const at = Number(state.input.value);
  const speed = state.dragging ? thumbSpeed(state) : 0;
  if (state.dragging && known && !shortAhead(state, known.values, at, speed)) return;
  state.requested = id + "/" + level;
  const moved = state.dragging && state.committed !== null ? Math.sign(at - state.committed) : 0;
  const heading = speed !== 0 ? Math.sign(speed) : moved;
  state.askedAt = performance.now();
  state.askedReady = ready;
  // comes with the next run; the chunk is aimed where the thumb will be when it arrives
  state.send("grab", { id, level, at, heading, speed, lag: state.lag, have: known ? known.values : [], ready });
}
const ASK_AGAIN = 3000;  // ms

// Before any drag: once the page has been still for READY_AFTER ms (no run, no drag, no new
// picture), the first chunk of each slider's strip (the values nearest its thumb), one slider
// at a time, the one nearest the pointer first, of the sliders in view; not while keys are in use (the last input was
// a key press: a person stepping a slider with the keyboard waits for no such run), nor for a
// costly flow. A first drag then shows a picture at its first move, and the thumb's own chunks
// follow. The server makes them at low priority, as no quick run (flowviz.ui.fairness).
const READY = window.__flowvizReady || (window.__flowvizReady = { states: new Set(), timer: 0 });
const READY_AFTER = 600;  // ms

function readyLater() {
  clearTimeout(READY.timer);
  READY.timer = setTimeout(readyNext, READY_AFTER);
}

function readyNext() {
  if (READY.keys) return;  // keys in use: no drag to get ready for (a pointer move asks again)
  const app = document.querySelector('[data-testid="stApp"]');
  if (window.__flowvizDragging || !app || app.getAttribute("data-test-script-state") !== "notRunning" ||
      document.hidden) {
    readyLater();
    return;
  }
  const now = performance.now();
  let busy = false;
  const waiting = [];
  READY.states.forEach((state) => {
    if (!state.root.isConnected) { READY.states.delete(state); return; }  // its slider is gone
    if (!state.box || !state.box.isConnected) return;
    const r = state.box.getBoundingClientRect();  // one scrolled out of view waits until it is back
    if (r.bottom < 0 || r.top > window.innerHeight) return;
    const id = state.data && state.data.strip_id;
    if (!id || !state.data.ready || best(id)) return;  // (not for a costly flow: see made_ready)
    if (state.requested === id + "/0" && now - state.askedAt < ASK_AGAIN) busy = true;
    else waiting.push(state);
  });
  if (busy || !waiting.length) return;  // the chunk asked for comes with a run, which asks again
  // the slider nearest the pointer first (where it is known), else the topmost
  const away = (state) => {
    const r = state.box.getBoundingClientRect();
    if (!READY.pointer) return r.top;
    const dx = Math.max(r.left - READY.pointer.x, 0, READY.pointer.x - r.right);
    const dy = Math.max(r.top - READY.pointer.y, 0, READY.pointer.y - r.bottom);
    return Math.hypot(dx, dy);
  };
  const distances = new Map(waiting.map((state) => [state, away(state)]));
  waiting.sort((a, b) => distances.get(a) - distances.get(b));
  ask(waiting[0], true);
}

if (!READY.listening) {
  READY.listening = true;
  const listen = { passive: true, capture: true };
  window.addEventListener("pointermove", (event) => {
    READY.pointer = { x: event.clientX, y: event.clientY };
    if (READY.keys) { READY.keys = false; readyLater(); }
  }, listen);
  window.addEventListener("keydown", () => { READY.keys = true; }, listen);
  window.addEventListener("scroll", readyLater, listen);  // sliders come into view
}

// While dragged: whether the frames held ahead of the thumb, without a gap, end before where it
// will be in two chunks' round trips (and a bit): then the next chunk is asked for; else the
// server is left alone (values the thumb is not heading for come when it rests on the slider).
function shortAhead(state, values, at, speed) {
  if (speed === 0) return false;  // still: nothing to show but the frame it has
  const spacing = (state.data.high - state.data.low) / Math.max(state.data.count - 1, 1);
  const heading = Math.sign(speed);
  const horizon = Math.abs(speed) * (2 * state.lag + 0.1);
  const ahead = values.filter((v) => (v - at) * heading > -spacing / 2)
    .sort((a, b) => heading * (a - b));
  let edge = at;
  for (const v of ahead) {
    if (Math.abs(v - edge) > 1.5 * spacing) break;
    edge = v;
  }
  return Math.abs(edge - at) < horizon && (heading > 0 ? edge < state.data.high : edge > state.data.low);
}

// The thumb's speed (slider units a second) over its last SPEED_WINDOW ms of moves (0 if it rests).
const SPEED_WINDOW = 250;
function thumbSpeed(state) {
  const now = performance.now();
  const recent = state.track.filter(([t]) => now - t <= SPEED_WINDOW);
  if (recent.length < 2) return 0;
  const [t0, v0] = recent[0], [t1, v1] = recent[recent.length - 1];
  return t1 - t0 >= 30 ? (v1 - v0) / ((t1 - t0) / 1000) : 0;
}

function restore(state) {
  const kind = state.data.target ? KINDS[state.data.target.kind] : null;
  if (kind && state.originals && state.host) kind.restore(state, state.host);
  forget(state);
}

// The page's runs from now on, every change of the run state seen however short the run: how many
// began and ended since, and whether one was going on already (a chunk asked for during the drag).
function watchRuns() {
  const app = document.querySelector('[data-testid="stApp"]');
  const running = () => Boolean(app) && app.getAttribute("data-test-script-state") === "running";
  const runs = { running, starts: 0, ends: 0, endedAt: 0, busyAtStart: running(), onChange: null, observer: null };
  if (app) {
    runs.observer = new MutationObserver((records) => {
      records.forEach((record) => {
        if (record.oldValue === "running") { runs.ends += 1; runs.endedAt = performance.now(); }
        else runs.starts += 1;
      });
      if (runs.onChange) runs.onChange();
    });
    runs.observer.observe(app, { attributes: true, attributeFilter: ["data-test-script-state"], attributeOldValue: true });
  }
  runs.stop = () => { if (runs.observer) runs.observer.disconnect(); runs.onChange = null; };
  return runs;
}

// After a release, once the run it started is over: the chart shows its figure (the live chart
// draws each run's figure, the same one too, over a preview), so the drag's state goes. A run
// that was going on at the release (a chunk's) is not it: its end is waited past, unless no run
// follows it (the release was taken into it). A long run (a costly flow) is waited for.
function settle(state, runs) {
  const kind = state.data.target ? KINDS[state.data.target.kind] : null;
  if (!kind || !state.host) { runs.stop(); return; }
  const started = performance.now();
  let timer = 0;
  const check = () => {
    clearTimeout(timer);
    if (state.dragging || !state.host) { runs.stop(); return; }
    const now = performance.now();
    const idle = !runs.running();
    const over = idle && runs.starts > 0 && runs.ends >= runs.starts + (runs.busyAtStart ? 1 : 0);
    const joined = idle && runs.busyAtStart && runs.starts === 0 && runs.ends > 0 && now - runs.endedAt > 400;
    const late = (idle && now - started > 3000) || now - started > 15000;
    if (over || joined || late) {
      runs.stop();
      forget(state);
      return;
    }
    timer = setTimeout(check, 50);
  };
  runs.onChange = check;
  timer = setTimeout(check, 50);
}

function forget(state) {
  hideReadouts(state);
  if (state.host) {
    delete state.host.dataset.previewValue;
    delete state.host.dataset.previewSpacing;
  }
  state.originals = null;
  state.host = null;
  state.strip = null;
  state.shownArrays = null;
  state.fastChart = null;
  state.movedKey = null;
  state.frame = -1;
}

// Beside one of Streamlit's own sliders (found by its label): no control of its own. Streamlit's
// slider moves its thumb while dragged but sends the value only when let go; this follows the
// thumb in every animation frame and shows the frames, and Streamlit sends the value itself.
function labelOf(box) {
  const text = box.querySelector('[data-testid="stWidgetLabel"]');
  return text ? text.textContent.trim() : null;
}

function streamlitSlider(label) {
  return Array.from(document.querySelectorAll('[data-testid="stSlider"]')).find((box) => labelOf(box) === label) ||
    null;
}

function companion(parentElement) {
  const root = document.createElement("div");
  root.className = "flowviz-slider-companion";
  const state = {
    get input() {  // (read every animation frame of a drag: the slider hooked, while it is the one)
      const box = state.box && state.box.isConnected && labelOf(state.box) === state.data.attach
        ? state.box : streamlitSlider(state.data.attach);
      return (box && box.querySelector('input[type="range"]')) || { value: String(state.committed) };
    },
    dragging: false, pending: 0, frame: -1, strip: null, hover: 0, hovered: false, originals: null, host: null,
    committed: null, requested: null, data: null, send: null, box: null, shown: null,
    track: [], askedAt: 0, lag: 0.25,  // the thumb's recent moves; a chunk's round trip (s), as measured
  };
  root.__fv = state;
  state.root = root;
  const follow = () => {  // every animation frame while the button is down
    if (!state.dragging) return;
    const value = Number(state.input.value);
    if (value !== state.shown) {
      state.shown = value;
      const now = performance.now();
      state.track.push([now, value]);
      while (state.track.length > 2 && now - state.track[0][0] > SPEED_WINDOW) state.track.shift();
      ask(state);  // the first move says which way the thumb goes (a chunk is asked for once)
      preview(state);
    }
    requestAnimationFrame(follow);
  };
  state.grab = () => {
    state.dragging = true;
    state.committed = Number(state.input.value);
    state.shown = state.committed;
    state.track = [[performance.now(), state.committed]];
    window.__flowvizDragging = true;
    requestAnimationFrame(follow);
  };
  state.letGo = () => {
    if (!state.dragging) return;
    state.dragging = false;
    state.requested = null;
    window.__flowvizDragging = false;
    const runs = watchRuns();  // (from the release on: the run it starts may begin at once)
    // Streamlit's slider may still be about to take the value: look once it has settled
    setTimeout(() => {
      if (Number(state.input.value) === state.committed) { runs.stop(); restore(state); } else settle(state, runs);
    }, 30);
  };
  state.enter = (event) => {
    if (event.pointerType === "touch") return;
    clearTimeout(state.hover);
    state.hover = setTimeout(() => { state.hovered = true; ask(state); }, 60);
  };
  state.leave = () => { clearTimeout(state.hover); state.hovered = false; };
  window.addEventListener("pointerup", state.letGo);
  window.addEventListener("pointercancel", state.letGo);
  parentElement.appendChild(root);
  return root;
}

function hook(state) {  // (again after a run that drew Streamlit's slider anew)
  const box = streamlitSlider(state.data.attach);
  if (!box || box === state.box) return;
  state.box = box;
  box.addEventListener("pointerdown", state.grab, true);
  box.addEventListener("pointerenter", state.enter);
  box.addEventListener("pointerleave", state.leave);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector("div.flowviz-slider-companion") || companion(parentElement);
  const state = root.__fv;
  state.data = data;
  state.send = setTriggerValue;
  hook(state);
  READY.states.add(state);
  readyLater();
  setTimeout(() => hook(state), 0);  // Streamlit's slider may be drawn just after this
  if (data.target && data.target.script) loadPlotly(data.target.script).catch(() => {});
  if (data.strip) {
    if (state.askedAt && data.strip.id === data.strip_id) {  // how long this chunk took to arrive
      if (!state.askedReady) {  // (one made at low priority says nothing of a drag's)
        state.lag = 0.5 * state.lag + 0.5 * Math.min((performance.now() - state.askedAt) / 1000, 2);
      }
      state.askedAt = 0;
    }
    remember(data.strip);
    if (state.dragging || state.hovered) ask(state);  // the next chunk, while the thumb is near
    if (state.dragging) { state.frame = -1; preview(state); }  // and the frame under the thumb now
  }
}
