"""The Explorer's figures: colour ranges, SVG overlays, and the figure's structure."""

from __future__ import annotations

import base64
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from flowviz.explorer import explorer_fields
from flowviz.plots.explore import density_panels, grid_figure, nice_ceiling, svg_overlay, volume_panels
from flowviz.presets import default_spec
from flowviz.spec import canonical_json


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0123, 0.0125),
        (0.15, 0.15),
        (0.151, 0.2),
        (1.0, 1.0),
        (2.6, 3.0),
        (7.9, 8.0),
        (8.01, 10.0),
        (123.0, 125.0),
    ],
)
def test_nice_ceiling(value, expected):
    assert nice_ceiling(value) == pytest.approx(expected)


def test_nice_ceiling_is_the_least_nice_value_not_below():
    nice = sorted({s * 10.0**k for s in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8) for k in range(-4, 4)})
    for value in np.random.default_rng(0).uniform(1e-3, 900, 300):
        result = nice_ceiling(value)
        assert result >= value
        assert result == pytest.approx(min(n for n in nice if n >= value * (1 - 1e-12)))


def _svg(uri: str) -> ET.Element:
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    return ET.fromstring(base64.b64decode(uri[len(prefix) :]))


def test_svg_overlay_lines_and_points():
    lines = np.array([[0, 0], [1, 1], [np.nan, np.nan], [2, 2], [3, 2.5], [np.inf, 0], [4, 4]], float)
    points = np.array([[0.5, 0.5], [np.nan, 1], [1.5, -1]])
    root = _svg(svg_overlay(lines, points, (-5, 5), (-4, 6)))
    ns = "{http://www.w3.org/2000/svg}"
    path = root.find(f".//{ns}path").get("d")
    # three runs: (0,0)-(1,1), (2,2)-(3,2.5), (4,4): each starts with M
    assert path.count("M") == 3 and path.count("L") == 2
    # the path's numbers are the points (in thousandths, scaled back by the path's transform)
    scale = float(root.find(f".//{ns}path").get("transform").removeprefix("scale(").removesuffix(")"))
    numbers = [float(v) * scale for v in path.replace("M", " ").replace("L", " ").split()]
    assert numbers == pytest.approx([0, 0, 1, 1, 2, 2, 3, 2.5, 4, 4])
    circles = root.findall(f".//{ns}circle")
    assert [(float(c.get("cx")), float(c.get("cy"))) for c in circles] == [(0.5, 0.5), (1.5, -1.0)]
    # the view box spans the window, y flipped so data coordinates draw upright
    assert [float(v) for v in root.get("viewBox").split()] == [-5, -6, 10, 10]


def test_main_figure_structure():
    fields = explorer_fields(canonical_json(default_spec()))
    panels = [
        *density_panels(fields["base_density"], fields["density"], False),
        *volume_panels(fields["log_det_forward"], fields["log_det_inverse"]),
    ]
    lines = {"z_lines": fields["z_lines"], "x_lines": fields["x_lines"]}
    figure = grid_figure(
        panels, fields["x"], fields["y"], 2, ["z", "x", "z", "x"], lines, height=640, hover=[1]
    )
    images = figure["layout"]["images"]
    below = [im for im in images if im["layer"] == "below"]
    above = [im for im in images if im["layer"] == "above"]
    assert len(below) == 4 and len(above) == 4  # a field and a grid overlay per panel
    assert all(im["source"].startswith("data:image/png;base64,") for im in below)
    # linked zoom: panels of the same space share axes; equal aspect on the first of each
    layout = figure["layout"]
    assert layout["xaxis3"]["matches"] == "x" and layout["yaxis3"]["matches"] == "y"
    assert layout["xaxis4"]["matches"] == "x2" and layout["yaxis4"]["matches"] == "y2"
    assert layout["yaxis"]["scaleanchor"] == "x" and layout["yaxis2"]["scaleanchor"] == "x2"
    # the density panels share one colour range, the volume panels a symmetric one
    assert panels[0].vmax == panels[1].vmax and panels[2].vmin == -panels[2].vmax == -panels[3].vmax
    assert math.isclose(panels[1].vmax, nice_ceiling(panels[1].vmax))
    lazy = [t for t in figure["data"] if t.get("meta") == "lazy"]
    assert len(lazy) == 1 and lazy[0]["xaxis"] == "x2"


def test_sample_dots_have_an_outline_thinner_than_the_dot():
    """The outline is drawn in plot units: it must be a small fraction of the dot, not a halo around it."""
    points = np.random.default_rng(0).normal(size=(50, 2))
    root = _svg(svg_overlay(None, points, (-4, 4), (-4, 4)))
    ns = "{http://www.w3.org/2000/svg}"
    group = next(g for g in root.iter(f"{ns}g") if g.find(f"{ns}circle") is not None)
    radius = float(group.find(f"{ns}circle").get("r"))
    assert radius == pytest.approx(0.006 * 8, rel=1e-3)
    # the halo reaches stroke-width / 2 beyond the dot: at most a fifth of its radius
    assert float(group.get("stroke-width")) / 2 <= 0.2 * radius


