"""Figures of the Jacobian-structure page: a Jacobian as a matrix picture, and the cost of log|det|.

Jacobian entries are signed numbers, not volume changes, so they get their own
diverging scale (purple negative, orange positive, white 0), distinct from the
red/blue of expansion and compression. Structural zeros are drawn as grey cells
marked 0, so the empty triangle stands out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from flowviz.plots.common import axis_style
from flowviz.structure import CostPoint, LayerStructure, pattern_latex

ENTRY_SCALE = "PuOr_r"  # purple < 0 < orange
ZERO_CELL = "#e4e4e4"
DENSE_COLOUR = "#7b3294"
TRIANGULAR_COLOUR = "#1a9850"
TIME_TICKS = [10.0**k for k in range(-7, 1)]
TIME_LABELS = ["0.1 µs", "1 µs", "10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s"]


def jacobian_heatmap(jacobian: np.ndarray, title: str, zero_tolerance: float = 1e-12) -> go.Figure:
    """J_ij as a D x D picture, row i (output x_i) down, column j (input z_j) across, each cell labelled."""
    dim = jacobian.shape[0]
    magnitude = np.abs(jacobian)
    zero = magnitude <= zero_tolerance * magnitude.max()
    limit = float(magnitude.max()) or 1.0
    text = np.where(zero, "0", np.vectorize(lambda v: f"{v:.2f}")(jacobian))
    labels = [str(i + 1) for i in range(dim)]
    figure = go.Figure(
        go.Heatmap(
            z=np.where(zero, np.nan, jacobian),
            x=labels,
            y=labels,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 12},
            colorscale=ENTRY_SCALE,
            zmin=-limit,
            zmax=limit,
            xgap=2,
            ygap=2,
            colorbar={"title": {"text": "J_ij", "side": "right"}, "thickness": 12},
            hovertemplate="∂x_%{y} / ∂z_%{x} = %{z:.6g}<extra></extra>",
        )
    )
    figure.update_layout(
        title={"text": title, "font": {"size": 14}, "x": 0.0, "xanchor": "left"},
        height=360,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        plot_bgcolor=ZERO_CELL,
        xaxis=axis_style("input z_j (column j)", constrain="domain", tickmode="array", tickvals=labels),
        yaxis=axis_style(
            "output x_i (row i)", autorange="reversed", scaleanchor="x", tickmode="array", tickvals=labels
        ),
    )
    return figure


def _fit_line(dims: Sequence[int], seconds: Sequence[float]) -> tuple[np.ndarray, np.ndarray, float]:
    slope, intercept = np.polyfit(np.log(dims), np.log(seconds), 1)
    grid = np.array([min(dims), max(dims)], dtype=float)
    return grid, np.exp(intercept) * grid**slope, float(slope)


def cost_figure(points: Sequence[CostPoint], largest: int = 4) -> go.Figure:
    """Median time per log|det| against D, log-log, with lines fitted on each route's largest sizes."""
    figure = go.Figure()
    routes = (
        ("dense", "dense LU: torch.linalg.slogdet", DENSE_COLOUR),
        ("triangular", "triangular: sum of log|diagonal|", TRIANGULAR_COLOUR),
    )
    for route, name, colour in routes:
        measured = [(p.dim, getattr(p, f"{route}_seconds")) for p in points]
        measured = [(d, s) for d, s in measured if math.isfinite(s)]
        if not measured:
            continue
        dims, seconds = (list(v) for v in zip(*measured, strict=True))
        figure.add_scatter(
            x=dims,
            y=seconds,
            mode="lines+markers",
            line={"color": colour, "width": 2},
            marker={"size": 7},
            name=name,
            hovertemplate="D = %{x}<br>%{y:.3s}s per call<extra></extra>",
        )
        if len(dims) >= 2:
            grid, fitted, slope = _fit_line(dims[-largest:], seconds[-largest:])
            figure.add_scatter(
                x=grid,
                y=fitted,
                mode="lines",
                line={"color": colour, "width": 1.5, "dash": "dash"},
                name=f"fit on its {min(largest, len(dims))} largest D: slope {slope:.2f}",
                hoverinfo="skip",
            )
    figure.update_layout(
        height=460,
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
        plot_bgcolor="white",
        legend={
            "x": 0.01,
            "y": 0.99,
            "xanchor": "left",
            "yanchor": "top",
            "bgcolor": "rgba(255,255,255,0.8)",
        },
        xaxis=axis_style("matrix size D (log scale)", type="log", dtick=math.log10(2) * 2, tickformat="d"),
        yaxis=axis_style(
            "median time per log|det J| (log scale)", type="log", tickvals=TIME_TICKS, ticktext=TIME_LABELS
        ),
    )
    return figure


def structure_table(structures: Sequence[LayerStructure]) -> str:
    """A markdown table: each layer's measured pattern beside its class's tags, with the reason."""
    rows = [
        "| layer | J at a random point | class says | autograd finds | volume preserving | \\|det J\\| there | why |",
        "| --- | :---: | --- | --- | --- | --- | --- |",
    ]
    for s in structures:
        agree = "✓" if s.tag_agrees else "✗ (disagrees)"
        volume = (
            (r"yes, \|det J\| = 1 ✓" if s.volume_agrees else r"yes, but \|det J\| ≠ 1 ✗")
            if s.volume_preserving
            else "no"
        )
        reason = s.reason.replace("|", r"\|")
        rows.append(
            f"| `{s.type_name}` | ${pattern_latex(s.pattern)}$ | {s.tag} | {s.measured} {agree} | {volume} "
            f"| {s.abs_det:.4f} | {reason} |"
        )
    return "\n".join(rows)
