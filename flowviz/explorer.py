"""Everything the Explorer draws, computed from a flow and its view (no Streamlit).

Functions keyed by a canonical spec's JSON are cached by it, so a rerun with an
unchanged flow costs nothing and two people looking at the same flow share the
work. The same functions serve any :class:`Flow` (a trained one included)
through their ``*_of_flow`` forms; the ``trained_*`` forms cache those for a flow
that is not a spec, keyed by its content (:func:`flowviz.grid.flow_key`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from flowviz.flow import Flow
from flowviz.grid import (
    as_float64,
    deformed_grid,
    evaluate_flow,
    flow_key,
    grid_points,
    map_in_pieces,
    view_key,
)
from flowviz.memo import array_cache
from flowviz.spec import MAX_GRID_WORK, base_cost, layer_cost

GRID_LINES = 17  # lines per direction across the window
POINTS_PER_LINE = 120  # enough for smooth images of the lines, light enough to redraw fast


@torch.no_grad()
def base_density_on_grid(flow: Flow, view: Mapping) -> np.ndarray:
    """p_Z at the grid points read as z: the base density before any layer."""
    xs, _, points = grid_points(view)
    n = len(xs)
    base = flow.base(torch.float64)
    return torch.exp(map_in_pieces(base.log_prob, points)).reshape(n, n).numpy()


def fields_of_flow(flow: Flow, view: Mapping, arrays: Mapping | None = None) -> dict[str, np.ndarray]:
    """The grid arrays of ``evaluate`` plus the base density and the grid lines in z and x."""
    flow = as_float64(flow)
    out = dict(arrays if arrays is not None else evaluate_flow(flow, view))
    out["base_density"] = base_density_on_grid(flow, view)
    lines = deformed_grid(flow, view, lines=GRID_LINES, points_per_line=POINTS_PER_LINE)
    out["z_lines"], out["x_lines"] = straight_line_ends(lines["z"]), lines["x"]
    return out


def straight_line_ends(points: np.ndarray) -> np.ndarray:
    """Only the two ends of each NaN-separated straight line: the same picture, far fewer points."""
    gap = np.isnan(points[:, 0])
    first = np.r_[True, gap[:-1]] & ~gap
    last = np.r_[gap[1:], True] & ~gap
    return points[first | last | gap]


# One 512² grid of every array is about 20 MB, a 2048² one (the most a link may ask) about
# 300 MB: 512 MB holds that one, or the sixteen most recent ordinary flows.
@array_cache(max_bytes=512 * 2**20, max_entries=16)
def explorer_fields(canonical_json: str) -> dict[str, np.ndarray]:
    """:func:`fields_of_flow` for a canonical spec, cached by its JSON (within 512 MB)."""
    spec = json.loads(canonical_json)
    return fields_of_flow(Flow.from_spec(spec), spec["view"])


# A grid sum of a probability can read a little above 1 (sharp peaks); beyond this it is not one.
MASS_TOLERANCE = 0.01
# A map that squeezes area by more than this somewhere piles its density into peaks no grid resolves.
NEAR_SINGULAR_DET = 1e-8


def mass_notes(
    mass: float, log_det_forward: np.ndarray, inside_fraction: float | None = None, samples: int = 2000
) -> list[tuple[str, str]]:
    """Why the mass readout cannot be taken at face value, as (kind, one-line text); [] when it can.

    ``inside_fraction``: the share of ``samples`` samples x = f(z) that land in the window,
    an independent estimate of the same probability. When the grid counts much less
    than the samples find (beyond five standard errors), the mass is not outside the window
    but in peaks between grid points: widening the view would not help.
    """
    notes: list[tuple[str, str]] = []
    with np.errstate(all="ignore"):
        finite = log_det_forward[np.isfinite(log_det_forward)]
    smallest = float(finite.min()) if finite.size else 0.0
    if smallest < math.log(NEAR_SINGULAR_DET):
        notes.append(
            (
                "warning",
                f"The map is near-singular: it squeezes area by a factor of up to {math.exp(smallest):.2g} "
                "(|det J_f| that small), piling the density into peaks narrower than a grid cell; "
                "the pictures and the mass in view are unreliable.",
            )
        )
    if not math.isfinite(mass) or mass > 1 + MASS_TOLERANCE:
        notes.append(
            (
                "warning",
                f"The mass in view reads {mass:.6g}, more than 1: not a probability. The density has peaks "
                "too sharp for this grid to sum; a finer resolution or a less extreme flow gives a figure to trust.",
            )
        )
    elif mass < 1 - MASS_TOLERANCE:
        error = math.sqrt(max(mass * (1 - mass), 1e-4) / samples)
        if inside_fraction is not None and inside_fraction - mass > 5 * error:
            notes.append(
                (
                    "warning",
                    f"The grid counts only {mass:.1%} of the mass in the window, but {inside_fraction:.1%} of "
                    "samples land in it: the rest sits in peaks between grid points, so widening the view "
                    "would not help; zoom in on the peaks or use a finer grid.",
                )
            )
        else:
            notes.append(
                (
                    "warning",
                    f"Part of the mass lies outside the window (only {mass:.1%} is inside): widen the view.",
                )
            )
    return notes


def inside_fraction(x: np.ndarray, view: Mapping) -> float:
    """The share of the points x (N, 2) inside the window [xlim] x [ylim] (non-finite ones are outside)."""
    (x0, x1), (y0, y1) = view["xlim"], view["ylim"]
    with np.errstate(invalid="ignore"):
        inside = (x[:, 0] >= x0) & (x[:, 0] <= x1) & (x[:, 1] >= y0) & (x[:, 1] <= y1)
    return float(inside.mean()) if len(x) else 0.0


@torch.no_grad()
def samples_of_flow(flow: Flow, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n base draws z_0 and their images x = f(z_0); the same seed gives the same draws."""
    flow = as_float64(flow)
    z0 = flow.sample_base(n, seed=seed)
    x = flow.forward(z0)
    return z0.numpy(), x.numpy()


