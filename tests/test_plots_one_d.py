"""The 1D figure: no trace is drawn with markers it did not ask for."""

from __future__ import annotations

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
    short = [t for t in figure.data if len(t.x) < 20]
    assert any(t.fill == "toself" for t in short)  # the beams of the narrow interval are among them
    for trace in figure.data:
        assert trace.mode is not None, trace.name  # plotly's default would be "lines+markers" when short
        if trace.fill:
            assert "markers" not in trace.mode, trace.name
