"""The 1D page through Streamlit's AppTest: presets, sliders, menus, and the numbers it prints.

What the page shows must hold on screen: the two shaded probabilities agree to 1e-6,
the inverse-function rule to 1e-8, the presets show the textbook densities, and a bad
setting gives a message with the last good picture kept, never an exception.
"""

from __future__ import annotations

import json
from pathlib import Path

import mpmath
import pytest
from scipy import stats
from streamlit.testing.v1 import AppTest

from flowviz.line import build_line_base, build_line_map, line_curves

PAGE = Path(__file__).resolve().parents[1] / "app_pages" / "one_d.py"
K = "one_d."


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def metric(at: AppTest, label: str) -> float:
    (found,) = [m for m in at.metric if m.label == label]
    return float(found.value.replace(",", "").rstrip("×"))


def check_numbers(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    mass_z = metric(at, "Probability in [z, z+dz] (base CDF)")
    mass_x = metric(at, "Probability in [x, x+dx] (quadrature of p_X)")
    assert abs(mass_z - mass_x) <= 1e-6
    assert metric(at, "Difference of the two probabilities") <= 1e-6
    inverse = metric(at, "d f⁻¹/dx (autograd of the inverse)")
    reciprocal = metric(at, "1 / f′(z) (autograd of the forward)")
    assert abs(inverse - reciprocal) <= 1e-8 * max(1.0, abs(inverse))
    assert metric(at, "Difference (inverse-function rule)") <= 1e-8 * max(1.0, abs(inverse))
    # p_X(x) = p_Z(z) |d f^-1/dx|, with the numbers as shown.
    p_z, slope = metric(at, "p_Z(z)"), metric(at, "|d f⁻¹/dx| (analytic, from the layers)")
    assert metric(at, "p_X(x)") == pytest.approx(p_z * slope, rel=1e-10)
    assert 0.99 < metric(at, "Mass of p_X on the shown x range") <= 1.0 + 1e-9


def test_default_page(app):
    check_numbers(app)
    assert app.title[0].value == "Change of variables on a line"
    charts = [e for e in app.get("bidi_component") if e.proto.component_name == "flowviz.live_chart"]
    assert len(charts) == 1 and not app.get("plotly_chart")
    figure = json.loads(json.loads(charts[0].proto.json)["figure"])
    assert {trace.get("meta") for trace in figure["data"]} >= {"p_X", "p_Z", "graph-line", "graph-colour"}
    assert any("p_X(x) = p_Z" in latex.value for latex in app.latex)


@pytest.mark.parametrize(
    ("preset", "density"),
    [("volume", 1.0), ("compress", 2.0), ("expand", 0.5)],
)
def test_presets_show_the_three_classic_cases(app, preset, density):
    app.button(key=K + f"preset_{preset}").click().run()
    check_numbers(app)
    assert app.selectbox(key=K + "base_kind").value == "uniform"
    assert app.selectbox(key=K + "map_kind").value == "affine"
    assert metric(app, "p_Z(z)") == 1.0
    assert metric(app, "p_X(x)") == pytest.approx(density, rel=1e-12)
    assert metric(app, "Probability in [z, z+dz] (base CDF)") == pytest.approx(0.25, abs=1e-12)


def test_moving_sliders_updates_the_numbers(app):
    app.button(key=K + "preset_compress").click().run()
    app.slider(key=K + "interval_width").set_value(0.5).run()
    check_numbers(app)
    assert metric(app, "Probability in [z, z+dz] (base CDF)") == pytest.approx(0.5, abs=1e-12)
    before = metric(app, "z = f⁻¹(x)")
    app.slider(key=K + "probe_x").set_value(0.6).run()
    check_numbers(app)
    assert metric(app, "z = f⁻¹(x)") == pytest.approx((0.6 - 0.25) / 0.5, abs=1e-12) != before
    app.slider(key=K + "affine_slope").set_value(-1.5).run()  # a decreasing map
    check_numbers(app)


@pytest.mark.parametrize(
    "map_kind", ["affine", "piecewise_linear", "tanh", "sigmoid", "exp", "sinh_arcsinh", "spline"]
)
@pytest.mark.parametrize("base_kind", ["uniform", "gaussian", "mixture"])
def test_every_base_and_map(app, base_kind, map_kind):
    app.selectbox(key=K + "base_kind").set_value(base_kind).run()
    app.selectbox(key=K + "map_kind").set_value(map_kind).run()
    check_numbers(app)
    assert not app.error


def test_invalid_uniform_keeps_the_last_good_picture(app):
    before = metric(app, "Probability in [z, z+dz] (base CDF)")
    app.slider(key=K + "uniform_low").set_value(2.5).run()  # above high = 2
    assert not app.exception
    assert any("must be below high" in e.value for e in app.sidebar.error)
    assert metric(app, "Probability in [z, z+dz] (base CDF)") == before
    check_numbers(app)
    app.slider(key=K + "uniform_low").set_value(-1.0).run()
    assert not app.sidebar.error
    check_numbers(app)


def test_invalid_map_keeps_the_last_good_picture(app):
    app.button(key=K + "preset_expand").click().run()
    app.slider(key=K + "affine_slope").set_value(0.0).run()
    assert not app.exception
    assert any("no inverse" in e.value for e in app.sidebar.error)
    assert metric(app, "p_X(x)") == pytest.approx(0.5)  # still the slope-2 picture
    app.selectbox(key=K + "map_kind").set_value("piecewise_linear").run()
    app.slider(key=K + "pl_knot1").set_value(2.0).run()  # past the second knot (1.0)
    assert any("knots must increase" in e.value for e in app.sidebar.error)
    check_numbers(app)


def test_sample_count_changes_the_histogram_not_the_numbers(app):
    before = metric(app, "Probability in [x, x+dx] (quadrature of p_X)")
    app.select_slider(key=K + "samples").set_value(100_000).run()
    check_numbers(app)
    assert metric(app, "Probability in [x, x+dx] (quadrature of p_X)") == before


def page_with(settings: dict) -> AppTest:
    """The page run once with these session-state values (names without the page's prefix)."""
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    for name, value in settings.items():
        at.session_state[K + name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def window_caption(at: AppTest) -> str:
    (found,) = [c.value for c in at.caption if c.value.startswith("Quadrature of p_X over the window")]
    return found


def test_interval_far_in_the_exp_tail_keeps_its_probability():
    """[8, 16] under N(0, 2^2) through exp(3 z), both interval sliders at their maxima: the
    quadrature used to print 0.000000000006 against the CDF's 0.000031671242, with no warning."""
    at = page_with(
        {
            "base_kind": "gaussian",
            "gaussian_mean": 0.0,
            "gaussian_std": 2.0,
            "map_kind": "exp",
            "steepness": 3.0,
            "interval_start": 8.0,
            "interval_width": 8.0,
        }
    )
    assert at.slider(key=K + "interval_start").value == 8.0
    assert at.slider(key=K + "interval_width").value == 8.0
    truth = stats.norm(0.0, 2.0).sf(8.0) - stats.norm(0.0, 2.0).sf(16.0)
    assert metric(at, "Probability in [z, z+dz] (base CDF)") == pytest.approx(truth, abs=1e-12)
    assert metric(at, "Probability in [x, x+dx] (quadrature of p_X)") == pytest.approx(truth, abs=1e-12)
    assert not at.warning
    check_numbers(at)


def test_mass_on_the_shown_range_beyond_the_base_window():
    """Sinh-arcsinh maps onto all of R: the shown mass must match the CDF (it read 0.9999497563
    against 0.9999814275) and the caption must not blame flatness at an end the image lacks."""
    mean, std, skew, tailweight = -0.7, 1.95, -1.85, 2.75
    at = page_with(
        {
            "base_kind": "gaussian",
            "gaussian_mean": mean,
            "gaussian_std": std,
            "map_kind": "sinh_arcsinh",
            "sa_skew": skew,
            "sa_tailweight": tailweight,
        }
    )
    check_numbers(at)
    base = build_line_base("gaussian", {"mean": mean, "std": std})
    x_lo, x_hi = line_curves(
        base, build_line_map("sinh_arcsinh", {"skew": skew, "tailweight": tailweight})
    ).x_range
    with mpmath.workdps(50):  # the textbook inverse z = sinh(asinh(x) / tailweight - skew), in 50 digits
        z_lo, z_hi = (mpmath.sinh(mpmath.asinh(mpmath.mpf(x)) / tailweight - skew) for x in (x_lo, x_hi))
        truth = float(mpmath.ncdf(z_hi, mean, std) - mpmath.ncdf(z_lo, mean, std))
    assert metric(at, "Mass of p_X on the shown x range") == pytest.approx(truth, abs=1e-10)
    caption = window_caption(at)
    assert f"gives {truth:.10f}." in caption
    assert "flat" not in caption and "differ" not in caption


def test_saturated_tanh_explains_the_gap_and_keeps_the_probe_inside():
    """N(0, 2^2) through tanh(3 z): 0.2 % of the mass lies where tanh rounds to +-1, which the
    caption explains; the probe slider must stop short of x = +-1 (outside the open image)."""
    at = page_with(
        {
            "base_kind": "gaussian",
            "gaussian_mean": 0.0,
            "gaussian_std": 2.0,
            "map_kind": "tanh",
            "steepness": 3.0,
            "probe_x": 1.0,
        }
    )
    probe_slider = at.slider(key=K + "probe_x")
    assert -1.0 < probe_slider.min < probe_slider.max < 1.0
    assert probe_slider.value == probe_slider.max
    assert not at.info  # "No z maps to x" would be shown outside the image
    check_numbers(at)
    assert 1.0 - metric(at, "Mass of p_X on the shown x range") > 1e-6  # the window holds all of (-1, 1)
    assert "f is flat to float64 precision at the end of its image" in window_caption(at)
    probe_slider.set_value(probe_slider.min).run()
    assert not at.info
    check_numbers(at)
