"""Frame strips: the Explorer's pictures for many values of one parameter, ready to flip through.

A slider's thumb moves faster than a page can ask the server for each picture. So
when a person grabs a slider, the core evaluates the flow at a preview resolution
for values spread along the slider's whole range, one picture per value, and the
browser shows the picture of the value nearest the thumb while it moves. Every
frame is an evaluation of the flow by the same layers and colour-mapped by the
same code as the Explorer's own figure: nothing is computed twice in the browser.

A frame is ``{"value": v, "images": {name: data URI}, "limits": {name: [low, high]}}``, its
names those of the main figure's layout images (``panel1``, ``panel1-overlay``, ...; the grid
lines over p_X are also those over the volume change in x, ``panel3-overlay``: see ``ALIASES``)
and ``limits`` each picture's colour range (the colour bars follow it); a value for
which the spec is refused (a layer would not be invertible there) gets a frame
that says so, with ``"invertible": False`` and the spec's reason.
"""

from __future__ import annotations

import base64
import copy
import json
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from flowviz.errors import SpecError
from flowviz.explorer import GRID_LINES, base_density_on_grid
from flowviz.flow import Flow
from flowviz.grid import deformed_grid, evaluate_flow
from flowviz.layers import LAYER_CLASSES
from flowviz.line import LineCurves, build_line_base, build_line_map, line_curves
from flowviz.memo import array_cache
from flowviz.plots.common import colour_map, pixel_extent, png_data_uri
from flowviz.plots.explore import density_panels, svg_overlay, volume_panels
from flowviz.spec import MAX_GRID_WORK, parse_spec, point_cost

PREVIEW_RESOLUTION = 64  # grid points per axis of a frame: a 64² picture costs about 2 ms
# A strip holds up to STRIP_FRAMES values along a slider's range (its ends included). It is
# sent in chunks, each short enough that letting go never waits long for one, and each
# made of the values the thumb is about to pass when the chunk reaches the page: the
# first, asked for when the thumb first moves (or the pointer rests on the slider), has the
# values nearest the thumb; each next one, asked for while the thumb moves, the values nearest
# where the thumb will be once the chunk arrives (its speed times the last chunk's round
# trip), ahead of that point first. Small chunks first: a chunk's round trip is its frames'
# cost plus a fixed cost of about 0.1 s, and the thumb passes about 30 values a second. While
# the thumb moves, the page asks for a chunk only when the frames it holds ahead of the thumb
# run out within two round trips, so the values it is not heading for cost nothing then.
STRIP_FRAMES = 161  # every step of a slider over [-4, 4] in steps of 0.05
STRIP_CHUNKS = (6, 12, 18, 24, 24, 32, 32, 40)  # values near the thumb in each chunk; one more holds the rest
STRIP_LEVELS = len(STRIP_CHUNKS) + 1  # chunks in a whole strip
BEHIND = 3.0  # a value behind the moving thumb counts as this many times as far as one ahead
MAX_LEAD = 0.1  # the farthest ahead a chunk is aimed, as a fraction of the slider's range
ROUND_TRIP_FRAMES = 10  # a chunk's fixed cost (a run, the transfer), in frames' worth of time
PREVIEW_LINE_POINTS = 32  # points per grid line in a frame's overlay (the exact figure has 120)
ALIASES = {"panel3-overlay": "panel1-overlay"}  # images a frame shows twice, sent once

_NOT_INVERTIBLE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200" preserveAspectRatio="none">'
    '<rect width="200" height="200" fill="#d7d7d7"/>'
    '<text x="100" y="96" font-family="sans-serif" font-size="15" text-anchor="middle" fill="#333">'
    "not invertible here</text>"
    '<text x="100" y="116" font-family="sans-serif" font-size="10" text-anchor="middle" fill="#555">'
    "(no density: the spec refuses this value)</text></svg>"
)
NOT_INVERTIBLE_IMAGE = "data:image/svg+xml;base64," + base64.b64encode(_NOT_INVERTIBLE_SVG.encode()).decode()
EMPTY_OVERLAY = "data:image/svg+xml;base64," + base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"></svg>'
).decode("ascii")


def strip_resolution(spec: Mapping, resolution: int = PREVIEW_RESOLUTION) -> int:
    """A frame's grid: ``resolution``, coarser for a costly flow, so that a whole strip (every
    frame of a grabbed slider) costs no more than the largest grid the spec allows."""
    per_strip = MAX_GRID_WORK / (STRIP_FRAMES * point_cost(parse_spec(spec)))
    return max(8, min(resolution, math.isqrt(int(per_strip))))


