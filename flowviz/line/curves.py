"""What the 1D page draws: windows, grids with the breaks of f, and the curves."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from flowviz.line.map import DTYPE, LineBase, LineMap, _t
from flowviz.line.quadrature import (
    _preimage,
    base_mass,
    breakpoints_x,
    grid_with_breaks,
    pushforward_density,
    pushforward_mass,
    reaches_image_end,
)


def view_ranges(base: LineBase, fmap: LineMap) -> tuple[tuple[float, float], tuple[float, float]]:
    """The z window of the base, and the x window: its image under f with a margin."""
    z_lo, z_hi = base.z_range
    with torch.no_grad():
        x_ends = sorted(float(v) for v in fmap.forward(_t([z_lo, z_hi])))
    pad = 0.08 * (x_ends[1] - x_ends[0]) or 1.0
    return (z_lo, z_hi), (x_ends[0] - pad, x_ends[1] + pad)


def probe_range(base: LineBase, fmap: LineMap) -> tuple[float, float]:
    """Where the probe may go: the image of the base's z window, kept strictly inside the image of f.

    A wide base through tanh reaches z where tanh(k z) rounds to +-1, outside the open
    image (-1, 1). So every end closer than 1e-3 of the range's width to a finite end of
    the image is pulled in to that distance, where f^{-1} and its derivative are still well
    resolved (on the page's slider, whose step is at least 1/2000 of the width, this moves
    an end by at most two steps).
    """
    with torch.no_grad():
        lo, hi = sorted(float(v) for v in fmap.forward(_t(list(base.z_range))))
    image_lo, image_hi = fmap.image()
    margin = 1e-3 * (min(hi, image_hi) - max(lo, image_lo))
    if math.isfinite(image_lo):
        lo = max(lo, image_lo + margin)
    if math.isfinite(image_hi):
        hi = min(hi, image_hi - margin)
    return lo, hi


def sample_histogram(
    base: LineBase, fmap: LineMap, count: int, x_range: tuple[float, float], bins: int = 60, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and densities (count / (total * width)) of f(z) for ``count`` draws z ~ p_Z."""
    with torch.no_grad():
        samples = fmap.forward(base.sample(count, seed))
    edges = np.linspace(x_range[0], x_range[1], bins + 1)
    counts, _ = np.histogram(samples.numpy(), bins=edges)
    return edges, counts / (count * np.diff(edges))


def mass_in_window_cdf(base: LineBase, fmap: LineMap, x_lo: float, x_hi: float) -> float:
    """P(x_lo < X < x_hi) from the base CDF at the preimages of the window's ends."""
    lo_z, hi_z = sorted((_preimage(fmap, x_lo), _preimage(fmap, x_hi)))
    return base_mass(base, lo_z, hi_z)


@dataclass(frozen=True)
class LineCurves:
    """What the 1D figure draws for one base and map: p_Z, the graph of f, p_X, and the mass in view."""

    z: np.ndarray  # z grid (with points either side of each jump of p_Z)
    base_density: np.ndarray  # p_Z on the z grid
    x: np.ndarray  # x grid (with points either side of each jump or kink of p_X)
    density: np.ndarray  # p_X on the x grid
    curve_z: np.ndarray  # the graph of f: z, f(z) and log|f'(z)|
    curve_x: np.ndarray
    curve_log_slope: np.ndarray
    z_range: tuple[float, float]
    x_range: tuple[float, float]
    probe_range: tuple[float, float]
    knots_z: tuple[float, ...]  # the knots of f (where f' jumps or bends), z and f(z)
    knots_x: tuple[float, ...]
    mass_in_view: float  # quadrature of p_X over the x window
    mass_in_view_cdf: float  # the same from the base CDF at the preimages of the window's ends
    reaches_image_end: bool = False  # the window holds a finite end of f's image (where f may be flat)


def line_curves(base: LineBase, fmap: LineMap, resolution: int = 300, masses: bool = True) -> LineCurves:
    """The curves of the 1D figure and the masses on its window. ``masses=False`` leaves the
    two masses NaN: their quadrature costs far more than the curves, which is all a slider's
    preview frames draw."""
    z_range, x_range = view_ranges(base, fmap)
    with torch.no_grad():
        z = grid_with_breaks(*z_range, resolution, base.breakpoints)
        x = grid_with_breaks(*x_range, resolution, breakpoints_x(base, fmap))
        curve_z = torch.linspace(*z_range, resolution, dtype=DTYPE)
        curve_x, curve_log_slope = fmap.forward_and_log_det(curve_z)
        base_density = torch.exp(base.base_log_prob(z))
    return LineCurves(
        z=z.numpy(),
        base_density=base_density.numpy(),
        x=x.numpy(),
        density=pushforward_density(base, fmap, x).numpy(),
        curve_z=curve_z.numpy(),
        curve_x=curve_x.numpy(),
        curve_log_slope=curve_log_slope.numpy(),
        z_range=z_range,
        x_range=x_range,
        probe_range=probe_range(base, fmap),
        knots_z=tuple(fmap.knots()[0]),
        knots_x=tuple(fmap.knots()[1]),
        mass_in_view=pushforward_mass(base, fmap, *x_range) if masses else float("nan"),
        mass_in_view_cdf=mass_in_window_cdf(base, fmap, *x_range) if masses else float("nan"),
        reaches_image_end=reaches_image_end(fmap, *x_range),
    )
