"""Figures of the 2D Explorer, built from plain arrays (no Streamlit).

Every figure is a plain dict (plotly's JSON form): building it costs almost
nothing, and large fields travel as colour-mapped PNGs laid under the axes, so
the browser redraws in a few tens of milliseconds. Panels of the same space
(z or x) share their axes, so zooming one zooms the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flowviz.plots.common import (
    DENSITY_SCALE,
    GRID_LINE_COLOUR,
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


def density_limits(fields: Sequence[np.ndarray], log_scale: bool) -> tuple[float, float]:
    """A shared colour range for density panels, robust to a few spiky cells."""
    finite = np.concatenate([f[np.isfinite(f)].ravel() for f in fields])
    if finite.size == 0:
        return (0.0, 1.0)
    if log_scale:
        top = float(np.quantile(finite, 0.999))
        return (top - LOG_DENSITY_RANGE, top)
    top = float(np.quantile(finite, 0.998))
    return (0.0, top if top > 0 else 1.0)


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
) -> dict:
    """A figure of square panels in a grid; panels with the same ``spaces`` entry share axes.

    ``lines``: {"z_lines": (M, 2), "x_lines": (M, 2)} drawn where a panel asks for them.
    ``samples``: {panel index: (n, 2) points} scattered over that panel.
    ``markers``: {panel index: (x, y)}: a probed point, drawn as a cross.
    ``hover``: True, False, or the panel indices that get a transparent hover layer
    (values under the cursor); the other panels' colour bars ride on a 2x2 stub.
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
    first_of_space: dict[str, str] = {}
    hover_index = downsample(np.zeros((len(ys), len(xs))), HOVER_CELLS)[1]
    domains = list(_domains(rows, cols))
    for i, panel in enumerate(panels):
        xname, yname = _axis_names(i)
        xkey, ykey = "xaxis" + xname[1:], "yaxis" + yname[1:]
        (dx0, dx1), (dy0, dy1) = domains[i]
        space = spaces[i]
        symbol = space
        layout[xkey] = axis_style(f"{symbol}₁", domain=[dx0, dx1], range=list(xlim), anchor=yname)
        layout[ykey] = axis_style(
            f"{symbol}₂",
            domain=[dy0, dy1],
            range=list(ylim),
            anchor=xname,
            scaleanchor=xname,
            scaleratio=1,
            constrain="domain",
        )
        layout[xkey]["constrain"] = "domain"
        if space in first_of_space:
            layout[xkey]["matches"] = first_of_space[space]
            layout[ykey]["matches"] = "y" + first_of_space[space][1:]
        else:
            first_of_space[space] = xname
        rgba = colour_map(panel.values, panel.vmin, panel.vmax, panel.scale)
        layout["images"].append(image_under_axes(png_data_uri(rgba), xlim, ylim, xname, yname))
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
        if hovered or panel.colourbar:
            index = hover_index if hovered else np.array([0, len(xs) - 1])
            data.append(_hover_layer(panel, xs, ys, index, xname, yname, (dx1, dy0, dy1), hovered))
        if panel.overlay and lines is not None and panel.overlay in lines:
            data.append(_line_trace(lines[panel.overlay], xname, yname))
        if samples and i in samples:
            data.append(_sample_trace(samples[i], xname, yname))
        if markers and i in markers:
            data.append(_marker_trace(markers[i], xname, yname))
    return {"data": data, "layout": layout}


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


def _hover_layer(panel: Panel, xs, ys, index, xname, yname, place, hovered: bool = True) -> dict:
    """A transparent coarse heatmap: hover values and, where asked, the colour bar."""
    right, bottom, top = place
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
    }
    if not hovered:
        trace["hoverinfo"] = "skip"
        del trace["hovertemplate"]
    if panel.colourbar:
        trace["colorbar"] = {
            "title": {"text": panel.colourbar, "side": "right"},
            "x": right + 0.005,
            "xanchor": "left",
            "y": (bottom + top) / 2,
            "len": (top - bottom) * 0.95,
            "thickness": 12,
            "outlinewidth": 0,
        }
    return trace


def _line_trace(points: np.ndarray, xname: str, yname: str) -> dict:
    return {
        "type": "scatter",
        "mode": "lines",
        "x": points[:, 0].astype(np.float32),
        "y": points[:, 1].astype(np.float32),
        "xaxis": xname,
        "yaxis": yname,
        "line": {"color": GRID_LINE_COLOUR, "width": 0.8},
        "hoverinfo": "skip",
        "connectgaps": False,
    }


def _sample_trace(points: np.ndarray, xname: str, yname: str) -> dict:
    return {
        "type": "scatter",
        "mode": "markers",
        "x": points[:, 0].astype(np.float32),
        "y": points[:, 1].astype(np.float32),
        "xaxis": xname,
        "yaxis": yname,
        "marker": {"color": SAMPLE_COLOUR, "size": 3},
        "hoverinfo": "skip",
    }


def volume_panels(log_det_forward: np.ndarray, log_det_inverse: np.ndarray) -> tuple[Panel, Panel]:
    """log|det J_f| over z, and the same volume change where each cell lands in x."""
    over_x = -log_det_inverse
    limit = symmetric_limit(np.concatenate([log_det_forward.ravel(), over_x.ravel()]))
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
    limit = symmetric_limit(log_det_inverse)
    compress_positive = [[1.0 - p, c] for p, c in reversed(VOLUME_SCALE)]
    return [
        Panel(
            "log p_Z(f⁻¹(x)): where x comes from", base_log_prob, low, high, DENSITY_SCALE, "log p_Z(f⁻¹(x))"
        ),
        Panel(
            "+ log|det J_f⁻¹(x)|: volume correction",
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
    figure = grid_figure(
        panels,
        xs,
        ys,
        cols,
        ["x"] * len(panels),
        samples=dict(enumerate(points)),
        height=max(1, rows) * 260 + 40,
        hover=False,
    )
    for trace in figure["data"]:
        if trace["type"] == "scatter":
            trace["marker"]["size"] = 2.5
    figure["layout"]["margin"] = {"l": 40, "r": 10, "t": 30, "b": 30}
    return figure
