"""The flow played from p_Z to p_X: a strip of frames of the flow at time t (no Streamlit).

``Flow.at(t)`` is the flow with its first ⌊t⌋ layers whole and the next one part of
the way along its path from the identity; t runs from 0 (the base alone) to K (the
whole flow). A strip holds, for evenly spaced t, what the browser needs to animate
it without asking the server again: the exact density of ``Flow.at(t)`` on a preview
grid (colour-mapped once, here), the even grid of the window carried through
``Flow.at(t)``, the same base draws pushed through ``Flow.at(t)`` (so the points move
continuously) and the label of the layer in progress.

One colour range serves the whole strip, so density piling up shows as brightening
and thinning as darkening, rather than every frame being rescaled to its own peak.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from flowviz.flow import Flow
from flowviz.grid import as_float64, deformed_grid, flow_key, grid_points, view_key
from flowviz.memo import array_cache
from flowviz.plots.common import DENSITY_SCALE, colour_map, png_bytes
from flowviz.plots.explore import density_limits

PREVIEW_RESOLUTION = 96  # grid points per axis: smooth at the player's 400 px, cheap enough for every frame
# A trained flow's neural couplings cost tens of ms per evaluation of a 96² grid: a coarser preview.
TRAINED_PREVIEW_RESOLUTION = 64
FRAMES_PER_LAYER = 24  # one layer per 0.8 s at 30 frames a second
MIN_FRAMES_PER_LAYER = 8
# Frame j of layer k evaluates k layers, so a strip of K layers costs F·K(K+1)/2 layer evaluations:
# a deep (trained) flow gets fewer frames per layer, so that its strip stays within seconds.
LAYER_FRAMES = 504  # 24 frames a layer up to 6 layers
PLAY_SAMPLES = 300
PLAY_GRID_LINES = 13  # lines per direction
PLAY_POINTS_PER_LINE = 48


def frames_per_layer(n_layers: int) -> int:
    """Frames for each layer's path: 24 for up to 6 layers, fewer for a deeper flow (never under 8)."""
    if n_layers <= 0:
        return FRAMES_PER_LAYER
    work = n_layers * (n_layers + 1) // 2
    return max(MIN_FRAMES_PER_LAYER, min(FRAMES_PER_LAYER, LAYER_FRAMES // work))


def frame_times(n_layers: int, per_layer: int | None = None) -> np.ndarray:
    """t of every frame: 0, 1/F, 2/F, ..., K. Frame k·F is exactly the whole number k."""
    per_layer = per_layer or frames_per_layer(n_layers)
    return np.arange(n_layers * per_layer + 1) / per_layer


@torch.no_grad()
def play_strip(
    flow: Flow,
    view: Mapping,
    resolution: int = PREVIEW_RESOLUTION,
    log_scale: bool = False,
    per_layer: int | None = None,
    n_samples: int = PLAY_SAMPLES,
    seed: int = 0,
    numbers: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """Every frame of the flow played from t = 0 to t = K over ``view`` at ``resolution``.

    Returns NumPy arrays: ``t`` (F,); ``x``, ``y`` the preview grid; ``log_density``
    (F, N, N), log p of ``Flow.at(t)`` at the grid (element [i, j] at (x[j], y[i]),
    -inf outside the image); ``png`` (the colour-mapped frames, PNG files one after
    another) with ``png_offsets`` (F + 1); ``limits`` (vmin, vmax) of the colours, on
    ``log_density`` when ``log_scale`` else on the density; ``lines`` (F, M, 2) the
    window's even grid pushed through ``Flow.at(t)`` (lines separated by NaN rows);
    ``points`` (F, n, 2) the same ``n_samples`` base draws pushed through ``Flow.at(t)``;
    ``labels`` (F,) ``Flow.time_label(t)`` (with ``numbers``, the number each active layer has in
    a stack that also holds switched-off layers, in place of its place among the active ones); ``layer`` (F,) the 1-based position among
    the active layers of the layer in progress (0 at t = 0); ``flips`` (K,) which
    layers reverse orientation.
    """
    flow = as_float64(flow)  # once: the layers at t are then float64 already
    n_layers = len(flow.layers)
    times = frame_times(n_layers, per_layer)
    small_view = {**view, "resolution": int(resolution)}
    xs, ys, points = grid_points(small_view)
    z0 = flow.sample_base(n_samples, seed=seed)
    log_density, lines, dots, labels = [], [], [], []
    for t in times.tolist():
        flow_t = flow.at(t)
        log_density.append(flow_t.log_prob(points).reshape(len(ys), len(xs)).numpy())
        lines.append(deformed_grid(flow_t, small_view, PLAY_GRID_LINES, PLAY_POINTS_PER_LINE)["x"])
        dots.append(flow_t.forward(z0).numpy())
        labels.append(renumbered(flow.time_label(t), numbers))
    log_density = np.stack(log_density)
    with np.errstate(under="ignore"):
        fields = log_density if log_scale else np.exp(log_density)
    vmin, vmax = density_limits(list(fields), log_scale)
    encoded = [png_bytes(colour_map(field, vmin, vmax, DENSITY_SCALE)) for field in fields]
    offsets = np.cumsum([0, *map(len, encoded)])
    return {
        "t": times,
        "x": xs,
        "y": ys,
        "log_density": log_density,
        "png": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "png_offsets": offsets.astype(np.int64),
        "limits": np.array([vmin, vmax]),
        "lines": np.stack(lines),
        "points": np.stack(dots),
        "labels": np.array(labels),
        "layer": np.array([math.ceil(t) for t in times.tolist()], dtype=np.int64),
        "flips": np.array([bool(layer.reverses_orientation) for layer in flow.layers], dtype=bool),
    }


def renumbered(label: str, numbers: Sequence[int] | None) -> str:
    """ "2 · planar, 40 %" with the layer's number in the stack (a switched-off layer keeps its number)."""
    place, sep, rest = label.partition(" · ")
    if numbers is None or not sep or not place.isdigit():
        return label
    return f"{numbers[int(place) - 1]}{sep}{rest}"


def frame_png(strip: Mapping[str, np.ndarray], index: int) -> bytes:
    """The PNG file of frame ``index``."""
    start, end = strip["png_offsets"][index], strip["png_offsets"][index + 1]
    return strip["png"][start:end].tobytes()


# A strip at the 96² preview is about 8 MB of PNGs, grids and points (the default flow's),
# more for a longer one: 192 MB keeps the eight most recent flows' strips.
@array_cache(max_bytes=192 * 2**20, max_entries=8)
def strip_of_spec(
    canonical_json: str, resolution: int = PREVIEW_RESOLUTION, log_scale: bool = False
) -> dict[str, np.ndarray]:
    """:func:`play_strip` for a canonical spec over its view, cached by its JSON (within 192 MB).

    The arrays are shared between callers, so read-only.
    """
    spec = json.loads(canonical_json)
    numbers = [i + 1 for i, layer in enumerate(spec["layers"]) if layer.get("enabled", True)]
    strip = play_strip(Flow.from_spec(spec), spec["view"], resolution, log_scale, numbers=numbers)
    for value in strip.values():
        value.flags.writeable = False
    return strip


# A trained flow's strip, keyed by its content (:func:`flow_key`): at the 64² preview the default
# trained model's strip is about 6 MB of PNGs, grids and points; 96 MB keeps a dozen or more.
@array_cache(
    max_bytes=96 * 2**20,
    max_entries=8,
    key=lambda flow, view, resolution, log_scale: (
        flow_key(flow),
        view_key(view),
        int(resolution),
        bool(log_scale),
    ),
)
def trained_strip(flow: Flow, view: Mapping, resolution: int, log_scale: bool) -> dict[str, np.ndarray]:
    """:func:`play_strip` for any flow, cached by its content and the view; shared, so read-only."""
    strip = play_strip(flow, view, resolution, log_scale)
    for value in strip.values():
        value.flags.writeable = False
    return strip
