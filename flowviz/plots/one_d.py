"""The 1D change-of-variables figure: p_Z below the graph of f, p_X beside it, axes linked.

Three panels share their axes the way the map links them:

    p_X(x), drawn sideways  |  graph of x = f(z)
    (x runs up, like f's    |
     vertical axis)         |
    ------------------------+--------------------
    legend                  |  p_Z(z) (z runs right, like f's horizontal axis)

so an interval [z, z + dz] under p_Z rises to the graph and turns left onto
[x, x + dx] beside p_X. Both densities use one density scale, so a taller p_X
means the same probability squeezed into less length.

Every trace names its mode: plotly's default puts markers, in its own colours, on any
trace of fewer than 20 points (a narrow interval's beam), which would read as data.
"""

from __future__ import annotations

import json

import numpy as np
from plotly.colors import sample_colorscale

from flowviz.line import (
    CarriedInterval,
    LineCurves,
    ProbeOnLine,
    build_line_base,
    build_line_map,
    carry_interval,
    line_curves,
    probe,
    sample_histogram,
)
from flowviz.memo import array_cache
from flowviz.plots.common import DENSITY_SCALE, NARROW_BELOW, VOLUME_SCALE, axis_style

DENSITY_LINE = sample_colorscale(DENSITY_SCALE, [0.0])[0]  # the dark end of the density scale
BAND_FILL = "rgba(53, 183, 121, 0.45)"  # the carried probability (a Viridis green)
BAND_EDGE = "rgb(31, 120, 80)"
PROBE_COLOUR = "#222222"
# Sampled histogram: neutral grey, so it reads as evidence under the curve, not as another density.
HISTOGRAM_FILL = "rgba(120, 120, 120, 0.18)"
HISTOGRAM_EDGE = "rgba(90, 90, 90, 0.7)"
LENGTH_LEGEND = "red: f stretches length (|f′| > 1) · white: kept · blue: f squeezes it (|f′| < 1)"

NARROW_LEGEND_ROOM = 70  # px more under the panels on a phone, where the legend takes five rows
# Panel domains in paper coordinates.
LEFT, RIGHT = (0.0, 0.25), (0.33, 0.92)
TOP, BOTTOM = (0.42, 1.0), (0.0, 0.27)


def _scatter(**properties) -> dict:
    """A scatter trace in plotly's JSON form: built as a plain dict, not a validated graph object
    (validating this figure's traces and layout cost more than computing its curves)."""
    return {"type": "scatter", **properties}


def _f32(values) -> np.ndarray:
    """Half the bytes to send and parse; single precision is far finer than a pixel."""
    return np.asarray(values, dtype=np.float32)


def _slope_limit(log_slope: np.ndarray) -> float:
    finite = np.abs(log_slope[np.isfinite(log_slope)])
    return float(np.clip(finite.max() if finite.size else 0.0, 0.7, 3.0))


