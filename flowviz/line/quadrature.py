"""p_X on a line, and the two routes to an interval's probability: the base CDF and quadrature of p_X."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flowviz.line.map import DTYPE, LineBase, LineMap, _t


def pushforward_log_prob(base: LineBase, fmap: LineMap, x: Tensor) -> Tensor:
    """log p_X(x) = log p_Z(f^{-1}(x)) + log|d f^{-1}/dx|; -inf outside the image of f."""
    z, log_det_inverse = fmap.inverse_and_log_det(x)
    log_p = base.base_log_prob(z) + log_det_inverse
    return torch.where(torch.isnan(log_p), torch.full_like(log_p, -math.inf), log_p)


def pushforward_density(base: LineBase, fmap: LineMap, x: Tensor) -> Tensor:
    with torch.no_grad():
        return torch.exp(pushforward_log_prob(base, fmap, x))


def breakpoints_x(base: LineBase, fmap: LineMap) -> list[float]:
    """Every x where p_X may jump or bend: image ends, mapped base jumps, mapped kinks of f."""
    with torch.no_grad():
        mapped_jumps = (
            [float(v) for v in fmap.forward(_t(list(base.breakpoints)))] if base.breakpoints else []
        )
    points = [*fmap.image(), *mapped_jumps, *fmap.kinks_x()]
    return sorted(p for p in points if math.isfinite(p))


_GL_NODES, _GL_WEIGHTS = (torch.from_numpy(a) for a in np.polynomial.legendre.leggauss(20))


def _gauss_legendre(density: Callable[[Tensor], Tensor], lo: Tensor, hi: Tensor) -> Tensor:
    """20-point Gauss-Legendre on each panel [lo_i, hi_i] at once."""
    half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
    points = mid[:, None] + half[:, None] * _GL_NODES[None, :]
    return (density(points) * _GL_WEIGHTS[None, :]).sum(-1) * half


def integrate(
    density: Callable[[Tensor], Tensor],
    lo: float,
    hi: float,
    breakpoints: Sequence[float] = (),
    tolerance: float = 1e-11,
    max_panels: int = 2048,
) -> float:
    """The integral of ``density`` over [lo, hi] by adaptive 20-point Gauss-Legendre.

    The range is first split at ``breakpoints`` (where the integrand jumps or bends, so
    every panel sees a smooth function). Then each panel whose estimate changes by more
    than its share of ``tolerance`` (or one part in 1e10 of itself) when computed on its
    two halves is halved again: panels gather where p_X is steep, e.g. at the ends of
    tanh's image, where a Gaussian's tails pile up within 1e-9 of x = 1. A panel about
    1e-12 wide is not split further (its nodes carry rounding errors a few thousandths
    of its width, so its integrand is noisy), and at most ``max_panels`` stay open.
    """
    if not hi > lo:
        return 0.0
    edges = _t([lo, *sorted(b for b in breakpoints if lo < b < hi), hi])
    panel_lo, panel_hi = edges[:-1], edges[1:]
    coarse = _gauss_legendre(density, panel_lo, panel_hi)
    total = 0.0
    while len(panel_lo):
        mid = 0.5 * (panel_lo + panel_hi)
        left, right = _gauss_legendre(density, panel_lo, mid), _gauss_legendre(density, mid, panel_hi)
        fine = left + right
        share = torch.maximum(tolerance * (panel_hi - panel_lo) / (hi - lo), 1e-10 * torch.abs(fine))
        done = (torch.abs(fine - coarse) <= share) | (
            panel_hi - panel_lo <= 1e-12 * torch.abs(mid).clamp(min=1)
        )
        if 2 * int((~done).sum()) > max_panels:
            done = torch.ones_like(done)
        total += float(fine[done].sum())
        keep = ~done
        # Each half's estimate so far becomes the coarse one it is checked against next.
        coarse = torch.cat([left[keep], right[keep]])
        panel_lo, panel_hi = torch.cat([panel_lo[keep], mid[keep]]), torch.cat([mid[keep], panel_hi[keep]])
    return total


def mass_reach(base: LineBase) -> tuple[float, float]:
    """A z window outside which p_Z has no mass float64 can add to a probability near 1.

    The base's window ``z_range`` widened 2.5 times about its centre: mean +- 10 std for a
    Gaussian (1.5e-23 outside), at least +- 10 std of each component of a mixture, and all
    of a uniform. ``z_range`` alone leaves about 6e-5 of a Gaussian outside it.
    """
    z_lo, z_hi = base.z_range
    centre, half = 0.5 * (z_lo + z_hi), 0.5 * (z_hi - z_lo)
    return centre - 2.5 * half, centre + 2.5 * half


def panel_edges_x(
    base: LineBase, fmap: LineMap, z_window: tuple[float, float] | None = None, count: int = 257
) -> list[float]:
    """Where to start the quadrature's panels in x: the breakpoints, and f of even z grids.

    A map can squeeze a feature of p_Z into a sliver of x (a narrow component through
    tanh lands within 1e-8 of x = 1), which a quadrature started on a few even panels in x
    would step over without noticing. Starting panels at the images of an even grid over
    the base's window gives every feature of p_Z at least one panel of its own; the nodes
    and weights stay in x, so p_X is still integrated over x.

    ``z_window``: the preimage of the range being integrated. Its own even grid is mapped
    too (clipped to :func:`mass_reach`), so mass beyond the base's window, e.g. a
    Gaussian's tail that exp stretches over [e^24, e^48], is resolved wherever it lies.
    """
    grids = [torch.linspace(*base.z_range, count, dtype=DTYPE)]
    if z_window is not None:
        reach_lo, reach_hi = mass_reach(base)
        lo, hi = max(min(z_window), reach_lo), min(max(z_window), reach_hi)
        if lo < hi:
            grids.append(torch.linspace(lo, hi, count, dtype=DTYPE))
    with torch.no_grad():
        images = fmap.forward(torch.cat(grids))
    return sorted({*breakpoints_x(base, fmap), *(float(v) for v in images if torch.isfinite(v))})


def pushforward_mass(
    base: LineBase, fmap: LineMap, x_lo: float, x_hi: float, z_window: tuple[float, float] | None = None
) -> float:
    """P(x_lo < X < x_hi) by quadrature of p_X over [x_lo, x_hi] (never through the base CDF).

    ``z_window``: the preimage of [x_lo, x_hi] where the caller knows it (a carried
    interval's [z_lo, z_hi]); by default f^{-1} of the ends, -inf / +inf beyond the image.
    It only places the panels' first edges (see :func:`panel_edges_x`).
    """
    if z_window is None:
        z_window = (_preimage(fmap, x_lo), _preimage(fmap, x_hi))
    edges = panel_edges_x(base, fmap, z_window)
    return integrate(lambda x: pushforward_density(base, fmap, x), x_lo, x_hi, edges)


def base_mass(base: LineBase, z_lo: float, z_hi: float) -> float:
    """P(z_lo < Z < z_hi) from the base distribution's CDF."""
    cdf = base.cdf(_t([z_lo, z_hi]))
    return float(cdf[1] - cdf[0])


def near_image_end(fmap: LineMap, x: float) -> bool:
    """True where x is within 1e-12 of a finite end of f's image.

    There float64 cannot tell f's values apart (tanh(z) rounds to 1 for z > 19), so the
    mass that f piles up against the end cannot be resolved by quadrature in x.
    """
    return any(math.isfinite(end) and abs(x - end) <= 1e-12 * max(1.0, abs(end)) for end in fmap.image())


def reaches_image_end(fmap: LineMap, x_lo: float, x_hi: float) -> bool:
    """True where [x_lo, x_hi] holds, or ends within 1e-12 of, a finite end of f's image.

    Only then can quadrature in x miss mass because f is flat to float64 precision
    (see :func:`near_image_end`); a window inside an image that is all of R never can.
    """
    return any(
        math.isfinite(end) and x_lo - 1e-12 * max(1.0, abs(end)) <= end <= x_hi + 1e-12 * max(1.0, abs(end))
        for end in fmap.image()
    )


@dataclass(frozen=True)
class CarriedInterval:
    """[z_lo, z_hi] and its image [x_lo, x_hi] under f, the probability of each, and fine grids
    over both (with p_Z and p_X there) for shading."""

    z_lo: float
    z_hi: float
    x_lo: float
    x_hi: float
    mass_base: float  # base CDF difference over [z_lo, z_hi]
    mass_pushforward: float  # quadrature of p_X over [x_lo, x_hi]
    at_image_end: bool  # an end of [x_lo, x_hi] lies where f is flat to float64 precision
    band_z: np.ndarray
    band_base_density: np.ndarray
    band_x: np.ndarray
    band_density: np.ndarray

    @property
    def mass_difference(self) -> float:
        return abs(self.mass_base - self.mass_pushforward)


def carry_interval(
    base: LineBase, fmap: LineMap, z_start: float, width: float, resolution: int = 100
) -> CarriedInterval:
    """Carry [z, z + dz] through f; its probability computed on each side by its own integral."""
    z_lo, z_hi = z_start, z_start + width
    with torch.no_grad():
        ends = fmap.forward(_t([z_lo, z_hi]))
        x_lo, x_hi = sorted(float(v) for v in ends)  # a decreasing f swaps the ends
        band_z = grid_with_breaks(z_lo, z_hi, resolution, base.breakpoints)
        band_x = grid_with_breaks(x_lo, x_hi, resolution, breakpoints_x(base, fmap))
        band_base_density = torch.exp(base.base_log_prob(band_z))
    return CarriedInterval(
        z_lo=z_lo,
        z_hi=z_hi,
        x_lo=x_lo,
        x_hi=x_hi,
        mass_base=base_mass(base, z_lo, z_hi),
        mass_pushforward=pushforward_mass(base, fmap, x_lo, x_hi, (z_lo, z_hi)),
        at_image_end=near_image_end(fmap, x_lo) or near_image_end(fmap, x_hi),
        band_z=band_z.numpy(),
        band_base_density=band_base_density.numpy(),
        band_x=band_x.numpy(),
        band_density=pushforward_density(base, fmap, band_x).numpy(),
    )


def grid_with_breaks(lo: float, hi: float, count: int, breaks: Sequence[float]) -> Tensor:
    """An even grid over [lo, hi] plus points just either side of each break (sharp edges in a plot)."""
    eps = 1e-9 * (hi - lo)
    extra = [v for b in breaks if lo < b < hi for v in (b - eps, b + eps)]
    return torch.sort(torch.cat([torch.linspace(lo, hi, count, dtype=DTYPE), _t(extra)])).values


def _preimage(fmap: LineMap, x: float) -> float:
    """f^{-1}(x), or -inf / +inf for x beyond the lower / upper end of the image.

    Only increasing maps have a bounded image here (a decreasing affine map covers the line).
    """
    lo, hi = fmap.image()
    if x <= lo:
        return -math.inf
    if x >= hi:
        return math.inf
    with torch.no_grad():
        return float(fmap.inverse(_t(x)))
