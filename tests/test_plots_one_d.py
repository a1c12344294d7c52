"""The 1D figure: no trace is drawn with markers it did not ask for."""

from __future__ import annotations

import copy

import plotly.graph_objects as go

from flowviz.line import build_line_base, build_line_map, carry_interval, line_curves, probe, sample_histogram
from flowviz.plots.one_d import change_of_variables_figure


def test_short_traces_get_no_default_markers():
    """A narrow interval makes short traces; plotly would draw markers on them in its own colours."""
    base = build_line_base("uniform", {"low": 0.0, "high": 1.0})
    fmap = build_line_map("piecewise_linear", {"knots": [-1.0, 1.0], "slopes": [2.0, 0.5, 1.5]})
    curves = line_curves(base, fmap)
    interval = carry_interval(base, fmap, 0.3, 0.004)  # narrow: a few grid points inside
    edges, histogram = sample_histogram(base, fmap, 1000, curves.x_range)
    figure = change_of_variables_figure(curves, interval, probe(base, fmap, 0.5), edges, histogram, 1000)
    short = [t for t in figure["data"] if len(t["x"]) < 20]
    assert any(t.get("fill") == "toself" for t in short)  # the beams of the narrow interval are among them
    for trace in figure["data"]:
        assert trace.get("mode") is not None, trace.get(
            "name"
        )  # plotly's default: "lines+markers" when short
        if trace.get("fill"):
            assert "markers" not in trace["mode"], trace.get("name")


def _figure() -> dict:
    base = build_line_base("gaussian", {"mean": 0.0, "std": 1.0})
    fmap = build_line_map("piecewise_linear", {"knots": [-1.0, 1.0], "slopes": [2.0, 0.5, 1.5]})
    curves = line_curves(base, fmap)
    interval = carry_interval(base, fmap, -0.5, 0.3)
    edges, histogram = sample_histogram(base, fmap, 1000, curves.x_range)
    return change_of_variables_figure(curves, interval, probe(base, fmap, 0.5), edges, histogram, 1000)


def test_the_figure_is_one_plotly_accepts():
    """Built as plain dicts (no validation on the way), so plotly's own validator checks it here:
    every trace and layout property must be one plotly knows, with a valid value."""
    figure = _figure()
    checked = go.Figure(figure)  # raises on an unknown property or a bad value
    assert len(checked.data) == len(figure["data"])
    assert [t.meta for t in checked.data if t.meta] == ["graph-colour", "graph-line", "knots", "p_X", "p_Z"]


def test_the_narrow_variant_is_valid_and_taller():
    """On a phone the live chart merges layout.meta.narrow's layout into the figure's."""
    figure = _figure()
    narrow = figure["layout"]["meta"]["narrow"]
    layout = copy.deepcopy(figure["layout"])
    for name, part in narrow["layout"].items():
        layout[name].update(part)
    layout["height"] = narrow["height"]
    checked = go.Figure({"data": figure["data"], "layout": layout})
    assert checked.layout.height > figure["layout"]["height"]
    assert checked.layout.margin.b > figure["layout"]["margin"]["b"]
    assert checked.layout.xaxis2.domain[1] < figure["layout"]["xaxis2"]["domain"][1]
