"""Data sets: toy shapes, canvas drawings to points, CSV reading and its error messages."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from flowviz.data import (
    TOY_SETS,
    CanvasWindow,
    check_points,
    csv_text,
    drawing_to_points,
    drop_last_object,
    even_along,
    path_polyline,
    points_to_drawing,
    read_csv,
    spiral_curve,
    toy_set,
    two_moons,
)
from flowviz.errors import SpecError

# --------------------------------------------------------------------------- toy sets


@pytest.mark.parametrize("name", sorted(TOY_SETS))
def test_toy_sets_have_the_asked_size_and_are_seeded(name):
    a = toy_set(name, 500, seed=3)
    b = toy_set(name, 500, seed=3)
    c = toy_set(name, 500, seed=4)
    assert a.shape == (500, 2) and a.dtype == np.float64
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.isfinite(a).all()
    assert np.abs(a).max() < 6.0  # they fit the default [-4, 4] window, give or take noise
    check_points(a)


def test_noise_is_the_gaussian_standard_deviation():
    clean = toy_set("eight_gaussians", 20000, noise=0.0, seed=1)
    assert len(np.unique(np.round(clean, 9), axis=0)) == 8
    radii = np.linalg.norm(clean, axis=1)
    assert np.allclose(radii, 2.5)
    noisy = toy_set("eight_gaussians", 20000, noise=0.2, seed=1)
    assert math.isclose(float(np.std(noisy - clean)), 0.2, rel_tol=0.03)


def test_moons_without_noise_lie_on_their_arcs():
    points = two_moons(2000, noise=0.0, seed=0) / 1.5 + np.array([0.5, 0.25])
    upper = np.abs(np.linalg.norm(points, axis=1) - 1.0) < 1e-12
    lower = np.abs(np.linalg.norm(points - np.array([1.0, 0.5]), axis=1) - 1.0) < 1e-12
    assert np.all(upper | lower)
    assert 0.45 < upper.mean() < 0.55


def test_spiral_without_noise_lies_on_its_curve():
    points = toy_set("spiral", 200, noise=0.0, seed=2)
    t = np.linspace(0, 1, 200001)
    curve = spiral_curve(t)
    distance = np.min(np.linalg.norm(points[:, None, :] - curve[None, ::50, :], axis=2), axis=1)
    assert distance.max() < 0.01


def test_unknown_toy_set_and_too_few_points_are_refused():
    with pytest.raises(SpecError, match="unknown toy set"):
        toy_set("banana")
    with pytest.raises(SpecError, match="at least 2"):
        toy_set("circles", 1)


# --------------------------------------------------------------------------- canvas


def test_canvas_window_maps_corners_and_flips_y():
    window = CanvasWindow(width=400, height=200, xlim=(-2.0, 2.0), ylim=(0.0, 1.0))
    corners = window.to_data(np.array([[0, 0], [400, 200], [200, 100]]))
    assert np.allclose(corners, [[-2.0, 1.0], [2.0, 0.0], [0.0, 0.5]])
    points = np.array([[0.3, 0.7], [-1.9, 0.01]])
    assert np.allclose(window.to_data(window.to_pixels(points)), points)


def _click(x: float, y: float, radius: float = 3.0, stroke: float = 1.0) -> dict:
    """A circle as the canvas's point tool creates it for a click at (x, y)."""
    return {
        "type": "circle",
        "left": x - (radius + stroke / 2),
        "top": y,
        "originX": "left",
        "originY": "center",
        "radius": radius,
        "width": 2 * radius,
        "height": 2 * radius,
        "strokeWidth": stroke,
        "scaleX": 1,
        "scaleY": 1,
    }


def test_each_click_is_one_point_where_it_was_clicked():
    window = CanvasWindow(width=480, height=480, xlim=(-4, 4), ylim=(-4, 4))
    drawing = {"objects": [_click(240, 240), _click(0, 480), _click(360, 120, radius=5, stroke=2)]}
    points = drawing_to_points(drawing, window, jitter=0.5)
    assert np.allclose(points, [[0.0, 0.0], [-4.0, -4.0], [2.0, 2.0]])  # clicks are never jittered


def test_points_to_drawing_round_trips():
    window = CanvasWindow()
    points = np.array([[0.5, -1.25], [3.0, 2.0]])
    assert np.allclose(drawing_to_points(points_to_drawing(points, window), window), points)