# 5000 samples (the slider's most) are 160 kB of z_0 and x: 16 MB holds a hundred flows'
# draws, far more than the sixteen entries that the count allows.
@array_cache(max_bytes=16 * 2**20, max_entries=16)
def explorer_samples(canonical_json: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`samples_of_flow` for a canonical spec, cached by its JSON."""
    return samples_of_flow(Flow.from_spec(json.loads(canonical_json)), n, seed)


@dataclass(frozen=True)
class Step:
    """The distribution after the first k layers: its density on a grid and sample positions."""

    title: str
    density: np.ndarray
    points: np.ndarray


@torch.no_grad()
def steps_of_flow(
    flow: Flow, view: Mapping, titles: list[str], resolution: int = 96, n_points: int = 400, seed: int = 0
) -> tuple[list[Step], np.ndarray, np.ndarray]:
    """z_0, z_1, ..., z_K: each layer's step, as a density and the same samples moving; and the grid."""
    flow = as_float64(flow)
    small_view = {**view, "resolution": resolution}
    z0 = flow.sample_base(n_points, seed=seed)
    trace = flow.trace_forward(z0)
    xs, ys, points = grid_points(small_view)
    steps = []
    for k in range(len(flow.layers) + 1):
        density = torch.exp(flow.prefix(k).log_prob(points)).reshape(len(ys), len(xs)).numpy()
        steps.append(Step(titles[k], density, trace[k].numpy()))
    return steps, xs, ys


STEPS_RESOLUTION = 96  # grid points per axis of each step's picture
STEPS_WORK = MAX_GRID_WORK / 2  # an extra view: half of what the main grid may cost


def steps_resolution(spec: Mapping) -> int:
    """The step pictures' grid: STEPS_RESOLUTION, coarser for a long or costly stack.

    Step k walks the grid back through k layers, so the view costs the sum of every
    prefix of the stack; it is kept within half the spec's bound on one grid's work.
    """
    active = [layer for layer in spec["layers"] if layer.get("enabled", True)]
    work, prefix = 0.0, base_cost(spec["base"])
    for layer in [None, *active]:
        prefix += layer_cost(layer) if layer else 0.0
        work += prefix
    return max(16, min(STEPS_RESOLUTION, math.isqrt(int(STEPS_WORK / work))))


# One entry holds K + 1 densities of at most 96² and 400 points each: about 80 kB a step, so a
# few MB for a long stack. 64 MB keeps the sixteen most recent flows' steps.
@array_cache(max_bytes=64 * 2**20, max_entries=16)
def explorer_steps(canonical_json: str, titles: tuple[str, ...]) -> tuple[list[Step], np.ndarray, np.ndarray]:
    """:func:`steps_of_flow` for a canonical spec, cached by its JSON."""
    spec = json.loads(canonical_json)
    return steps_of_flow(Flow.from_spec(spec), spec["view"], list(titles), steps_resolution(spec))


# A flow that is not a spec (a trained one) is keyed by its content (:func:`flow_key`), so its
# pictures are shared like a spec's. Its grid is at most 512² (about 20 MB an entry): 128 MB
# keeps a few flows' views at every resolution offered.
@array_cache(max_bytes=128 * 2**20, max_entries=8, key=lambda flow, view: (flow_key(flow), view_key(view)))
def trained_fields(flow: Flow, view: Mapping) -> dict[str, np.ndarray]:
    """:func:`fields_of_flow` for any flow, cached by its content and the view."""
    return fields_of_flow(flow, view)


# As explorer_samples: 5000 samples are 160 kB.
@array_cache(max_bytes=16 * 2**20, max_entries=16, key=lambda flow, n: (flow_key(flow), int(n)))
def trained_samples(flow: Flow, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`samples_of_flow` for any flow, cached by its content and ``n``."""
    return samples_of_flow(flow, n)


# As explorer_steps: a few MB an entry.
@array_cache(
    max_bytes=64 * 2**20,
    max_entries=8,
    key=lambda flow, view, titles: (flow_key(flow), view_key(view), tuple(titles)),
)
def trained_steps(
    flow: Flow, view: Mapping, titles: tuple[str, ...]
) -> tuple[list[Step], np.ndarray, np.ndarray]:
    """:func:`steps_of_flow` for any flow, cached by its content, the view and the titles."""
    return steps_of_flow(flow, view, list(titles))


@dataclass(frozen=True)
class ProbeRow:
    """One layer's part in log p(x) at a probed point, walking from x back to z_0."""

    layer: str
    point_after: tuple[float, float]  # z_k (the layer's output)
    point_before: tuple[float, float]  # z_{k-1} (the layer's input)
    log_det_inverse: float  # log|det J_{f_k^{-1}}(z_k)|


@dataclass(frozen=True)
class ProbeThroughLayers:
    x: tuple[float, float]
    rows: list[ProbeRow]
    z0: tuple[float, float]
    base_log_prob: float
    log_det_inverse: float
    log_density: float
    inside: bool


@torch.no_grad()
def probe_point(flow: Flow, x: tuple[float, float], names: list[str]) -> ProbeThroughLayers:
    """Walk one point back through the layers and itemise log p(x) = log p_Z(z_0) + sum of log-dets."""
    flow = as_float64(flow)
    point = torch.tensor([list(x)], dtype=torch.float64)
    rows: list[ProbeRow] = []
    total = 0.0
    for name, layer in zip(reversed(names), reversed(flow.layers), strict=True):
        before, log_det = layer.inverse_and_log_det(point)
        rows.append(
            ProbeRow(
                name,
                (float(point[0, 0]), float(point[0, 1])),
                (float(before[0, 0]), float(before[0, 1])),
                float(log_det[0]),
            )
        )
        total += float(log_det[0])
        point = before
    rows.reverse()
    z0 = (float(point[0, 0]), float(point[0, 1]))
    inside = bool(np.isfinite(z0).all() and np.isfinite(total))
    base = float(flow.base(torch.float64).log_prob(point)[0]) if inside else -np.inf
    log_density = base + total if inside else -np.inf
    return ProbeThroughLayers(x, rows, z0, base, total if inside else np.nan, log_density, inside)