def test_terms_figure_has_a_colour_bar_for_each_scale():
    """Both colour scales of the terms view carry a bar: the log-densities and the diverging log-det."""
    from flowviz.plots.explore import terms_panels

    fields = explorer_fields(canonical_json(default_spec()))
    panels = terms_panels(fields["base_log_prob"], fields["log_det_inverse"], fields["log_density"])
    figure = grid_figure(panels, fields["x"], fields["y"], cols=3, spaces=["x"] * 3, hover=[2])
    bars = {
        t["xaxis"]: t["colorbar"]["title"]["text"]
        for t in figure["data"]
        if t.get("showscale") and t.get("colorbar")
    }
    assert bars == {"x2": "log|det J_f⁻¹|", "x3": "log density"}
    (log_det_bar,) = [t for t in figure["data"] if t.get("xaxis") == "x2" and t.get("showscale")]
    # centred on 0, like every volume view
    assert log_det_bar["zmin"] == -log_det_bar["zmax"] > -np.inf


def test_layer_by_layer_panels_name_the_intermediate_points():
    """After k layers the point is z_k, not x: only the last panel's axes are x₁, x₂."""
    from flowviz.plots.explore import steps_figure

    xs = ys = np.linspace(-3, 3, 16)
    density = np.ones((16, 16))
    titles = ["z₀ ~ p_Z", "after 1 · rotation", "after 2 · planar"]
    figure = steps_figure(titles, [density] * 3, [np.zeros((0, 2))] * 3, xs, ys)
    layout = figure["layout"]
    names = [(layout[a]["title"]["text"], layout[b]["title"]["text"]) for a, b in
             (("xaxis", "yaxis"), ("xaxis2", "yaxis2"), ("xaxis3", "yaxis3"))]  # fmt: skip
    assert names == [("z₀[1]", "z₀[2]"), ("z₁[1]", "z₁[2]"), ("x₁", "x₂")]


# --------------------------------------------------------------------------- colours for any field


def _row(rgba: np.ndarray) -> list[tuple[int, ...]]:
    return [tuple(int(c) for c in pixel) for pixel in rgba[0]]


@pytest.mark.parametrize(
    ("vmin", "vmax"),
    [(-math.inf, math.inf), (math.nan, math.nan), (-1.7e308, 1.7e308), (-math.inf, 1.7e308)],
    ids=["infinite", "nan", "span-beyond-float64", "one-end-infinite"],
)
def test_colour_map_is_safe_for_any_limits(vmin, vmax):
    """Limits that are infinite, NaN or a span beyond float64: the finite values take the table's ends."""
    from flowviz.plots.common import DENSITY_SCALE, OUTSIDE_RGBA, colour_map, colour_table

    table = colour_table(DENSITY_SCALE)
    values = np.array([[-1.7e308, 0.0, 1.7e308, np.nan, np.inf, -np.inf]])
    rgba = colour_map(values, vmin, vmax)
    expected_middle = tuple(table[128])  # 0 is halfway: t = 0.5 rounds to 128 of 0..255
    assert _row(rgba)[0] == (*table[0], 255)
    assert _row(rgba)[1][:3] == expected_middle
    assert _row(rgba)[2] == (*table[-1], 255)
    assert _row(rgba)[3:] == [OUTSIDE_RGBA] * 3


def test_a_link_whose_map_overflows_draws_every_panel():
    """planar w.u = inf (valid): log|det J| is +-1.8e308 or NaN; every panel is drawn, none raises."""
    spec = {
        "base": {"type": "gaussian"},
        "layers": [{"type": "planar", "w": [1e300, 1e300], "u": [1e300, -3]}],
    }
    fields = explorer_fields(canonical_json(spec))
    for log_scale in (False, True):
        panels = [
            *density_panels(fields["base_density"], fields["density"], log_scale),
            *volume_panels(fields["log_det_forward"], fields["log_det_inverse"]),
        ]
        lines = {"z_lines": fields["z_lines"], "x_lines": fields["x_lines"]}
        figure = grid_figure(panels, fields["x"], fields["y"], 2, ["z", "x", "z", "x"], lines, height=640)
        below = [im for im in figure["layout"]["images"] if im["layer"] == "below"]
        assert len(below) == 4 and all(im["source"].startswith("data:image/png;base64,") for im in below)
        assert all(math.isfinite(p.vmin) and math.isfinite(p.vmax) for p in panels)