def _stroke(commands: list) -> dict:
    xs = [c[-2] for c in commands]
    ys = [c[-1] for c in commands]
    return {
        "type": "path",
        "path": commands,
        "left": min(xs) - 1.5,
        "top": min(ys) - 1.5,
        "width": max(xs) - min(xs),
        "height": max(ys) - min(ys),
        "strokeWidth": 3,
        "originX": "left",
        "originY": "top",
        "scaleX": 1,
        "scaleY": 1,
    }


def test_strokes_become_points_evenly_spread_along_their_arc_length():
    window = CanvasWindow(width=480, height=480, xlim=(-4, 4), ylim=(-4, 4))  # 60 px per unit
    # An L: 3 units right, then 1 unit down, with the first leg drawn by many close points.
    legs = [["M", 60, 60]] + [["L", 60 + 180 * (i / 40) ** 2, 60] for i in range(1, 41)] + [["L", 240, 120]]
    points = drawing_to_points({"objects": [_stroke(legs)]}, window, spacing=0.1, jitter=0.0)
    assert len(points) == 40  # 4 units of arc length / 0.1
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    corner = np.argmax(np.abs(np.diff(points[:, 1])) > 1e-9)  # the step that turns the corner is shorter
    assert np.allclose(np.delete(steps, corner), 0.1)
    assert np.allclose(points[0], [-3.0 + 0.05, 3.0])


def test_even_along_a_quadratic_curve_and_degenerate_strokes():
    polyline = path_polyline([["M", 0, 0], ["Q", 50, 100, 100, 0]])
    assert np.allclose(polyline[-1], [100, 0]) and len(polyline) == 9
    spread = even_along(polyline, 5.0)
    steps = np.linalg.norm(np.diff(spread, axis=0), axis=1)
    assert np.allclose(steps, steps.mean(), rtol=0.02)  # chords cut the polyline's corners a little
    dot = even_along(np.array([[3.0, 4.0], [3.0, 4.0]]), 1.0)
    assert np.allclose(dot, [[3.0, 4.0]])
    assert even_along(np.zeros((0, 2)), 1.0).shape == (0, 2)


def test_jitter_has_the_asked_spread_and_earlier_strokes_keep_their_points():
    window = CanvasWindow()
    line = _stroke([["M", 40, 240], ["L", 440, 240]])
    flat = drawing_to_points({"objects": [line]}, window, spacing=0.01, jitter=0.0)
    shaky = drawing_to_points({"objects": [line]}, window, spacing=0.01, jitter=0.2)
    assert math.isclose(float(np.std(shaky[:, 1] - flat[:, 1])), 0.2, rel_tol=0.1)
    more = drawing_to_points({"objects": [line, _stroke([["M", 40, 40], ["L", 40, 400]])]}, window, 0.01, 0.2)
    assert np.array_equal(more[: len(shaky)], shaky)


def test_undo_drops_the_last_object_and_empty_drawings_give_no_points():
    drawing = {"objects": [_click(1, 1), _click(2, 2)], "background": ""}
    assert drop_last_object(drawing)["objects"] == [_click(1, 1)]
    assert drop_last_object(None)["objects"] == []
    assert drawing_to_points(None).shape == (0, 2)
    assert drawing_to_points({"objects": []}).shape == (0, 2)


# --------------------------------------------------------------------------- CSV


def _csv(tmp_path, text: str | bytes, name: str = "data.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(
    "text",
    [
        "x,y\n1,2\n3,5\n-1.5,0.25\n",
        "1,2\n3,5\n-1.5,0.25\n",
        "a;b\n1;2\n3;5\n-1.5;0.25",
        "1 2\n3\t5\n\n-1.5   0.25\n",
        "\ufeffx,y\r\n1,2\r\n3,5\r\n-1.5,0.25\r\n",
        '"x","y"\n"1","2"\n3,5\n-1.5,2.5e-1\n',
    ],
)
def test_csv_with_or_without_header(tmp_path, text):
    points = read_csv(_csv(tmp_path, text))
    assert np.array_equal(points, [[1, 2], [3, 5], [-1.5, 0.25]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("\n  \n", "the file is empty"),
        ("x\n1\n2\n", "line 1: found 1 column"),
        ("1,2,3\n4,5,6\n", "line 1: found 3 columns"),
        ("x,y\n1,2\n3,abc\n", "line 3: 'abc' is not a number"),
        ("1,2\nnan,3\n4,5\n", "line 2: 'nan' is not a finite number"),
        ("1,2\n3,inf\n4,5\n", "line 2: 'inf' is not a finite number"),
        ("1,2\n3,-Infinity\n", "line 2: '-Infinity' is not a finite number"),
        ("x,y\n", "header but no points"),
        ("x,y\n1,2\n", "only 1 point"),
        ("1,2\n1,3\n1,4\n", "no spread in x"),
        ("1,2\n3,2\n", "no spread in y"),
        ("1,2\n3,4\n5\n", "line 3: found 1 column"),
    ],
)
def test_csv_errors_name_the_line_and_the_problem(tmp_path, text, message):
    with pytest.raises(SpecError, match=message) as error:
        read_csv(_csv(tmp_path, text))
    assert "data.csv" in str(error.value)
    assert "\n" not in str(error.value)