def _graph_traces(curves: LineCurves, interval: CarriedInterval) -> list[dict]:
    """The graph of f coloured by log|f'|, and the two beams of the carried interval."""
    z_bottom, z_left = curves.x_range[0], curves.z_range[0]
    inside = (curves.curve_z > interval.z_lo) & (curves.curve_z < interval.z_hi)
    beam_z = np.concatenate([[interval.z_lo], curves.curve_z[inside], [interval.z_hi]])
    beam_x = np.interp(beam_z, curves.curve_z, curves.curve_x)
    limit = _slope_limit(curves.curve_log_slope)
    # Stretch colour first, the translucent beams over it, the thin graph line on top.
    return [
        _scatter(
            x=_f32(curves.curve_z),
            y=_f32(curves.curve_x),
            mode="markers",
            marker={
                "size": 9,
                "color": _f32(np.nan_to_num(curves.curve_log_slope)),
                "colorscale": VOLUME_SCALE,
                "cmin": -limit,
                "cmax": limit,
                "colorbar": {
                    "title": {"text": "log|f′(z)|", "side": "right"},
                    "x": RIGHT[1] + 0.01,
                    "y": 0.5 * (TOP[0] + TOP[1]),
                    "len": TOP[1] - TOP[0],
                    "thickness": 14,
                },
            },
            customdata=_f32(np.exp(curves.curve_log_slope)),
            hovertemplate="z = %{x:.4g}<br>x = f(z) = %{y:.4g}<br>|f′(z)| = %{customdata:.4g}<extra></extra>",
            name="stretch of f",
            meta="graph-colour",  # a slider's preview frames find the trace by it
            showlegend=False,
        ),
        _scatter(  # vertical beam: from the z axis up to the graph
            x=_f32(np.concatenate([[interval.z_lo], beam_z, [interval.z_hi]])),
            y=_f32(np.concatenate([[z_bottom], beam_x, [z_bottom]])),
            mode="lines",
            fill="toself",
            fillcolor=BAND_FILL,
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
        ),
        _scatter(  # horizontal beam: from the graph left to the x axis
            x=_f32(np.concatenate([[z_left], beam_z, [z_left]])),
            y=_f32(np.concatenate([[beam_x[0]], beam_x, [beam_x[-1]]])),
            mode="lines",
            fill="toself",
            fillcolor=BAND_FILL,
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
        ),
        _scatter(
            x=_f32(curves.curve_z),
            y=_f32(curves.curve_x),
            mode="lines",
            line={"color": "#333333", "width": 1.5},
            hoverinfo="skip",
            name="graph of f",
            meta="graph-line",  # a slider's preview frames find the trace by it
            showlegend=False,
        ),
    ]


def _knot_trace(curves: LineCurves) -> list[dict]:
    if not curves.knots_z:
        return []
    return [
        _scatter(
            x=list(curves.knots_z),
            y=list(curves.knots_x),
            mode="markers",
            marker={
                "symbol": "diamond",
                "size": 10,
                "color": "white",
                "line": {"color": "#222222", "width": 2},
            },
            name="knots of f",
            meta="knots",  # a slider's preview frames find the trace by it
            hovertemplate="knot: z = %{x:.4g}, x = %{y:.4g}<extra></extra>",
        )
    ]


def _density_traces(
    curves: LineCurves, interval: CarriedInterval, edges: np.ndarray, histogram: np.ndarray, count: int
) -> list[dict]:
    # The histogram as a step outline: y runs over each bin's two edges at the bin's height.
    step_x = np.concatenate([[0.0], np.repeat(histogram, 2), [0.0]])
    step_y = np.concatenate([[edges[0]], np.repeat(edges, 2)[1:-1], [edges[-1]]])
    return [
        _scatter(
            x=_f32(step_x),
            y=_f32(step_y),
            mode="lines",
            fill="tozerox",
            fillcolor=HISTOGRAM_FILL,
            line={"color": HISTOGRAM_EDGE, "width": 1},
            xaxis="x2",
            yaxis="y2",
            name=f"histogram of f(z), {count:,} samples",
            hovertemplate="x ≈ %{y:.3g}<br>sampled density %{x:.4g}<extra></extra>",
        ),
        _scatter(
            x=_f32(interval.band_density),
            y=_f32(interval.band_x),
            mode="lines",
            fill="tozerox",
            fillcolor=BAND_FILL,
            line={"color": BAND_EDGE, "width": 0},
            xaxis="x2",
            yaxis="y2",
            name="one probability, both axes",
            hoverinfo="skip",
        ),
        _scatter(
            x=_f32(curves.density),
            y=_f32(curves.x),
            mode="lines",
            meta="p_X",
            line={"color": DENSITY_LINE, "width": 2.5},
            xaxis="x2",
            yaxis="y2",
            name="densities p_Z, p_X",
            hovertemplate="x = %{y:.4g}<br>p_X(x) = %{x:.5g}<extra></extra>",
        ),
        _scatter(
            x=_f32(interval.band_z),
            y=_f32(interval.band_base_density),
            mode="lines",
            fill="tozeroy",
            fillcolor=BAND_FILL,
            line={"color": BAND_EDGE, "width": 0},
            xaxis="x3",
            yaxis="y3",
            hoverinfo="skip",
            showlegend=False,
        ),
        _scatter(
            x=_f32(curves.z),
            y=_f32(curves.base_density),
            mode="lines",
            meta="p_Z",
            line={"color": DENSITY_LINE, "width": 2.5},
            xaxis="x3",
            yaxis="y3",
            hovertemplate="z = %{x:.4g}<br>p_Z(z) = %{y:.5g}<extra></extra>",
            showlegend=False,
        ),
    ]


