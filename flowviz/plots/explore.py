"""Figures of the 2D Explorer, built from plain arrays (no Streamlit).

Every figure is a plain dict (plotly's JSON form): building it costs almost
nothing, and large fields travel as colour-mapped PNGs laid under the axes, so
the browser redraws in a few tens of milliseconds. Panels of the same space
(z or x) share their axes, so zooming one zooms the others.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flowviz.memo import array_cache, digest
from flowviz.plots.common import (
    DENSITY_SCALE,
    GRID_LINE_COLOUR,
    NARROW_BELOW,
    SAMPLE_COLOUR,
    VOLUME_SCALE,
    axis_style,
    colour_map,
    downsample,
    image_under_axes,
    pixel_extent,
    png_data_uri,
    symmetric_limit,
)

HOVER_CELLS = 48  # the hover layer's resolution: enough to read values, cheap to send
LOG_DENSITY_RANGE = 12.0  # nats shown below the peak in log scale


@dataclass(frozen=True)
class Panel:
    """One square view: a field on the grid, its colour scale and what to draw over it."""

    title: str
    values: np.ndarray  # (N, N) on the grid, row i at ys[i]
    vmin: float
    vmax: float
    scale: object
    hover_label: str
    overlay: str | None = None  # "z_lines", "x_lines" or None
    colourbar: str | None = None  # the colour bar's title, or None for none


NICE_STEPS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten that is >= value.

    Colour ranges snap to these, so they stay put while a slider moves a little: the
    colours keep their meaning from one frame to the next (and the colour bars need no redraw).
    """
    if not np.isfinite(value) or value <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(value))
    with np.errstate(over="ignore"):  # near float64's largest, a nice value may not exist: keep the value
        for step in NICE_STEPS:
            if step * power >= value * (1 - 1e-12):
                return float(step * power) if np.isfinite(step * power) else float(value)
        return float(10 * power) if np.isfinite(10 * power) else float(value)


def density_limits(fields: Sequence[np.ndarray], log_scale: bool) -> tuple[float, float]:
    """A shared colour range for density panels, robust to a few spiky cells, snapped to nice values."""
    finite = np.concatenate([f[np.isfinite(f)].ravel() for f in fields])
    if finite.size == 0:
        return (0.0, 1.0)
    if log_scale:
        top = float(np.ceil(np.quantile(finite, 0.999) * 2) / 2)  # half-nat steps
        return (top - LOG_DENSITY_RANGE, top)
    return (0.0, nice_ceiling(float(np.quantile(finite, 0.998))))


def _axis_names(index: int) -> tuple[str, str]:
    suffix = "" if index == 0 else str(index + 1)
    return f"x{suffix}", f"y{suffix}"


def _domains(rows: int, cols: int, gap_x: float = 0.1, gap_y: float = 0.12):
    width = (1.0 - gap_x * (cols - 1)) / cols
    height = (1.0 - gap_y * (rows - 1)) / rows
    for r in range(rows):
        for c in range(cols):
            x0 = c * (width + gap_x)
            y1 = 1.0 - r * (height + gap_y)
            yield (
                (round(x0, 6), round(min(x0 + width, 1.0), 6)),
                (round(max(y1 - height, 0.0), 6), round(y1, 6)),
            )


