"""The structure page through Streamlit's AppTest: the numbers it prints must hold.

det J (dense) = product of the diagonal, slogdet = the layer's sum of log-diagonal,
nothing above the diagonal, every layer type in the table with autograd agreeing with
its tag, and the cost experiment runs, reports slopes, and shows no exception.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flowviz.layers import LAYER_CLASSES

PAGE = Path(__file__).resolve().parents[1] / "app_pages" / "structure.py"
K = "structure."


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def metrics(at: AppTest, label: str) -> list[float]:
    return [float(m.value.replace(",", "").rstrip("×")) for m in at.metric if m.label == label]


def check_determinants(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    dense = metrics(at, "det J of the dense autograd Jacobian")
    diagonal = metrics(at, "Product of the diagonal")
    slogdet = metrics(at, "log|det J| by slogdet of the dense J")
    layer = metrics(at, "log|det J| from the layer (sum of log-diagonal)")
    assert len(dense) == len(diagonal) == len(slogdet) == len(layer) == 2  # coupling, autoregressive
    for d, p in zip(dense, diagonal, strict=True):
        assert d == pytest.approx(p, rel=1e-10)
    for s, ell, d in zip(slogdet, layer, dense, strict=True):
        assert s == pytest.approx(ell, abs=1e-10)
        assert math.exp(s) == pytest.approx(abs(d), rel=1e-10)
    assert metrics(at, "Largest |entry| above the diagonal") == [0.0, 0.0]
    assert all(v <= 1e-12 for v in metrics(at, "|det J − product of diagonal|"))


def table(at: AppTest) -> str:
    (found,) = [m.value for m in at.markdown if m.value.startswith("| layer |")]
    return found


def test_layer_table_covers_every_type_and_agrees(app):
    text = table(app)
    for name in LAYER_CLASSES:
        assert f"| `{name}` |" in text
    assert "✗" not in text
    assert text.count("✓") >= len(LAYER_CLASSES)
    assert r"\begin{pmatrix}" in text


def test_determinants_in_dimension_6(app):
    assert app.slider(key=K + "dim").value == 6
    check_determinants(app)
    titles = [c.proto.spec for c in app.get("plotly_chart")]
    assert any("D = 6" in spec for spec in titles)


def test_other_dimensions_and_a_new_draw(app):
    first_table = table(app)
    app.slider(key=K + "dim").set_value(11).run()
    check_determinants(app)
    app.button(key=K + "redraw").click().run()
    check_determinants(app)
    assert table(app) != first_table
    assert "✗" not in table(app)


def test_cost_experiment_runs_and_reports_slopes(app):
    assert not metrics(app, "Measured slope, dense LU (slogdet)")
    app.select_slider(key=K + "sizes").set_value((4, 256)).run()
    app.checkbox(key=K + "extend").uncheck().run()
    app.slider(key=K + "repeats").set_value(3).run()
    app.button(key=K + "run").click().run()
    assert not app.exception
    (dense,) = metrics(app, "Measured slope, dense LU (slogdet)")
    (triangular,) = metrics(app, "Measured slope, triangular (sum of log-diagonal)")
    assert math.isfinite(dense) and math.isfinite(triangular)
    assert dense > triangular  # LU grows with D; the sum of 256 logs is all overhead
    (ratio,) = metrics(app, "Dense / triangular at D = 256")
    assert ratio > 1
    (frame,) = app.dataframe
    assert list(frame.value["D"]) == [4, 8, 16, 32, 64, 128, 256]
    # The results stay on screen through other changes.
    app.slider(key=K + "dim").set_value(4).run()
    assert metrics(app, "Measured slope, dense LU (slogdet)") == [dense]


def test_an_empty_size_range_is_a_message_not_an_error(app):
    app.select_slider(key=K + "sizes").set_value((64, 64)).run()
    assert not app.exception
    assert any("upper end must be above" in e.value for e in app.error)