def _probe_traces(curves: LineCurves, probe: ProbeOnLine) -> list[dict]:
    if not probe.inside:
        return []
    dashed = {"color": PROBE_COLOUR, "width": 1.2, "dash": "dash"}
    z_left, x_bottom = curves.z_range[0], curves.x_range[0]
    return [
        _scatter(
            x=[z_left, probe.z, probe.z],
            y=[probe.x, probe.x, x_bottom],
            mode="lines",
            line=dashed,
            hoverinfo="skip",
            name="probe point",
        ),
        _scatter(
            x=[probe.z],
            y=[probe.x],
            mode="markers",
            marker={"color": PROBE_COLOUR, "size": 9, "symbol": "circle-open", "line": {"width": 2}},
            hovertemplate="probe: z = %{x:.5g}, x = %{y:.5g}<extra></extra>",
            showlegend=False,
        ),
        _scatter(
            x=[0.0, probe.density],
            y=[probe.x, probe.x],
            mode="lines+markers",
            line=dashed,
            marker={"size": [0, 8], "color": PROBE_COLOUR},
            xaxis="x2",
            yaxis="y2",
            hovertemplate="p_X(probe) = %{x:.6g}<extra></extra>",
            showlegend=False,
        ),
        _scatter(
            x=[probe.z, probe.z],
            y=[0.0, probe.base_density],
            mode="lines+markers",
            line=dashed,
            marker={"size": [0, 8], "color": PROBE_COLOUR},
            xaxis="x3",
            yaxis="y3",
            hovertemplate="p_Z(f⁻¹(probe)) = %{y:.6g}<extra></extra>",
            showlegend=False,
        ),
    ]


def _label(text: str, x: float, y: float, xanchor: str, yanchor: str, row: int = 0) -> dict:
    return {
        "text": text,
        "xref": "paper",
        "yref": "paper",
        "x": x,
        "y": y,
        "xanchor": xanchor,
        "yanchor": yanchor,
        "showarrow": False,
        "yshift": (3 + 20 * row) if yanchor == "bottom" else 0,  # rows of labels above a panel
        "font": {"size": 13},
    }


def _mass_labels(interval: CarriedInterval) -> list[dict]:
    """The probability of each shaded area, printed next to it (above p_X, above p_Z)."""
    swatch = f"<span style='color:{BAND_EDGE}'>■</span>"
    return [
        _label(
            f"{swatch} shaded: P(x in [x, x+dx]) = <b>{interval.mass_pushforward:.6f}</b>",
            LEFT[0],
            TOP[1],
            "left",
            "bottom",
            row=1,  # above the graph's own label: on a phone the two would run into each other
        ),
        _label(
            f"{swatch} shaded: P(z in [z, z+dz]) = <b>{interval.mass_base:.6f}</b>",
            RIGHT[1],
            BOTTOM[1] + 0.01,
            "right",
            "bottom",
        ),
    ]