def grid_figure(
    panels: Sequence[Panel],
    xs: np.ndarray,
    ys: np.ndarray,
    cols: int,
    spaces: Sequence[str],
    lines: dict[str, np.ndarray] | None = None,
    samples: dict[int, np.ndarray] | None = None,
    markers: dict[int, tuple[float, float]] | None = None,
    height: int = 820,
    hover: bool | Sequence[int] = True,
    axis_titles: Sequence[tuple[str, str]] | None = None,
) -> dict:
    """A figure of square panels in a grid; panels with the same ``spaces`` entry share axes.

    ``lines``: {"z_lines": (M, 2), "x_lines": (M, 2)} drawn where a panel asks for them.
    ``samples``: {panel index: (n, 2) points} scattered over that panel.
    ``markers``: {panel index: (x, y)}: a probed point, drawn as a cross.
    ``hover``: True, False, or the panel indices that get a transparent hover layer
    (values under the cursor); the other panels' colour bars ride on a 2x2 stub.
    ``axis_titles``: each panel's (horizontal, vertical) axis titles; by default the
    coordinates of its space, e.g. (x₁, x₂).
    """
    rows = int(np.ceil(len(panels) / cols))
    xlim, ylim = pixel_extent(xs, ys)
    layout: dict = {
        "height": height,
        "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        "showlegend": False,
        "uirevision": "keep-zoom",
        "images": [],
        "annotations": [],
        "plot_bgcolor": "white",
        "hovermode": "closest",
    }
    data: list[dict] = []
    colourbar_traces: dict[int, int] = {}  # index in data -> panel, for traces that may carry a colour bar
    first_of_space: dict[str, str] = {}
    hover_index = downsample(np.zeros((len(ys), len(xs))), HOVER_CELLS)[1]
    # A colour bar beside a panel that is not the last of its row needs room before the next panel.
    inner_bar = any(p.colourbar for k, p in enumerate(panels) if k % cols != cols - 1)
    domains = list(_domains(rows, cols, gap_x=0.17 if inner_bar else 0.1))
    for i, panel in enumerate(panels):
        xname, yname = _axis_names(i)
        xkey, ykey = "xaxis" + xname[1:], "yaxis" + yname[1:]
        (dx0, dx1), (dy0, dy1) = domains[i]
        space = spaces[i]
        title_x, title_y = axis_titles[i] if axis_titles else (f"{space}₁", f"{space}₂")
        layout[xkey] = axis_style(title_x, domain=[dx0, dx1], range=list(xlim), anchor=yname)
        layout[ykey] = axis_style(
            title_y,
            domain=[dy0, dy1],
            range=list(ylim),
            anchor=xname,
            scaleanchor=xname,
            scaleratio=1,
            constrain="domain",
        )
        layout[xkey]["constrain"] = "domain"
        if space in first_of_space:
            # A matching axis follows its partner's equal-aspect constraint; it may not declare its own.
            layout[xkey]["matches"] = first_of_space[space]
            layout[ykey]["matches"] = "y" + first_of_space[space][1:]
            del layout[ykey]["scaleanchor"], layout[ykey]["scaleratio"]
        else:
            first_of_space[space] = xname
        uri = field_image(panel.values, panel.vmin, panel.vmax, panel.scale)
        # named, so a slider's preview frames can find the picture they replace
        layout["images"].append({**image_under_axes(uri, xlim, ylim, xname, yname), "name": f"panel{i}"})
        layout["annotations"].append(
            {
                "text": f"<b>{panel.title}</b>",
                "xref": f"{xname} domain",
                "yref": f"{yname} domain",
                "x": 0.5,
                "y": 1.0,
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 13},
            }
        )
        hovered = hover if isinstance(hover, bool) else i in hover
        if hovered:
            data.append(_hover_layer(panel, xs, ys, hover_index, xname, yname, (dx1, dy0, dy1)))
        else:  # the colour bar, if any; a panel with no heatmap at all gets NaN axis lines from plotly
            data.append(_colourbar_stub(panel, xlim, ylim, xname, yname, (dx1, dy0, dy1)))
        # named as its picture, so a slider's preview frame can say what its colours mean there
        data[-1]["name"] = f"panel{i}"
        if hovered or panel.colourbar:
            colourbar_traces[len(data) - 1] = i
        panel_lines = lines.get(panel.overlay) if (panel.overlay and lines) else None
        panel_points = samples.get(i) if samples else None
        if panel_lines is not None or panel_points is not None:
            uri = overlay_image(panel_lines, panel_points, xlim, ylim)
            layout["images"].append(
                {
                    **image_under_axes(uri, xlim, ylim, xname, yname),
                    "layer": "above",
                    "name": f"panel{i}-overlay",
                }
            )
        if markers and i in markers:
            data.append(_marker_trace(markers[i], xname, yname))
    if cols > 1:
        layout["meta"] = {"narrow": _one_column(panels, colourbar_traces, data)}
    return {"data": data, "layout": layout}


