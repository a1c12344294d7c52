"""The 1D page through Streamlit's AppTest: presets, sliders, menus, and the numbers it prints.

What the page shows must hold on screen: the two shaded probabilities agree to 1e-6,
the inverse-function rule to 1e-8, the presets show the textbook densities, and a bad
setting gives a message with the last good picture kept, never an exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

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
    assert len(app.get("plotly_chart")) == 1
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