def change_of_variables_figure(
    curves: LineCurves,
    interval: CarriedInterval,
    probe: ProbeOnLine,
    histogram_edges: np.ndarray,
    histogram_density: np.ndarray,
    sample_count: int,
    height: int = 700,
) -> dict:
    """The three linked panels (a figure in plotly's JSON form); the densities share one scale so
    their heights compare."""
    peaks = [curves.base_density.max(initial=0.0), curves.density.max(initial=0.0), probe.density]
    density_top = 1.12 * float(max(np.nanmax(peaks), 1e-12))
    traces = [
        *_graph_traces(curves, interval),
        *_knot_trace(curves),
        *_density_traces(curves, interval, histogram_edges, histogram_density, sample_count),
        *_probe_traces(curves, probe),
    ]
    layout = dict(
        height=height,
        # On a phone the legend's five rows need more room under the panels, and p_X's panel
        # leaves room for the graph's axis title, with a title short enough for its width.
        meta={
            "narrow": {
                "below": NARROW_BELOW,
                "layout": {
                    "margin": {"b": 84 + NARROW_LEGEND_ROOM},
                    "xaxis2": {
                        "domain": [LEFT[0], LEFT[1] - 0.04],
                        "title": {"text": "p_X(x)", "standoff": 4},
                    },
                },
                "colorbars": {},
                "height": height + NARROW_LEGEND_ROOM,
            }
        },
        margin={"l": 10, "r": 10, "t": 54, "b": 84},  # the legend's rows sit in the bottom margin
        plot_bgcolor="white",
        # Under the panels, in rows: at any width it covers nothing (beside p_Z it hid a panel on a phone).
        legend={
            "orientation": "h",
            "x": 0.0,
            "y": 0.0,
            "yref": "container",
            "xanchor": "left",
            "yanchor": "bottom",
            "font": {"size": 12},
        },
        xaxis=axis_style("", domain=RIGHT, range=curves.z_range, anchor="y"),
        yaxis=axis_style("x = f(z)", domain=TOP, range=curves.x_range, anchor="x"),
        xaxis2=axis_style(
            "p_X(x): density of x", domain=LEFT, range=[density_top, 0.0], anchor="y2", rangemode="tozero"
        ),
        yaxis2=axis_style("", domain=TOP, matches="y", anchor="x2", showticklabels=False),
        xaxis3=axis_style("z (the base variable)", domain=RIGHT, matches="x", anchor="y3"),
        yaxis3=axis_style("p_Z(z): density of z", domain=BOTTOM, range=[0.0, density_top], anchor="x3"),
        annotations=[
            *_mass_labels(interval),
            _label("graph of x = f(z), coloured by log|f′|", RIGHT[0], TOP[1], "left", "bottom"),
        ],
    )
    return {"data": traces, "layout": layout}


LINE_SAMPLES = 10_000  # as the 1D page draws by default


# One figure holds its curves, band and histogram as float32 arrays, about 20 kB (measured for
# the default state): 4 MB keeps the 64 most recent states (probe positions, the classic cases).
@array_cache(max_bytes=4 * 2**20, max_entries=64)
def line_figure(
    base_json: str, map_json: str, interval: tuple[float, float], probe_x: float
) -> tuple[dict, ProbeOnLine, tuple[float, float]]:
    """The 1D figure for one state (base and map as ``[kind, params]`` JSON), the probe's numbers
    and the probe's range, cached by those inputs. The figure is shared: draw it, never change it."""
    base_kind, base_params = json.loads(base_json)
    map_kind, map_params = json.loads(map_json)
    base, fmap = build_line_base(base_kind, base_params), build_line_map(map_kind, map_params)
    curves = line_curves(base, fmap)
    carried = carry_interval(base, fmap, *interval)
    at_probe = probe(base, fmap, probe_x)
    edges, histogram = sample_histogram(base, fmap, LINE_SAMPLES, curves.x_range)
    figure = change_of_variables_figure(curves, carried, at_probe, edges, histogram, LINE_SAMPLES, height=520)
    return figure, at_probe, curves.probe_range