NARROW_PANEL = 300  # px of height per panel when stacked


def _one_column(panels: Sequence[Panel], colourbar_traces: dict[int, int], data: list[dict]) -> dict:
    """The same figure with its panels stacked, for a chart narrower than NARROW_BELOW pixels.

    Side by side on a phone, panels shrink to stamps and their titles and axis labels run into
    each other. The live chart applies this where it is that narrow: the axes' domains, the colour
    bars' places and the height; everything else (images, titles, overlays) follows the axes.
    """
    width = 0.8  # the rest of the width: the colour bars and their labels
    axes: dict[str, dict] = {}
    places = {}
    for i, (_, (dy0, dy1)) in enumerate(_domains(len(panels), 1, gap_y=0.3 / len(panels))):
        xname, yname = _axis_names(i)
        axes["xaxis" + xname[1:]] = {"domain": [0.0, width]}
        axes["yaxis" + yname[1:]] = {"domain": [dy0, dy1]}
        places[i] = (width, dy0, dy1)
    colourbars = {
        str(k): _colourbar(panels[i], places[i])
        for k, i in colourbar_traces.items()
        if data[k].get("showscale", True) and "colorbar" in data[k]
    }
    return {
        "below": NARROW_BELOW,
        "height": NARROW_PANEL * len(panels) + 60,
        "layout": axes,
        "colorbars": colourbars,
    }


def _marker_trace(point: tuple[float, float], xname: str, yname: str) -> dict:
    return {
        "type": "scatter",
        "mode": "markers",
        "x": [point[0]],
        "y": [point[1]],
        "xaxis": xname,
        "yaxis": yname,
        "marker": {"symbol": "x-thin", "size": 14, "line": {"width": 3, "color": "#ff2d55"}},
        "hoverinfo": "skip",
    }


def _colourbar(panel: Panel, place) -> dict:
    right, bottom, top = place
    return {
        "title": {"text": panel.colourbar, "side": "right"},
        "x": right + 0.005,
        "xanchor": "left",
        "y": (bottom + top) / 2,
        "len": (top - bottom) * 0.95,
        "thickness": 12,
        "outlinewidth": 0,
    }


def _colourbar_stub(panel: Panel, xlim, ylim, xname: str, yname: str, place) -> dict:
    """An invisible 2x2 heatmap that carries a colour bar (or none): it stays the same while the
    colour range does, so redrawing a figure with new images costs no plotly work. Every panel
    gets one or a hover layer: plotly draws a subplot holding only images with NaN axis lines."""
    return {
        "type": "heatmap",
        "x": [xlim[0], xlim[1]],
        "y": [ylim[0], ylim[1]],
        "z": [[panel.vmin, panel.vmax], [panel.vmin, panel.vmax]],
        "xaxis": xname,
        "yaxis": yname,
        "opacity": 0,
        "zmin": panel.vmin,
        "zmax": panel.vmax,
        "colorscale": panel.scale,
        "showscale": panel.colourbar is not None,
        "hoverinfo": "skip",
        **({"colorbar": _colourbar(panel, place)} if panel.colourbar else {}),
    }


def _hover_layer(panel: Panel, xs, ys, index, xname, yname, place) -> dict:
    """A transparent coarse heatmap: values under the cursor (and the colour bar, if any).

    Marked ``meta: "lazy"``: the live chart may refresh it a moment after the images,
    so that dragging a slider only swaps images.
    """
    values = panel.values[np.ix_(index, index)].astype(np.float32)
    values = np.where(np.isfinite(values), values, np.nan)
    trace = {
        "type": "heatmap",
        "x": xs[index].astype(np.float32),
        "y": ys[index].astype(np.float32),
        "z": values,
        "xaxis": xname,
        "yaxis": yname,
        "opacity": 0,
        "zmin": panel.vmin,
        "zmax": panel.vmax,
        "colorscale": panel.scale,
        "showscale": panel.colourbar is not None,
        "hovertemplate": f"({xname[0]}₁, {xname[0]}₂) = (%{{x:.2f}}, %{{y:.2f}})<br>"
        f"{panel.hover_label} = %{{z:.4g}}<extra></extra>",
        "hoverongaps": False,
        "meta": "lazy",
    }
    if panel.colourbar:
        trace["colorbar"] = _colourbar(panel, place)
    return trace


