"""The frames of the flow played from p_Z to p_X, against the grid evaluation and the layers themselves."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import flowviz
from flowviz.flow import Flow
from flowviz.grid import deformed_grid, grid_points
from flowviz.playback import (
    FRAMES_PER_LAYER,
    MIN_FRAMES_PER_LAYER,
    PLAY_GRID_LINES,
    PLAY_POINTS_PER_LINE,
    frame_png,
    frame_times,
    frames_per_layer,
    play_strip,
    strip_of_spec,
)
from flowviz.plots.common import DENSITY_SCALE, colour_map
from flowviz.plots.explore import density_limits
from flowviz.spec import canonical_json, parse_spec
from flowviz.ui.player import strip_json

SPEC = parse_spec(
    {
        "base": {"type": "gaussian", "mean": [0.3, -0.2], "cov": [[1.0, 0.3], [0.3, 0.8]]},
        "layers": [
            {"type": "rotation", "degrees": 40},
            {"type": "swap"},
            {"type": "planar", "w": [2, 0], "u": [0.8, 0.4], "b": 0},
            {"type": "tanh", "enabled": False},
            {"type": "radial", "center": [1.0, 0.0], "alpha": 0.5, "beta": 1.0},
        ],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 128},
    }
)
RES = 40  # small grids: the tests check numbers, not pictures
PER_LAYER = 5


@pytest.fixture(scope="module")
def strip():
    return play_strip(Flow.from_spec(SPEC), SPEC["view"], resolution=RES, per_layer=PER_LAYER, n_samples=64)


def test_frame_times_hit_every_whole_layer_exactly():
    times = frame_times(4, 6)
    assert len(times) == 25 and times[0] == 0.0 and times[-1] == 4.0
    assert [times[6 * k] for k in range(5)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    np.testing.assert_allclose(np.diff(times), 1 / 6, rtol=1e-12)
    # deep flows get fewer frames per layer (a frame of layer k evaluates k layers), never fewer than 8
    assert frames_per_layer(3) == frames_per_layer(6) == FRAMES_PER_LAYER
    assert frames_per_layer(8) == 504 // 36 and frames_per_layer(10) == 504 // 55
    assert frames_per_layer(20) == MIN_FRAMES_PER_LAYER


def test_frame_at_a_whole_time_is_the_first_k_layers(strip):
    flow = Flow.from_spec(SPEC)
    n_layers = len(flow.layers)
    assert n_layers == 4  # the switched-off layer is not played
    assert len(strip["t"]) == n_layers * PER_LAYER + 1
    _, _, points = grid_points({**SPEC["view"], "resolution": RES})
    z0 = flow.sample_base(64, seed=0)
    for k in range(n_layers + 1):
        frame = k * PER_LAYER
        assert strip["t"][frame] == k
        prefix = flow.prefix(k)
        expected = prefix.log_prob(points).reshape(RES, RES).numpy()
        np.testing.assert_array_equal(strip["log_density"][frame], expected)
        np.testing.assert_array_equal(strip["points"][frame], prefix.forward(z0).numpy())
        lines = deformed_grid(
            prefix, {**SPEC["view"], "resolution": RES}, PLAY_GRID_LINES, PLAY_POINTS_PER_LINE
        )
        np.testing.assert_array_equal(strip["lines"][frame], lines["x"])
    # t = K is the flow the Explorer shows: the same numbers as evaluate
    whole = flowviz.evaluate(SPEC, resolution=RES)
    np.testing.assert_allclose(np.exp(strip["log_density"][-1]), whole["density"], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("frame", [1, 3, 7, 8, 12, 18])
def test_frames_between_layers_are_the_exact_density_at_t(strip, frame):
    """Against the public evaluation at time t (flowviz.evaluate(spec, t=...)), on the same grid."""
    t = float(strip["t"][frame])
    assert 0 < t % 1 < 1
    expected = flowviz.evaluate(SPEC, resolution=RES, t=t)
    np.testing.assert_allclose(
        np.exp(strip["log_density"][frame]), expected["density"], rtol=1e-10, atol=1e-300
    )
    np.testing.assert_array_equal(strip["x"], expected["x"])
    np.testing.assert_array_equal(strip["y"], expected["y"])


def test_samples_start_as_base_draws_and_move_through_the_flow_at_t(strip):
    flow = Flow.from_spec(SPEC)
    z0 = flow.sample_base(64, seed=0)
    np.testing.assert_array_equal(strip["points"][0], z0.numpy())
    t = float(strip["t"][13])
    np.testing.assert_allclose(strip["points"][13], flow.at(t).forward(z0).numpy(), rtol=1e-12)
    # the grid at t = 0 is the straight grid of the window
    straight = deformed_grid(flow.prefix(0), {**SPEC["view"], "resolution": RES}, PLAY_GRID_LINES, 48)
    np.testing.assert_array_equal(strip["lines"][0], straight["z"])


def test_labels_layers_and_the_orientation_flip(strip):
    flow = Flow.from_spec(SPEC)
    assert list(strip["labels"]) == [flow.time_label(float(t)) for t in strip["t"]]
    assert strip["labels"][0] == "base p_Z"
    assert strip["labels"][7] == "2 · swap, 40 %"
    assert list(strip["flips"]) == [False, True, False, False]
    # the layer in progress: 0 at t = 0, then 1 for t in (0, 1], 2 for t in (1, 2], ...
    assert (
        strip["layer"][0] == 0
        and strip["layer"][1] == 1
        and strip["layer"][5] == 1
        and strip["layer"][6] == 2
    )


def test_pictures_are_the_densities_on_one_colour_range(strip):
    fields = np.exp(strip["log_density"])
    vmin, vmax = strip["limits"]
    assert (vmin, vmax) == density_limits(list(fields), log_scale=False)
    for frame in (0, 7, len(fields) - 1):
        shown = np.asarray(Image.open(io.BytesIO(frame_png(strip, frame))).convert("RGBA"))
        np.testing.assert_array_equal(shown, colour_map(fields[frame], vmin, vmax, DENSITY_SCALE))
    # one range for all: the base's peak and the last frame's peak are coloured on the same scale
    peaks = fields.reshape(len(fields), -1).max(1)
    assert vmax >= np.quantile(fields, 0.998) and peaks.max() > 0


def test_log_scale_strip_colours_the_log_density():
    flow = Flow.from_spec(SPEC)
    strip = play_strip(flow, SPEC["view"], resolution=24, log_scale=True, per_layer=2, n_samples=8)
    vmin, vmax = strip["limits"]
    assert (vmin, vmax) == density_limits(list(strip["log_density"]), log_scale=True)
    shown = np.asarray(Image.open(io.BytesIO(frame_png(strip, 3))).convert("RGBA"))
    np.testing.assert_array_equal(shown, colour_map(strip["log_density"][3], vmin, vmax, DENSITY_SCALE))


def test_labels_number_layers_as_the_stack_does():
    """The Explorer numbers layers in the stack, switched-off ones included: the player says the same."""
    strip = strip_of_spec(canonical_json(SPEC), 16)
    per_layer = len(strip["t"]) // 4
    assert strip["labels"][2 * per_layer + per_layer // 2].startswith("3 · planar")
    assert strip["labels"][-1] == "5 · radial, 100 %"  # the 4th active layer, 5th in the stack
    assert strip["labels"][0] == "base p_Z"


def test_strip_is_cached_by_the_canonical_spec_and_read_only():
    key = canonical_json(parse_spec({**SPEC, "layers": SPEC["layers"][:2]}))
    first = strip_of_spec(key, 24)
    assert strip_of_spec(key, 24) is first
    assert strip_of_spec(key, 24, True) is not first
    assert not first["log_density"].flags.writeable
    assert len(first["t"]) == 2 * FRAMES_PER_LAYER + 1


def test_browser_payload_carries_the_frames_lines_and_points(strip):
    """The browser gets each PNG as is, and the lines and points within 1/65534 of a 3x window."""
    payload = json.loads(strip_json(strip, log_scale=False))
    n = len(strip["t"])
    assert payload["n"] == n and payload["labels"][7] == "2 · swap, 40 %" and payload["flips"][1] is True
    assert base64.b64decode(payload["png"][7]) == frame_png(strip, 7)
    x0, x1, y0, y1 = payload["window"]
    for name, per_frame in (("lines", "lines_per_frame"), ("points", "points_per_frame")):
        q = (
            np.frombuffer(base64.b64decode(payload[name]), dtype="<i2")
            .reshape(n, payload[per_frame], 2)
            .astype(float)
        )
        truth = strip[name]
        # decoded as the player decodes it
        shown = q != -32768
        x = x0 + (q[..., 0] + 32767) / 65534 * (x1 - x0)
        y = y0 + (q[..., 1] + 32767) / 65534 * (y1 - y0)
        inside = np.isfinite(truth).all(-1) & (truth[..., 0] >= x0) & (truth[..., 0] <= x1)
        inside &= (truth[..., 1] >= y0) & (truth[..., 1] <= y1)
        np.testing.assert_array_equal(shown.all(-1), inside)
        step = (x1 - x0) / 65534
        assert np.abs(x[inside] - truth[..., 0][inside]).max() <= step
        assert np.abs(y[inside] - truth[..., 1][inside]).max() <= (y1 - y0) / 65534


def test_a_trained_flow_plays_too():
    from flowviz.train import ModelConfig, build_model

    torch.manual_seed(0)
    flow = build_model(ModelConfig(kind="nsf", layers=2, hidden=8, depth=1, actnorm=True, mixing="swap"))
    flow.eval()  # as handed over after training: ActNorm is not initialised again by the grid
    view = {"xlim": [-3, 3], "ylim": [-3, 3], "resolution": 16}
    strip = play_strip(flow, view, resolution=16, per_layer=2, n_samples=8)
    k = len(flow.layers)
    assert len(strip["t"]) == 2 * k + 1
    assert list(strip["flips"]) == [type(layer).__name__ == "Swap" for layer in flow.layers]
    _, _, points = grid_points(view)
    with torch.no_grad():
        expected = flow.double().log_prob(points).reshape(16, 16).numpy()
    np.testing.assert_allclose(strip["log_density"][-1], expected, rtol=1e-12)