def strip_values(low: float, high: float, step: float, count: int = STRIP_FRAMES) -> tuple[float, ...]:
    """``count`` values spread evenly over [low, high], each on the slider's own steps.

    On the steps, so that a frame is the picture of a value the thumb can stop at.
    """
    positions = round((high - low) / step)
    indices = np.unique(np.round(np.linspace(0, positions, min(count, positions + 1))).astype(int))
    return tuple(float(round(low + k * step, 10)) for k in indices)


def chunk_lead(level: int, speed: float, lag: float) -> float:
    """How far (slider units) a thumb moving at ``speed`` units a second goes before chunk
    ``level`` arrives, where the last chunk took ``lag`` seconds: that time, scaled by the two
    chunks' sizes (each costs its frames and a fixed ``ROUND_TRIP_FRAMES`` more)."""
    if level <= 0 or level > len(STRIP_CHUNKS) or not (math.isfinite(speed) and math.isfinite(lag)):
        return 0.0
    size = STRIP_CHUNKS[level] if level < len(STRIP_CHUNKS) else STRIP_CHUNKS[-1]
    scale = (ROUND_TRIP_FRAMES + size) / (ROUND_TRIP_FRAMES + STRIP_CHUNKS[level - 1])
    return abs(speed) * min(max(lag, 0.0), 2.0) * scale


def strip_chunk(
    low: float,
    high: float,
    step: float,
    level: int,
    at: float,
    heading: int = 0,
    have: Iterable[float] = (),
    lead: float = 0.0,
) -> tuple[float, ...]:
    """The values of chunk ``level`` of a strip, for a thumb at ``at`` moving toward ``heading``
    (+1 up, -1 down, 0 still) that is expected ``lead`` further on (in the slider's units, in
    the direction it moves) when the chunk arrives, in a page that holds the values ``have``.

    Chunk ``level`` < ``len(STRIP_CHUNKS)``: the ``STRIP_CHUNKS[level]`` values not held that
    are nearest the point ``lead`` ahead of ``at`` (at most ``MAX_LEAD`` of the range), those
    behind that point counted ``BEHIND`` times as far. The last: every value not held. The
    values are those of ``strip_values``, in increasing order.
    """
    values = strip_values(low, high, step)
    held = {round(float(v), 10) for v in have}
    missing = [v for v in values if v not in held]
    if level >= len(STRIP_CHUNKS):
        return tuple(missing)
    reach = min(max(float(lead), 0.0), MAX_LEAD * (high - low)) if heading else 0.0
    aim = min(max(at + heading * reach, low), high)

    def distance(v: float) -> float:
        ahead = heading == 0 or (v - aim) * heading >= 0
        return abs(v - aim) * (1.0 if ahead else BEHIND)

    chosen = set(sorted(missing, key=lambda v: (distance(v), v))[: STRIP_CHUNKS[level]])
    return tuple(v for v in missing if v in chosen)


def has_number(spec: Mapping, path: Sequence) -> bool:
    """Whether ``path`` leads to a number in ``spec`` (a term left at zero may be absent)."""
    holder = spec
    for part in path:
        try:
            holder = holder[part]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(holder, (int, float)) and not isinstance(holder, bool)


def spec_with(spec: Mapping, path: Sequence, value: float) -> dict:
    """A copy of ``spec`` with the number at ``path`` (keys and list indices) set to ``value``."""
    out = copy.deepcopy(dict(spec))
    holder = out
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = float(value)
    return out


