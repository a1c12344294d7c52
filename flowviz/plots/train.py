"""Figures of the Train page, from plain arrays: loss curves, the learned density over
the data, samples against the data, the data pulled back to latent space, and the
trace of the points through the layers.

Colours keep their meaning from :mod:`flowviz.plots.common`: densities in Viridis,
training data in DATA_COLOUR (red), the flow's samples in SAMPLE_COLOUR (white,
on a dark ground here as on the density pictures).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from flowviz.memo import array_cache
from flowviz.plots.common import (
    DATA_COLOUR,
    DENSITY_SCALE,
    SAMPLE_COLOUR,
    axis_style,
    colour_map,
    downsample,
    image_under_axes,
    pixel_extent,
    png_data_uri,
)

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#d62728"
LATENT_COLOUR = "rgba(60, 60, 160, 0.55)"
SAMPLES_GROUND = "#2d2d38"
MAX_POINTS_SHOWN = 3000
FONT = {"size": 12}


def _thin(points: np.ndarray | None, limit: int = MAX_POINTS_SHOWN, seed: int = 0) -> np.ndarray:
    """At most ``limit`` of the points (a fixed random subset), so big data sets stay quick to draw."""
    if points is None:
        return np.zeros((0, 2))
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) <= limit:
        return points
    index = np.random.default_rng(seed).choice(len(points), limit, replace=False)
    return points[np.sort(index)]


def _square_axes(fig: go.Figure, window: Mapping, x_title: str = "x₁", y_title: str = "x₂") -> None:
    fig.update_xaxes(**axis_style(x_title), range=list(window["xlim"]), constrain="domain")
    fig.update_yaxes(
        **axis_style(y_title), range=list(window["ylim"]), scaleanchor="x", scaleratio=1, constrain="domain"
    )


def _layout(
    fig: go.Figure, title: str, height: int = 380, legend: bool = True, ground: str = "white"
) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 14}},
        height=height,
        margin={"l": 50, "r": 20, "t": 40, "b": 80},
        font=FONT,
        plot_bgcolor=ground,
        showlegend=legend,
        legend={"orientation": "h", "y": -0.2, "x": 0.0, "yanchor": "top", "itemsizing": "constant"},
        uirevision="keep",
    )
    return fig


def _scatter(
    points: np.ndarray, name: str, colour: str, size: float = 4.0, outline: bool = False
) -> go.Scatter:
    marker = {"size": size, "color": colour}
    if outline:  # white markers need an edge to show in a white legend
        marker["line"] = {"color": "rgba(110, 110, 110, 0.9)", "width": 0.5}
    return go.Scatter(
        x=points[:, 0], y=points[:, 1], mode="markers", name=name, marker=marker, hoverinfo="skip"
    )


def data_window(points: np.ndarray | None, margin: float = 0.15, default: float = 4.0) -> dict:
    """A square window around the points (their 0.1% to 99.9% range, plus a margin)."""
    if points is None or len(points) < 2:
        return {"xlim": [-default, default], "ylim": [-default, default]}
    low, high = np.quantile(points, 0.001, axis=0), np.quantile(points, 0.999, axis=0)
    centre = (low + high) / 2
    half = float(np.max(high - low)) * (0.5 + margin)
    half = max(half, 1e-6 * max(1.0, float(np.max(np.abs(centre)))))
    return {
        "xlim": [float(centre[0] - half), float(centre[0] + half)],
        "ylim": [float(centre[1] - half), float(centre[1] + half)],
    }


# --------------------------------------------------------------------------- loss curves


def loss_figure(history: Sequence, best_step: int | None = None, height: int = 300) -> go.Figure:
    """Training and validation NLL (nats per point) against the step.

    ``history``: records with ``step``, ``train_nll``, ``val_nll`` (see
    :class:`flowviz.train.Progress`). The y range leaves out the first steps'
    large values so the late, small improvements stay visible.
    """
    if len(history) > 400:  # a few hundred points draw the same curve, and cost far less to send
        keep = np.unique(np.linspace(0, len(history) - 1, 400).round().astype(int))
        history = [history[i] for i in keep]
    steps = np.array([r.step for r in history], dtype=float)
    train = np.array([r.train_nll for r in history], dtype=float)
    val_steps = np.array([r.step for r in history if r.val_nll is not None], dtype=float)
    val = np.array([r.val_nll for r in history if r.val_nll is not None], dtype=float)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=steps, y=train, mode="lines", name="training NLL", line={"color": TRAIN_COLOUR, "width": 2}
        )
    )
    if len(val):
        fig.add_trace(
            go.Scatter(
                x=val_steps,
                y=val,
                mode="lines+markers",
                name="validation NLL (held-out points)",
                line={"color": VAL_COLOUR, "width": 2},
                marker={"size": 4},
            )
        )
    if best_step:
        fig.add_vline(x=best_step, line={"color": "#888", "dash": "dot"}, annotation_text="best so far")
    values = np.concatenate([train[np.isfinite(train)], val[np.isfinite(val)]])
    if len(values) > 3:
        tail = values[len(values) // 10 :] if len(values) > 20 else values
        low, high = float(np.min(values)), float(np.quantile(tail, 0.98))
        pad = 0.08 * max(high - low, 1e-3)
        fig.update_yaxes(range=[low - pad, high + pad])
    fig.update_xaxes(**axis_style("training step"), rangemode="tozero")
    fig.update_yaxes(**axis_style("NLL, nats per point"))
    _layout(fig, "NLL, nats per point (lower is better)", height)
    fig.update_layout(margin={"b": 95}, legend={"y": -0.3})
    return fig


# --------------------------------------------------------------------------- density and samples


def density_figure(
    grid: Mapping[str, np.ndarray],
    data: np.ndarray | None,
    title: str = "Learned density p(x), data in red",
    log_scale: bool = False,
    height: int = 420,
) -> go.Figure:
    """The learned density as a colour-mapped image, the training data drawn over it."""
    xs, ys = grid["x"], grid["y"]
    values = grid["log_density"] if log_scale else grid["density"]
    finite = values[np.isfinite(values)]
    if log_scale:
        vmax = float(finite.max()) if finite.size else 0.0
        vmin = vmax - 12.0
    else:
        vmin, vmax = 0.0, float(np.quantile(finite, 0.999)) if finite.size else 1.0
    image = colour_map(values, vmin, vmax, DENSITY_SCALE)
    xlim, ylim = pixel_extent(xs, ys)
    small, index = downsample(values, 48)
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            x=xs[index],
            y=ys[index],
            z=np.where(np.isfinite(small), small, np.nan),
            zmin=vmin,
            zmax=vmax,
            colorscale=DENSITY_SCALE,
            opacity=0.0,
            showscale=True,
            colorbar={"title": {"text": "log p(x)" if log_scale else "p(x)"}, "thickness": 12},
            hovertemplate="x₁ %{x:.3g}<br>x₂ %{y:.3g}<br>"
            + ("log p" if log_scale else "p")
            + " %{z:.3g}<extra></extra>",
            name="density",
            showlegend=False,
        )
    )
    shown = _thin(data)
    if len(shown):
        fig.add_trace(_scatter(shown, "training data", DATA_COLOUR, 3.5))
    fig.update_layout(images=[image_under_axes(png_data_uri(image), xlim, ylim)])
    _square_axes(fig, {"xlim": list(xlim), "ylim": list(ylim)})
    return _layout(fig, title, height)


def samples_figure(
    samples: np.ndarray, data: np.ndarray | None, window: Mapping, height: int = 420
) -> go.Figure:
    """Samples of the flow beside the training data: do they cover the same shape?"""
    fig = go.Figure()
    fig.add_trace(_scatter(_thin(samples, seed=1), "samples of the flow", SAMPLE_COLOUR, 3.5, outline=True))
    shown = _thin(data)
    if len(shown):  # on top: the data are what the samples should cover
        fig.add_trace(_scatter(shown, "training data", DATA_COLOUR, 4.5))
    _square_axes(fig, window)
    # Samples are white everywhere (they sit on density pictures): a dark ground shows them here too.
    fig.update_layout(plot_bgcolor=SAMPLES_GROUND)
    title = "Samples of the flow (white), data (red)" if len(shown) else "Samples of the flow (white)"
    return _layout(fig, title, height, ground=SAMPLES_GROUND)


# --------------------------------------------------------------------------- latent space and trace


def gaussian_contours(radii: Sequence[float] = (1.0, 2.0, 3.0)) -> list[go.Scatter]:
    """Circles |z| = r of N(0, I): they hold 1 - e^{-r^2/2} of its mass (39%, 86%, 99%)."""
    angle = np.linspace(0.0, 2.0 * math.pi, 181)
    traces = []
    for r in radii:
        mass = 1.0 - math.exp(-(r**2) / 2.0)
        traces.append(
            go.Scatter(
                x=r * np.cos(angle),
                y=r * np.sin(angle),
                mode="lines",
                line={"color": "#444", "width": 1.2, "dash": "dash"},
                name=f"|z| = {r:g}: holds {100 * mass:.0f}% of N(0, I)",
                hoverinfo="skip",
            )
        )
    return traces


def latent_figure(z: np.ndarray, height: int = 420) -> go.Figure:
    """The data pulled back to latent space, z = f⁻¹(x): after training they should look like N(0, I)."""
    fig = go.Figure()
    for trace in gaussian_contours():
        fig.add_trace(trace)
    fig.add_trace(_scatter(_thin(z), "data mapped back, z = f⁻¹(x)", LATENT_COLOUR, 3.5))
    _square_axes(fig, {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0]}, "z₁", "z₂")
    return _layout(fig, "Data mapped to z = f⁻¹(x): like N(0, I)?", height)


def trace_figure(steps: Sequence[np.ndarray], names: Sequence[str], columns: int = 4) -> go.Figure:
    """Small multiples: the same points after each layer, z₀ (base samples) to x (data space).

    Each point keeps the colour of its angle in z₀, so one can follow where a part
    of the Gaussian ends up.
    """
    count = len(steps)
    rows = math.ceil(count / columns)
    z0 = np.asarray(steps[0])
    hue = (np.degrees(np.arctan2(z0[:, 1], z0[:, 0])) + 360.0) % 360.0
    colours = [f"hsl({h:.0f}, 70%, 45%)" for h in hue]
    fig = go.Figure()
    gap_x, gap_y = 0.04, 0.09
    width = (1.0 - gap_x * (columns - 1)) / columns
    tall = (1.0 - gap_y * (rows - 1)) / rows
    annotations = []
    for k, (points, name) in enumerate(zip(steps, names, strict=True)):
        row, col = divmod(k, columns)
        axis = "" if k == 0 else str(k + 1)
        x0 = col * (width + gap_x)
        y1 = 1.0 - row * (tall + gap_y)
        points = np.asarray(points)
        window = data_window(points, margin=0.1)
        fig.add_trace(
            go.Scatter(
                x=points[:, 0],
                y=points[:, 1],
                mode="markers",
                marker={"size": 2.5, "color": colours},
                xaxis=f"x{axis}",
                yaxis=f"y{axis}",
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.update_layout(
            {
                f"xaxis{axis}": {
                    "domain": [max(0.0, x0), min(1.0, x0 + width)],
                    "range": window["xlim"],
                    "showticklabels": False,
                    "showgrid": False,
                    "zeroline": False,
                    "showline": False,
                    "mirror": True,
                    "linecolor": "#bbb",
                    "constrain": "domain",
                },
                f"yaxis{axis}": {
                    "domain": [max(0.0, y1 - tall), min(1.0, y1)],
                    "range": window["ylim"],
                    "showticklabels": False,
                    "showgrid": False,
                    "zeroline": False,
                    "showline": False,
                    "mirror": True,
                    "linecolor": "#bbb",
                    "scaleanchor": f"x{axis}",
                    "constrain": "domain",
                },
            }
        )
        annotations.append(
            {
                "text": name,
                "x": x0 + width / 2,
                "y": y1 + 0.01,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11},
            }
        )
    fig.update_layout(
        annotations=annotations,
        height=max(240, 220 * rows),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        plot_bgcolor="white",
        font=FONT,
    )
    return fig


# One PNG of the canvas, about 3 kB: 1 MB is ample, the count bounds it.
@array_cache(max_bytes=2**20, max_entries=4)
def canvas_background(window, grid_step: float = 1.0) -> bytes:
    """PNG bytes for the drawing canvas: light grid lines every ``grid_step``, the axes darker, labels.

    ``window`` is a :class:`flowviz.data.CanvasWindow`; the picture has its pixel size,
    so a click lands where the grid says.
    """
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (window.width, window.height), "white")
    draw = ImageDraw.Draw(image)
    (x0, x1), (y0, y1) = window.xlim, window.ylim
    ticks_x = np.arange(math.ceil(x0 / grid_step), math.floor(x1 / grid_step) + 1) * grid_step
    ticks_y = np.arange(math.ceil(y0 / grid_step), math.floor(y1 / grid_step) + 1) * grid_step
    for value in ticks_x:
        px = float(window.to_pixels(np.array([[value, 0.0]]))[0, 0])
        draw.line(
            [(px, 0), (px, window.height)], fill=(150, 150, 150) if value == 0 else (228, 228, 228), width=1
        )
        if value not in (x0, x1):
            draw.text((px + 2, window.height - 14), f"{value:g}", fill=(120, 120, 120))
    for value in ticks_y:
        py = float(window.to_pixels(np.array([[0.0, value]]))[0, 1])
        draw.line(
            [(0, py), (window.width, py)], fill=(150, 150, 150) if value == 0 else (228, 228, 228), width=1
        )
        if value not in (y0, y1) and value != 0:
            draw.text((3, py - 12), f"{value:g}", fill=(120, 120, 120))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