# An encoded panel is a data URI of tens to hundreds of kB (a 2048² field a few MB): 32 MB keeps
# the recent panels of several flows, so a panel that did not change (the base density while a
# layer's slider moves, the straight z-grid from frame to frame) is not encoded again.
@array_cache(
    max_bytes=32 * 2**20,
    max_entries=64,
    key=lambda values, vmin, vmax, scale: digest("png", values, vmin, vmax, repr(scale)),
)
def field_image(values: np.ndarray, vmin: float, vmax: float, scale) -> str:
    """The colour-mapped PNG of a field, as a data URI."""
    return png_data_uri(colour_map(values, vmin, vmax, scale))


@array_cache(
    max_bytes=32 * 2**20,
    max_entries=64,
    key=lambda lines, points, xlim, ylim: digest(
        "svg",
        lines if lines is not None else 0,
        points if points is not None else 0,
        tuple(xlim),
        tuple(ylim),
    ),
)
def overlay_image(lines: np.ndarray | None, points: np.ndarray | None, xlim, ylim) -> str:
    """:func:`svg_overlay`, remembered: the straight z-grid is the same from frame to frame."""
    return svg_overlay(lines, points, xlim, ylim)


def _svg_number(v: float) -> str:
    return f"{v:.4g}"


def svg_overlay(lines: np.ndarray | None, points: np.ndarray | None, xlim, ylim) -> str:
    """Grid lines and sample points as an SVG image in data coordinates, laid over a panel.

    Vector, so crisp at any zoom; the browser draws it with the image, so a new set
    of lines costs no plotly work. Lines are NaN-separated (M, 2) points.
    """
    width, height = xlim[1] - xlim[0], ylim[1] - ylim[0]
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="none" '
        f'viewBox="{_svg_number(xlim[0])} {_svg_number(-ylim[1])} {_svg_number(width)} {_svg_number(height)}">'
        '<g transform="scale(1,-1)">'
    ]
    if lines is not None and len(lines):
        # NaN or far away: the pen lifts, and the next point starts a new run with M. In whole
        # thousandths of a unit (the path scaled back by 0.001): formatting integers takes a
        # third of the time of decimals, and a strip formats these for every frame.
        drawn = np.isfinite(lines).all(axis=1) & (np.abs(lines) <= 1e6).all(axis=1)
        starts = (drawn & ~np.concatenate(([False], drawn[:-1])))[drawn]
        thousandths = np.rint(lines[drawn] * 1000.0).astype(np.int64).tolist()
        commands = np.where(starts, "M", "L").tolist()
        path = "".join([f"{c}{x} {y}" for c, (x, y) in zip(commands, thousandths, strict=True)])
        parts.append(
            f'<path d="{path}" transform="scale(0.001)" fill="none" stroke="{GRID_LINE_COLOUR}" '
            'stroke-width="1" vector-effect="non-scaling-stroke"/>'
        )
    if points is not None and len(points):
        radius = 0.006 * max(width, height)
        finite = points[np.isfinite(points).all(axis=1)]
        r = _svg_number(radius)
        dots = "".join(f'<circle cx="{x:.3f}" cy="{y:.3f}" r="{r}"/>' for x, y in finite.tolist())
        # The outline is in plot units, a fraction of the dot (vector-effect is not inherited by the
        # circles, so a "thin" stroke on the group became a halo wider than the dot itself).
        parts.append(
            f'<g fill="{SAMPLE_COLOUR}" stroke="rgba(0,0,0,0.45)" '
            f'stroke-width="{_svg_number(0.3 * radius)}">{dots}</g>'
        )
    parts.append("</g></svg>")
    return "data:image/svg+xml;base64," + base64.b64encode("".join(parts).encode()).decode("ascii")


