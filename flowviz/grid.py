"""Evaluate a flow on the grid of its view: the arrays every picture is drawn from.

``evaluate(spec)`` is the public entry point (its keys and meanings are the
spec's contract); ``evaluate_flow`` does the same for any :class:`Flow`, a
trained one included. Array element [i, j] belongs to the point (xs[j], ys[i]).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowviz.errors import SpecError
from flowviz.flow import Flow
from flowviz.memo import array_cache, digest
from flowviz.spec import parse_spec


@dataclass(frozen=True)
class Pieces:
    """How to evaluate a costly grid: ``points`` at a time, calling ``between()`` between two pieces."""

    points: int
    between: Callable[[], None]


# Where the caller's context holds Pieces, a grid is evaluated in pieces: a server lets a costly
# grid wait between them while other visitors' quick runs go first (flowviz.ui.fairness).
# Without, in one piece, as always.
in_pieces: ContextVar[Pieces | None] = ContextVar("in_pieces", default=None)


def map_in_pieces(function: Callable[[torch.Tensor], Any], points: torch.Tensor) -> Any:
    """``function(points)`` (a tensor, or a tuple of tensors, one row per point), computed in
    the pieces the context's ``in_pieces`` asks for."""
    pieces = in_pieces.get()
    if pieces is None or len(points) <= pieces.points:
        return function(points)
    parts = []
    for k, piece in enumerate(points.split(max(1, pieces.points))):
        if k:
            pieces.between()
        parts.append(function(piece))
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(column) for column in zip(*parts, strict=True))
    return torch.cat(parts)


def grid_points(view: Mapping) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """xs, ys and the (N*N, 2) float64 tensor of points, row i holding y = ys[i]."""
    n = int(view["resolution"])
    xs = np.linspace(view["xlim"][0], view["xlim"][1], n)
    ys = np.linspace(view["ylim"][0], view["ylim"][1], n)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], -1))
    return xs, ys, points


def cell_area(view: Mapping) -> float:
    n = int(view["resolution"])
    dx = (view["xlim"][1] - view["xlim"][0]) / (n - 1)
    dy = (view["ylim"][1] - view["ylim"][0]) / (n - 1)
    return dx * dy


@torch.no_grad()
def evaluate_flow(flow: Flow, view: Mapping) -> dict[str, np.ndarray]:
    """The arrays of the spec's grid table for ``flow`` over ``view``."""
    flow = as_float64(flow)
    xs, ys, points = grid_points(view)
    n = len(xs)

    def terms_at(chunk: torch.Tensor) -> tuple[torch.Tensor, ...]:
        terms = flow.density_terms(chunk)
        return terms.log_prob, terms.base_log_prob, terms.log_det_inverse, flow.forward_and_log_det(chunk)[1]

    log_density, base_log_prob, log_det_inverse, log_det_forward = map_in_pieces(terms_at, points)
    # A NaN can only come from a forward value that was not finite at the first
    # layer it entered; such a point has stretched beyond float64: +inf.
    log_det_forward = torch.nan_to_num(log_det_forward, nan=torch.inf)
    density = torch.exp(log_density)
    out = {
        "x": xs,
        "y": ys,
        "density": density.reshape(n, n).numpy(),
        "log_density": log_density.reshape(n, n).numpy(),
        "base_log_prob": base_log_prob.reshape(n, n).numpy(),
        "log_det_inverse": log_det_inverse.reshape(n, n).numpy(),
        "log_det_forward": log_det_forward.reshape(n, n).numpy(),
    }
    out["mass"] = np.asarray(out["density"].sum() * cell_area(view))
    return out


def as_float64(flow: Flow) -> Flow:
    """The flow itself when it is float64 already, else a float64 copy (a trained model stays as it is)."""
    return flow if _dtype_of(flow) == torch.float64 else copy.deepcopy(flow).double()


def flow_key(flow: Flow) -> bytes:
    """The canonical form of any flow (a trained one included), to cache what is computed from it.

    A trained network is not a spec, so its key is its content: the base, and for each layer
    its structure (the module's ``repr``), its plain settings and every tensor of its state.
    Equal flows share a key whichever session built them; a changed weight changes it.
    """
    parts: list = [json.dumps(flow.base_spec, sort_keys=True)]
    for layer in flow.layers:
        parts.append(repr(layer))
        settings = {
            name: value
            for name, value in vars(layer).items()
            if not name.startswith("_") and isinstance(value, (bool, int, float, str, tuple))
        }
        parts.append(sorted(settings.items()))
        for name, tensor in layer.state_dict().items():
            parts.extend((name, tensor))
    return digest(*parts)