@torch.no_grad()
def preview_fields(
    spec: Mapping, resolution: int = PREVIEW_RESOLUTION, base_density: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The arrays one frame is drawn from: ``evaluate``'s at ``resolution``, the base density
    (``base_density`` if given: the same in every frame of a layer's slider) and the carried
    grid lines. Raises :class:`SpecError` where the spec is refused."""
    canonical = parse_spec(spec)
    view = {**canonical["view"], "resolution": resolution}
    flow = Flow.from_spec(canonical)
    out = dict(evaluate_flow(flow, view))
    out["base_density"] = base_density if base_density is not None else base_density_on_grid(flow, view)
    out["x_lines"] = deformed_grid(flow, view, lines=GRID_LINES, points_per_line=PREVIEW_LINE_POINTS)["x"]
    return out


def frame_images(
    fields: Mapping[str, np.ndarray],
    extent: tuple,
    log_scale: bool,
    lines: bool,
    base_images: dict | None = None,
) -> dict:
    """The main figure's images for one frame, named as its layout images, by the figure's own code,
    and each panel's colour limits (``limits``: the colour bars say what the frame's colours mean).

    p_Z shares p_X's colour scale, so it is in every frame: ``base_images`` remembers its picture
    per colour range where the base density is the same in every frame (a layer's slider)."""
    base_panel, density_panel = density_panels(fields["base_density"], fields["density"], log_scale)
    volume_z, volume_x = volume_panels(fields["log_det_forward"], fields["log_det_inverse"])
    panels = {"panel0": base_panel, "panel1": density_panel, "panel2": volume_z, "panel3": volume_x}

    def image(name: str, p) -> str:
        # encoded here, not through the figure's small image cache: a strip would flush it
        remembered = name == "panel0" and base_images is not None
        if not remembered or (p.vmin, p.vmax) not in base_images:
            uri = png_data_uri(colour_map(p.values, p.vmin, p.vmax, p.scale))
            if not remembered:
                return uri
            base_images[p.vmin, p.vmax] = uri
        return base_images[p.vmin, p.vmax]

    images = {name: image(name, p) for name, p in panels.items()}
    if lines:
        images["panel1-overlay"] = svg_overlay(fields["x_lines"], None, *extent)
    limits = {name: [float(p.vmin), float(p.vmax)] for name, p in panels.items()}
    frame = {"images": images, "limits": limits}
    if base_images is not None:  # p_Z is the chart's own, recoloured: on the same range, the chart's will do
        frame["base_recoloured"] = True
    return frame


def shared_base_images(frames: list[dict]) -> dict[str, str]:
    """p_Z's recoloured picture once per colour range of a chunk, not once per frame (a layer's
    slider: the same base density in every frame): each such frame's ``images["panel0"]`` moves
    into the table returned, under its range, which the frame names as ``base``."""
    table = {}
    for frame in frames:
        if frame.get("base_recoloured") and "panel0" in frame.get("images", {}):
            key = "{!r},{!r}".format(*frame["limits"]["panel0"])
            table[key] = frame["images"].pop("panel0")
            frame["base"] = key
    return table


def frame_readouts(spec: Mapping, path: Sequence, mass: float | None) -> dict[str, str]:
    """The words beside the pictures that a frame changes: the mass in view (on the frame's own
    coarser grid, so "≈" and three decimals; "—" where the value is refused) and, for a layer's
    number, that layer's condition line (planar's w·u) for the frame's value, where it has one."""
    readouts = {"mass": "—" if mass is None else f"≈ {mass:.3f}"}
    if path and path[0] == "layers":
        layer = spec["layers"][path[1]]
        cls = LAYER_CLASSES.get(layer.get("type"))
        condition = cls.condition_caption(layer) if cls is not None else None
        if condition:
            readouts["condition"] = condition
    return readouts


def _blocked_images(lines: bool) -> dict:
    images = dict.fromkeys(("panel0", "panel1", "panel2", "panel3"), NOT_INVERTIBLE_IMAGE)
    if lines:
        images["panel1-overlay"] = EMPTY_OVERLAY
    return {"images": images}


# A chunk's frames are JSON texts of about 25 kB each (two 64² PNGs and an overlay): a chunk of
# fifteen is about 0.4 MB, so 128 MB keeps the 64 most recent chunks of the largest grids too.
@array_cache(max_bytes=128 * 2**20, max_entries=64)
def _strip_cached(
    spec_json: str, path: tuple, values: tuple, log_scale: bool, lines: bool, resolution: int
) -> tuple:
    spec = json.loads(spec_json)
    view = spec["view"]
    n = int(view["resolution"])
    extent = pixel_extent(np.linspace(*view["xlim"], n), np.linspace(*view["ylim"], n))
    base_changes = path[0] == "base"
    base_density = None  # a layer's slider leaves the base as it is: its density is made once
    base_images = None if base_changes else {}  # and its picture once per colour range
    frames = []
    for value in values:
        changed = spec_with(spec, path, value)
        try:
            fields = preview_fields(changed, resolution, base_density)
            if not base_changes:
                base_density = fields["base_density"]
        except SpecError as error:
            blocked = {**_blocked_images(lines), "readouts": frame_readouts(changed, path, None)}
            frames.append((value, False, error.reason, json.dumps(blocked)))
            continue
        content = frame_images(fields, extent, log_scale, lines, base_images)
        content["readouts"] = frame_readouts(changed, path, float(fields["mass"]))
        frames.append((value, True, "", json.dumps(content)))
    return tuple(frames)


def explorer_strip(
    spec: Mapping,
    path: Sequence,
    values: Sequence[float],
    log_scale: bool = False,
    lines: bool = True,
    resolution: int = PREVIEW_RESOLUTION,
) -> list[dict]:
    """One frame per value of the number at ``path`` of the spec, the rest of the spec as it is.

    Cached by everything but the number's current value (the strip of a slider stays
    valid while only that slider moves), within 128 MB.
    """
    if not values:
        return []
    resolution = strip_resolution(spec, resolution)
    key = json.dumps(spec_with(spec, path, values[0]), separators=(",", ":"), sort_keys=True)
    packed = _strip_cached(key, tuple(path), tuple(float(v) for v in values), log_scale, lines, resolution)
    return _unpack(packed)


# ----------------------------------------------------------------------------- the 1D page


def line_traces(curves: LineCurves) -> dict[str, dict[str, list]]:
    """The 1D figure's curves that a parameter moves, keyed by their traces' ``meta``: the graph of f
    (coloured by log|f'|), its knots, p_X drawn sideways and p_Z. Six digits: far finer than a pixel."""

    def plain(values) -> list:
        return [float(f"{v:.6g}") for v in np.asarray(values, dtype=float).tolist()]

    graph = {"x": plain(curves.curve_z), "y": plain(curves.curve_x)}
    return {
        "graph-colour": {**graph, "marker.color": plain(np.nan_to_num(curves.curve_log_slope))},
        "graph-line": graph,
        "knots": {"x": list(curves.knots_z), "y": list(curves.knots_x)},
        "p_X": {"x": plain(curves.density), "y": plain(curves.x)},
        "p_Z": {"x": plain(curves.z), "y": plain(curves.base_density)},
    }


# A 1D frame's curves are JSON of about 25 kB: a chunk of fifteen about 0.4 MB, 64 MB is ample
# for the 64 most recent chunks.
@array_cache(max_bytes=64 * 2**20, max_entries=64)
def _line_strip_cached(setting_json: str, part: str, path: tuple, values: tuple) -> tuple:
    (base_kind, base_params), (map_kind, map_params) = json.loads(setting_json)
    frames = []
    for value in values:
        base = spec_with(base_params, path, value) if part == "base" else base_params
        fmap = spec_with(map_params, path, value) if part == "map" else map_params
        try:
            curves = line_curves(
                build_line_base(base_kind, base), build_line_map(map_kind, fmap), masses=False
            )
        except SpecError as error:
            frames.append((value, False, error.reason, "{}"))
            continue
        frames.append((value, True, "", json.dumps(line_traces(curves))))
    return tuple(frames)


def line_strip(
    base: tuple[str, Mapping], fmap: tuple[str, Mapping], part: str, path: Sequence, values: Sequence[float]
) -> list[dict]:
    """One frame of the 1D figure's curves per value of the number at ``path`` of the base's or the
    map's parameters (``part``: "base" or "map"); a value they refuse gets a frame that says why.

    Cached by everything but the number's current value, within 64 MB.
    """
    if not values:
        return []
    setting = [list(base), list(fmap)]
    side = 0 if part == "base" else 1
    setting[side][1] = spec_with(setting[side][1], path, values[0])
    key = json.dumps(setting, separators=(",", ":"), sort_keys=True)
    packed = _line_strip_cached(key, part, tuple(path), tuple(float(v) for v in values))
    return _unpack(packed, "traces")


def _unpack(packed, field: str | None = None) -> list[dict]:
    """Frames for the browser from their cached form (the JSON texts, counted in bytes by the
    cache): the value, its pictures or curves under ``field`` (or the fields the text holds), and
    for a value the spec refuses, why."""
    frames = []
    for value, valid, reason, payload in packed:
        content = json.loads(payload)
        frame = {"value": value, **(content if field is None else {field: content})}
        if not valid:
            frame.update(invertible=False, reason=reason)
        frames.append(frame)
    return frames