def volume_panels(log_det_forward: np.ndarray, log_det_inverse: np.ndarray) -> tuple[Panel, Panel]:
    """log|det J_f| over z, and the same volume change where each cell lands in x."""
    over_x = -log_det_inverse
    limit = nice_ceiling(symmetric_limit(np.concatenate([log_det_forward.ravel(), over_x.ravel()])))
    return (
        Panel(
            "Volume change log|det J_f(z)| in z",
            log_det_forward,
            -limit,
            limit,
            VOLUME_SCALE,
            "log|det J_f|",
            "z_lines",
            None,
        ),
        Panel(
            "The same, where each cell lands in x",
            over_x,
            -limit,
            limit,
            VOLUME_SCALE,
            "log|det J_f|",
            "x_lines",
            "log|det J|",
        ),
    )


def density_panels(base_density: np.ndarray, density: np.ndarray, log_scale: bool) -> tuple[Panel, Panel]:
    """The base density p_Z over z and the pushed-forward density p_X over x, on one colour scale."""
    if log_scale:
        with np.errstate(divide="ignore"):
            fields = (np.log(base_density), np.log(density))
        label, bar = "log p", "log density"
    else:
        fields, label, bar = (base_density, density), "p", "density"
    vmin, vmax = density_limits(fields, log_scale)
    return (
        Panel(
            "Base density p_Z(z)", fields[0], vmin, vmax, DENSITY_SCALE, label.replace("p", "p_Z"), "z_lines"
        ),
        Panel(
            "Pushed-forward density p_X(x)",
            fields[1],
            vmin,
            vmax,
            DENSITY_SCALE,
            label.replace("p", "p_X"),
            "x_lines",
            bar,
        ),
    )


def terms_panels(
    base_log_prob: np.ndarray, log_det_inverse: np.ndarray, log_density: np.ndarray
) -> list[Panel]:
    """log p_X(x) = log p_Z(f^{-1}(x)) + log|det J_{f^{-1}}(x)|, term by term.

    The log-det term is coloured by what f does there, as on every volume view:
    a positive term means f compresses (blue), so the density rises.
    """
    low, high = density_limits((base_log_prob, log_density), log_scale=True)
    limit = nice_ceiling(symmetric_limit(log_det_inverse))
    compress_positive = [[1.0 - p, c] for p, c in reversed(VOLUME_SCALE)]
    return [
        Panel("log p_Z(f⁻¹(x))", base_log_prob, low, high, DENSITY_SCALE, "log p_Z(f⁻¹(x))"),
        Panel(
            "+ log|det J_f⁻¹(x)|",
            log_det_inverse,
            -limit,
            limit,
            compress_positive,
            "log|det J_f⁻¹|",
            None,
            "log|det J_f⁻¹|",
        ),
        Panel("= log p_X(x)", log_density, low, high, DENSITY_SCALE, "log p_X", None, "log density"),
    ]


def steps_figure(
    titles: Sequence[str],
    densities: Sequence[np.ndarray],
    points: Sequence[np.ndarray],
    xs: np.ndarray,
    ys: np.ndarray,
    cols: int = 4,
) -> dict:
    """Small multiples: the density after each layer, with the same samples moving through."""
    vmax = density_limits(densities, log_scale=False)[1]
    panels = [Panel(t, d, 0.0, vmax, DENSITY_SCALE, "p") for t, d in zip(titles, densities, strict=True)]
    rows = int(np.ceil(len(panels) / cols))
    # Panel k shows z_k, the point after k layers: its coordinates are z_k[1], z_k[2]; the last is x.
    subscripts = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    axis_titles = [
        (f"z{str(k).translate(subscripts)}[1]", f"z{str(k).translate(subscripts)}[2]")
        for k in range(len(panels))
    ]
    axis_titles[-1] = ("x₁", "x₂")
    figure = grid_figure(
        panels,
        xs,
        ys,
        cols,
        ["x"] * len(panels),
        samples=dict(enumerate(points)),
        height=max(1, rows) * 260 + 40,
        hover=False,
        axis_titles=axis_titles,
    )
    figure["layout"]["margin"] = {"l": 40, "r": 10, "t": 30, "b": 30}
    return figure
