"""What every picture in flowviz shares: colour meanings, colour-mapped images, axes.

Colour has one meaning everywhere:
- densities: Viridis, a perceptually uniform sequential scale (dark = little mass);
- log-determinants, volume change: a diverging scale centred on 0, red where area
  grows (expansion, log|det J| > 0), blue where it shrinks (compression, < 0),
  white where it is preserved.

Large fields are sent to the browser as colour-mapped PNG images laid under the
axes (cheap to send, cheap to draw), with a small transparent heatmap over them
that carries the hover values and the colour bar.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image
from plotly.colors import get_colorscale, sample_colorscale

from flowviz.memo import array_cache

DENSITY_SCALE = "Viridis"
# Blue (compression) through white (preserved) to red (expansion).
VOLUME_SCALE = [
    [0.0, "#2166ac"],
    [0.25, "#67a9cf"],
    [0.5, "#f7f7f7"],
    [0.75, "#ef8a62"],
    [1.0, "#b2182b"],
]
VOLUME_LEGEND = "red: area grows (expansion) · white: area kept · blue: area shrinks (compression)"
GRID_LINE_COLOUR = "rgba(40, 40, 40, 0.55)"
SAMPLE_COLOUR = "rgba(255, 255, 255, 0.75)"
DATA_COLOUR = "rgba(220, 40, 40, 0.8)"
OUTSIDE_RGBA = (215, 215, 215, 255)  # points outside the image of the flow


# A table is 768 bytes: 64 kB is ample for every scale the app names, the count bounds the rest.
@array_cache(max_bytes=64 * 2**10, max_entries=16)
def colour_table(scale: str | tuple, size: int = 256) -> np.ndarray:
    """A (size, 3) uint8 lookup table sampled evenly along a plotly colour scale."""
    colours = get_colorscale(scale) if isinstance(scale, str) else [list(p) for p in scale]
    rgb = sample_colorscale(colours, np.linspace(0.0, 1.0, size), colortype="tuple")
    return np.round(np.asarray(rgb) * 255.0).astype(np.uint8)


def scale_key(scale) -> str | tuple:
    """A hashable form of a colour scale (a name, or a tuple of (position, colour) pairs)."""
    return scale if isinstance(scale, str) else tuple((float(p), c) for p, c in scale)


def _finite_limits(shown: np.ndarray, vmin: float, vmax: float) -> tuple[float, float]:
    """The colour range with each non-finite end replaced by the extreme of the finite values (0 and 1 if none)."""
    if not math.isfinite(vmin):
        vmin = float(shown.min()) if shown.size else 0.0
    if not math.isfinite(vmax):
        vmax = float(shown.max()) if shown.size else 1.0
    return vmin, vmax


def colour_map(values: np.ndarray, vmin: float, vmax: float, scale=DENSITY_SCALE) -> np.ndarray:
    """Map a 2D array to an (H, W, 4) uint8 RGBA image; non-finite values get OUTSIDE_RGBA.

    Row 0 of ``values`` is the lowest y; the image is flipped so it reads top-down.
    Any limits are safe: an infinite or NaN limit is replaced by the finite values'
    own extreme, and the position in the range is computed from halves, so a span
    beyond float64 (-1e308 to 1e308) does not overflow to inf/inf = NaN.
    """
    table = colour_table(scale_key(scale))
    finite = np.isfinite(values)
    vmin, vmax = _finite_limits(values[finite], float(vmin), float(vmax))
    half_span = vmax / 2 - vmin / 2
    with np.errstate(all="ignore"):
        t = (np.where(finite, values, vmin) / 2 - vmin / 2) / (half_span if half_span > 0 else 1.0)
    t = np.nan_to_num(np.clip(t, 0.0, 1.0), nan=0.0)
    index = np.round(t * (len(table) - 1)).astype(np.intp)
    rgba = np.empty((*values.shape, 4), dtype=np.uint8)
    rgba[..., :3] = table[index]
    rgba[..., 3] = 255
    rgba[~finite] = OUTSIDE_RGBA
    return rgba[::-1]


def png_bytes(rgba: np.ndarray) -> bytes:
    """PNG-encode an RGBA image (fast compression: speed over bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_data_uri(rgba: np.ndarray) -> str:
    """PNG-encode an RGBA image as a data URI."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgba)).decode("ascii")


def image_under_axes(uri: str, xlim, ylim, xref: str = "x", yref: str = "y") -> dict:
    """A layout image stretched over [xlim] x [ylim] of the given axes, drawn below the traces.

    The grid's points are the *centres* of the image's pixels, so the image extends
    half a cell beyond the first and last grid points.
    """
    return {
        "source": uri,
        "xref": xref,
        "yref": yref,
        "x": xlim[0],
        "y": ylim[1],
        "sizex": xlim[1] - xlim[0],
        "sizey": ylim[1] - ylim[0],
        "xanchor": "left",
        "yanchor": "top",
        "sizing": "stretch",
        "layer": "below",
    }


def pixel_extent(xs: np.ndarray, ys: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """The extent an image of grid values covers: half a cell beyond the outer grid points."""
    dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
    dy = (ys[-1] - ys[0]) / max(len(ys) - 1, 1)
    return (xs[0] - dx / 2, xs[-1] + dx / 2), (ys[0] - dy / 2, ys[-1] + dy / 2)


def symmetric_limit(values: np.ndarray, quantile: float = 0.995, floor: float = 0.05) -> float:
    """A colour limit L for a diverging scale on [-L, L] that ignores a few extreme points."""
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return 1.0
    return float(max(np.quantile(finite, quantile), floor))


def downsample(values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every k-th row and column so that at most ``size`` remain; returns (array, index)."""
    n = values.shape[0]
    step = max(1, int(np.ceil(n / size)))
    index = np.arange(0, n, step)
    return values[np.ix_(index, index)], index


# px: a chart narrower than this (a phone) takes its figure's narrow variant (layout.meta.narrow),
# which the live chart applies (flowviz.ui.live_chart): e.g. the Explorer stacks its panels there.
NARROW_BELOW = 600


def axis_style(title: str, **extra) -> dict:
    return {
        "title": {"text": title, "standoff": 4},
        "showgrid": False,
        "zeroline": False,
        "ticks": "outside",
        "mirror": True,
        "linecolor": "#888",
        **extra,
    }