def test_csv_that_is_not_text_or_not_there(tmp_path):
    with pytest.raises(SpecError, match="not a text file"):
        read_csv(_csv(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00"))
    with pytest.raises(SpecError, match="not UTF-8"):
        read_csv(_csv(tmp_path, b"1,2\n\xff\xfe,3\n"))
    with pytest.raises(SpecError, match="no such file"):
        read_csv(tmp_path / "missing.csv")
    with pytest.raises(SpecError, match="folder"):
        read_csv(tmp_path)


def test_csv_from_bytes_names_the_upload():
    assert read_csv(b"1,2\n3,4\n", name="upload.csv").shape == (2, 2)
    with pytest.raises(SpecError, match=r"^upload.csv, line 1"):
        read_csv(b"oops\n", name="upload.csv")


def test_csv_text_round_trips_exactly(tmp_path):
    points = np.random.default_rng(0).standard_normal((50, 2)) * 1e3
    assert np.array_equal(read_csv(_csv(tmp_path, csv_text(points))), points)


def test_check_points_refuses_bad_arrays():
    with pytest.raises(SpecError, match="two coordinates"):
        check_points(np.zeros((3, 3)))
    with pytest.raises(SpecError, match="no points"):
        check_points(np.zeros((0, 2)))
    with pytest.raises(SpecError, match="point 2"):
        check_points(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 0.0]]))


# --------------------------------------------------------------------------- careless and hostile files


@pytest.mark.parametrize(
    "raw",
    [
        "x,y\r\n1,2\r\n3,5\r\n-1.5,0.25\r\n".encode("utf-16"),  # as Excel's "Unicode text": with a BOM
        "x,y\n1,2\n3,5\n-1.5,0.25\n".encode("utf-16-le"),
        "x,y\n1,2\n3,5\n-1.5,0.25\n".encode("utf-16-be"),
    ],
    ids=["bom", "le", "be"],
)
def test_utf16_csv_is_read(tmp_path, raw):
    assert np.array_equal(read_csv(_csv(tmp_path, raw)), [[1, 2], [3, 5], [-1.5, 0.25]])


@pytest.mark.parametrize(
    "text", ["x;y\n1,0;2\n3;5,0\n-1,5;0,25\n", "1,0\t2\n3\t5\n-1,5\t0,25e0\n"], ids=["semicolon", "tab"]
)
def test_decimal_commas_are_read_where_columns_are_not_comma_separated(tmp_path, text):
    assert np.array_equal(read_csv(_csv(tmp_path, text)), [[1, 2], [3, 5], [-1.5, 0.25]])


def test_comma_separated_decimal_commas_get_a_hint(tmp_path):
    with pytest.raises(SpecError, match=r"line 1: found 4 columns.*decimal marks.*';' or a tab$"):
        read_csv(_csv(tmp_path, "1,5,2,5\n3,5,4,5\n"))


def test_a_tiny_spread_is_called_too_small_not_too_large(tmp_path):
    with pytest.raises(SpecError, match=r"the x values vary by only 1e-300, too little.*multiply") as error:
        read_csv(_csv(tmp_path, "0,0\n1e-300,1\n0,2\n"))
    assert "too large" not in str(error.value)


def test_pipes_and_devices_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a regular file"):
        read_csv(fifo)  # opening a FIFO with no writer would block forever
    with pytest.raises(SpecError, match="not a regular file"):
        read_csv("/dev/zero")  # reading it would never end