def view_key(view: Mapping) -> str:
    """A view's canonical JSON (sorted keys): with :func:`flow_key`, the key of a flow's pictures."""
    return json.dumps(view, sort_keys=True, separators=(",", ":"))


def _dtype_of(flow: Flow) -> torch.dtype:
    for tensor in flow.parameters():
        return tensor.dtype
    for tensor in flow.buffers():
        return tensor.dtype
    return torch.float64


def evaluate(spec: Any, resolution: int | None = None, t: float | None = None) -> dict[str, np.ndarray]:
    """Evaluate a spec (a dict, JSON text, or a path to a JSON file) on its view's grid.

    Returns NumPy arrays keyed ``x, y, density, log_density, base_log_prob,
    log_det_inverse, log_det_forward, mass``; see ``flow-spec.md``. ``resolution``
    overrides the view's. ``t`` in [0, K] (K active layers) evaluates the flow at
    time t (:meth:`flowviz.Flow.at`): the first floor(t) layers, then the next one
    part of the way; None is the whole flow. Raises :class:`flowviz.SpecError` for
    a bad spec or a bad t.
    """
    if isinstance(spec, (str, Path)) and not (isinstance(spec, str) and spec.lstrip().startswith("{")):
        spec = Path(spec)
    canonical = parse_spec(spec)
    if resolution is not None:
        canonical["view"] = {**canonical["view"], "resolution": resolution}
        canonical = parse_spec(canonical)
    time = None if t is None else check_time(t, canonical)
    cached = _evaluate_canonical(json.dumps(canonical, separators=(",", ":")), time)
    return {key: value.copy() for key, value in cached.items()}


def check_time(t: Any, canonical: Mapping) -> float:
    """t as a float, or SpecError unless it is a finite number in [0, K], K the spec's active layers."""
    count = sum(1 for layer in canonical["layers"] if layer.get("enabled", True))
    try:
        value = float(t)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(t, bool) or not (math.isfinite(value) and 0.0 <= value <= count):
        raise SpecError("t", f"{t!r}, but it must be a finite number from 0 to {count} (the active layers)")
    return value


# One 512² evaluation is about 10 MB of arrays, a 2048² one about 150 MB: 256 MB holds one of
# those, or the 32 most recent ordinary ones.
@array_cache(max_bytes=256 * 2**20, max_entries=32)
def _evaluate_canonical(canonical_json: str, t: float | None = None) -> dict[str, np.ndarray]:
    """Evaluation keyed by the canonical spec and time (within 256 MB); the arrays are shared, so read-only."""
    canonical = json.loads(canonical_json)
    flow = Flow.from_spec(canonical)
    arrays = evaluate_flow(flow if t is None else flow.at(t), canonical["view"])
    for value in arrays.values():
        value.flags.writeable = False
    return arrays


@torch.no_grad()
def deformed_grid(
    flow: Flow, view: Mapping, lines: int = 17, points_per_line: int = 240
) -> dict[str, np.ndarray]:
    """Evenly spaced lines in z-space and their images under the flow.

    Returns ``z`` and ``x``: arrays (M, 2) holding every line's points, the lines
    separated by a NaN row so one plotly trace draws them all. The lines span the
    view window; images that leave float64 break the line there.
    """
    (x0, x1), (y0, y1) = view["xlim"], view["ylim"]
    ts = np.linspace(0.0, 1.0, points_per_line)
    segments = []
    nan_row = np.full((1, 2), np.nan)
    for u in np.linspace(0.0, 1.0, lines):
        vertical = np.stack([np.full_like(ts, x0 + u * (x1 - x0)), y0 + ts * (y1 - y0)], -1)
        horizontal = np.stack([x0 + ts * (x1 - x0), np.full_like(ts, y0 + u * (y1 - y0))], -1)
        segments += [vertical, nan_row, horizontal, nan_row]
    z = np.concatenate(segments)
    flow = as_float64(flow)
    x = flow.forward(torch.from_numpy(z)).numpy()
    x = np.where(np.isfinite(x).all(-1, keepdims=True), x, np.nan)
    return {"z": z, "x": x}
