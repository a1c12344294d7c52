"""Frame strips: every frame is the flow evaluated at a preview resolution, drawn by the figure's code."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
from PIL import Image

import flowviz
from flowviz.plots.common import colour_map
from flowviz.plots.explore import density_panels, volume_panels
from flowviz.spec import parse_spec
from flowviz.strips import (
    ALIASES,
    BEHIND,
    MAX_LEAD,
    NOT_INVERTIBLE_IMAGE,
    PREVIEW_RESOLUTION,
    ROUND_TRIP_FRAMES,
    STRIP_CHUNKS,
    STRIP_LEVELS,
    _strip_cached,
    chunk_lead,
    explorer_strip,
    preview_fields,
    shared_base_images,
    spec_with,
    strip_chunk,
    strip_values,
)

SPEC = parse_spec(
    {
        "base": {"type": "gaussian", "mean": [0.3, -0.2], "cov": [[1.0, 0.3], [0.3, 0.8]]},
        "layers": [
            {"type": "rotation", "degrees": 30},
            {"type": "planar", "w": [2, 0], "u": [0.8, 0.4], "b": 0},
        ],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 128},
    }
)
W1 = ("layers", 1, "w", 0)


def decoded(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGBA"))


def test_strip_values_lie_on_the_slider_steps_and_span_the_range():
    values = strip_values(-4.0, 4.0, 0.05, 17)
    assert len(values) == 17 and values[0] == -4.0 and values[-1] == 4.0
    steps = (np.asarray(values) + 4.0) / 0.05
    assert np.allclose(steps, np.round(steps), atol=1e-9)
    assert np.all(np.diff(values) > 0)
    # fewer positions than frames asked for: every position once
    assert strip_values(0.0, 1.0, 0.25, 121) == (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.mark.parametrize(
    ("low", "high", "step", "at", "heading"),
    [
        (-4.0, 4.0, 0.05, 3.0, -1),
        (-4.0, 4.0, 0.05, -4.0, 1),
        (0.1, 3.0, 0.01, 0.5, 1),
        (0.0, 1.0, 0.25, 0.4, 0),
        (-3, 3, 0.01, 2.99, -1),
    ],
)
def test_the_chunks_of_a_strip_hold_each_value_once_those_the_thumb_meets_next_first(
    low, high, step, at, heading
):
    everything = strip_values(low, high, step)
    have: list[float] = []
    spacing = (high - low) / (len(everything) - 1)
    for level in range(STRIP_LEVELS):
        chunk = strip_chunk(low, high, step, level, at, heading if level else 0, have)
        assert not set(chunk) & set(have)  # nothing the page holds is sent again
        assert list(chunk) == sorted(chunk)
        if level < len(STRIP_CHUNKS):
            assert len(chunk) == min(STRIP_CHUNKS[level], len(everything) - len(have))
            # nothing left out lies ahead of the thumb and nearer to it than a value sent
            left = set(everything) - set(have) - set(chunk)
            farthest_ahead = max((abs(v - at) for v in chunk if (v - at) * heading >= 0), default=None)
            if farthest_ahead is not None:
                assert all(abs(v - at) >= farthest_ahead - 1e-12 for v in left if (v - at) * heading >= 0)
        have += chunk
        at += heading * 8 * spacing  # the thumb moves on between two chunks
        at = min(max(at, low), high)
    assert sorted(have) == list(everything)  # the whole strip, each value once


@pytest.mark.parametrize(("heading", "lead"), [(-1, 0.5), (1, 0.3), (-1, 0.0), (1, 5.0)])
def test_a_chunk_is_aimed_where_the_thumb_will_be_when_it_arrives(heading, lead):
    low, high, step, at = -4.0, 4.0, 0.05, 1.0
    have = list(strip_chunk(low, high, step, 0, at))  # what the grab brought
    chunk = strip_chunk(low, high, step, 1, at, heading, have, lead)
    aim = at + heading * min(lead, MAX_LEAD * (high - low))  # a lead is capped at a tenth of the range
    left = [v for v in strip_values(low, high, step) if v not in have and v not in chunk]

    def cost(v):  # distance from the aim, behind it (the thumb passes it before the chunk is there) 3×
        return abs(v - aim) * (1.0 if (v - aim) * heading >= 0 else BEHIND)

    assert len(chunk) == STRIP_CHUNKS[1]
    assert max(map(cost, chunk)) <= min(map(cost, left)) + 1e-12
    ahead = [v for v in chunk if (v - aim) * heading >= 0]
    assert len(ahead) >= len(chunk) * 3 // 4  # mostly ahead of where the thumb will be
    if lead > 0:
        assert min(abs(v - at) for v in chunk) >= min(lead, 0.8) / 2  # none wasted on the thumb's next steps


def test_the_lead_is_the_speed_times_the_round_trip_scaled_by_the_chunks_sizes():
    # the last chunk (STRIP_CHUNKS[1] frames) took 0.3 s; the next has STRIP_CHUNKS[2]
    scale = (ROUND_TRIP_FRAMES + STRIP_CHUNKS[2]) / (ROUND_TRIP_FRAMES + STRIP_CHUNKS[1])
    assert chunk_lead(2, -1.5, 0.3) == pytest.approx(1.5 * 0.3 * scale)
    assert chunk_lead(0, 1.5, 0.3) == 0.0  # the first chunk: nothing measured yet
    assert chunk_lead(2, 1.5, 99.0) == pytest.approx(1.5 * 2.0 * scale)  # a round trip counts 2 s at most
    assert chunk_lead(2, math.nan, 0.3) == 0.0


def test_a_chunk_leaves_out_values_the_page_holds_whatever_it_sent():
    values = strip_values(-4.0, 4.0, 0.05)
    have = [*values[::2], 1e9, -0.0333]  # values it holds, and numbers of no strip
    rest = strip_chunk(-4.0, 4.0, 0.05, STRIP_LEVELS - 1, 0.0, 0, have)
    assert sorted(set(rest) | set(values[::2])) == list(values)
    assert not set(rest) & set(values[::2])


def test_each_frame_is_the_preview_resolution_evaluation_of_the_spec_with_that_value():
    values = (0.5, 1.25, 3.0)
    frames = explorer_strip(SPEC, W1, values, lines=False)
    assert [f["value"] for f in frames] == list(values)
    for frame in frames:
        edited = spec_with(SPEC, W1, frame["value"])
        truth = flowviz.evaluate(edited, resolution=PREVIEW_RESOLUTION)
        fields = preview_fields(edited)
        for name in ("density", "log_density", "log_det_inverse", "log_det_forward"):
            np.testing.assert_allclose(fields[name], truth[name], rtol=1e-12, atol=1e-15, equal_nan=True)
        # the base density: a closed-form Gaussian on the same grid
        gx, gy = np.meshgrid(truth["x"], truth["y"])
        d = np.stack([gx - 0.3, gy + 0.2], -1)
        cov = np.array([[1.0, 0.3], [0.3, 0.8]])
        quad = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
        pdf = np.exp(-0.5 * quad) / (2 * math.pi * math.sqrt(np.linalg.det(cov)))
        np.testing.assert_allclose(fields["base_density"], pdf, rtol=1e-10)
        # pictures: colour-mapped as the Explorer's figure maps the exact arrays
        density = density_panels(pdf, truth["density"], log_scale=False)[1]
        expected = colour_map(truth["density"], density.vmin, density.vmax, density.scale)
        assert np.array_equal(decoded(frame["images"]["panel1"]), expected)
        volume_z, volume_x = volume_panels(truth["log_det_forward"], truth["log_det_inverse"])
        expected = colour_map(-truth["log_det_inverse"], volume_x.vmin, volume_x.vmax, volume_x.scale)
        assert np.array_equal(decoded(frame["images"]["panel3"]), expected)
        expected = colour_map(truth["log_det_forward"], volume_z.vmin, volume_z.vmax, volume_z.scale)
        assert np.array_equal(decoded(frame["images"]["panel2"]), expected)
        # p_Z shares p_X's colour scale: the same base density, coloured on this frame's range
        expected = colour_map(pdf, density.vmin, density.vmax, density.scale)
        assert np.array_equal(decoded(frame["images"]["panel0"]), expected)
        # what the colour bars must say: each panel's limits, as the figure's own panels have them
        assert frame["limits"] == {
            "panel0": [density.vmin, density.vmax],
            "panel1": [density.vmin, density.vmax],
            "panel2": [volume_z.vmin, volume_z.vmax],
            "panel3": [volume_x.vmin, volume_x.vmax],
        }


def test_frames_whose_colour_ranges_differ_colour_the_base_density_on_their_own_range():
    # w1 from 0.5 to -1 (w.u from 0.4 to -0.8, near the fold at -1): the planar map squeezes a
    # band, the density piles up there, and its colour range grows
    values = (0.5, -1.0)
    frames = explorer_strip(SPEC, W1, values, lines=False)
    tops = [frame["limits"]["panel1"][1] for frame in frames]
    assert tops[0] < tops[1], tops  # (0.2 and 0.6)
    pdf = preview_fields(SPEC)["base_density"]
    for frame, top in zip(frames, tops, strict=True):
        panel = density_panels(pdf, pdf, log_scale=False)[0]
        expected = colour_map(pdf, 0.0, top, panel.scale)
        assert np.array_equal(decoded(frame["images"]["panel0"]), expected)
    assert frames[0]["images"]["panel0"] != frames[1]["images"]["panel0"]


def test_a_value_the_spec_refuses_gets_a_frame_that_says_so():
    # w.u = 0.8 w1 must stay above -1: w1 = -1.5 folds the plane
    frames = explorer_strip(SPEC, W1, (-1.5, 1.0))
    refused, fine = frames
    assert refused["invertible"] is False and "w.u" in refused["reason"]
    assert refused["images"]["panel1"] == NOT_INVERTIBLE_IMAGE
    assert "invertible" not in fine and fine["images"]["panel1"].startswith("data:image/png")
    # the grid lines over p_X are also those over the volume change in x
    assert fine["images"]["panel1-overlay"].startswith("data:image/svg+xml")
    assert ALIASES == {"panel3-overlay": "panel1-overlay"}


def test_each_frame_carries_the_words_beside_its_pictures():
    """The mass in view over the frame's own grid (a plain sum of density times cell area, done here
    with numpy), and the dragged planar layer's w·u line for the frame's value; for a value the spec
    refuses, no mass; a slider of the base has no condition line."""
    refused, fine = explorer_strip(SPEC, W1, (-1.5, 1.0))
    grid = flowviz.evaluate(spec_with(SPEC, W1, 1.0), resolution=PREVIEW_RESOLUTION)
    cell = (grid["x"][1] - grid["x"][0]) * (grid["y"][1] - grid["y"][0])
    assert fine["readouts"]["mass"] == f"≈ {float(np.sum(grid['density']) * cell):.3f}"
    assert fine["readouts"]["condition"].startswith("w·u = 0.800:")  # w·u = 1.0 · 0.8 + 0 · 0.4
    assert refused["readouts"] == {
        "mass": "—",
        "condition": "w·u = -1.200: it must stay above −1, or the layer folds the plane and has no inverse.",
    }
    (base,) = explorer_strip(SPEC, ("base", "mean", 0), (1.0,))
    assert set(base["readouts"]) == {"mass"}
    (rotation,) = explorer_strip(SPEC, ("layers", 0, "degrees"), (10.0,))
    assert set(rotation["readouts"]) == {"mass"}  # a layer with no condition line


def test_a_base_mean_strip_redraws_the_base_density():
    frame = explorer_strip(SPEC, ("base", "mean", 0), (1.0,), lines=False)[0]
    truth = flowviz.evaluate(spec_with(SPEC, ("base", "mean", 0), 1.0), resolution=PREVIEW_RESOLUTION)
    gx, gy = np.meshgrid(truth["x"], truth["y"])
    d = np.stack([gx - 1.0, gy + 0.2], -1)
    cov = np.array([[1.0, 0.3], [0.3, 0.8]])
    pdf = np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d))
    pdf /= 2 * math.pi * math.sqrt(np.linalg.det(cov))
    base = density_panels(pdf, truth["density"], log_scale=False)[0]
    assert np.array_equal(
        decoded(frame["images"]["panel0"]), colour_map(pdf, base.vmin, base.vmax, base.scale)
    )


def test_a_strip_does_not_depend_on_the_current_value_of_its_own_number():
    _strip_cached.cache_clear()
    values = strip_values(-4.0, 4.0, 0.05, 5)
    first = explorer_strip(SPEC, W1, values)
    again = explorer_strip(spec_with(SPEC, W1, 3.5), W1, values)  # the thumb moved: same strip
    assert _strip_cached.cache_len() == 1 and again == first
    other = explorer_strip(spec_with(SPEC, ("layers", 1, "b"), 0.5), W1, values)  # another number moved
    assert _strip_cached.cache_len() == 2 and other != first


@pytest.mark.parametrize("log_scale", [False, True])
def test_log_scale_frames_follow_the_log_scale_figure(log_scale):
    frame = explorer_strip(SPEC, W1, (2.0,), log_scale=log_scale, lines=False)[0]
    truth = flowviz.evaluate(spec_with(SPEC, W1, 2.0), resolution=PREVIEW_RESOLUTION)
    fields = preview_fields(spec_with(SPEC, W1, 2.0))
    panel = density_panels(fields["base_density"], truth["density"], log_scale)[1]
    with np.errstate(divide="ignore"):
        values = np.log(truth["density"]) if log_scale else truth["density"]
    assert np.array_equal(
        decoded(frame["images"]["panel1"]), colour_map(values, panel.vmin, panel.vmax, panel.scale)
    )


def test_a_chunk_sends_the_recoloured_base_density_once_per_colour_range():
    values = (0.4, 0.5, -1.0, -0.95)  # two frames on the range [0, 0.2], two on wider ones
    whole = explorer_strip(SPEC, W1, values, lines=False)
    sent = explorer_strip(SPEC, W1, values, lines=False)
    table = shared_base_images(sent)
    ranges = {tuple(frame["limits"]["panel0"]) for frame in whole}
    assert len(table) == len(ranges) < len(values)
    for full, frame in zip(whole, sent, strict=True):
        assert "panel0" not in frame["images"]
        assert table[frame["base"]] == full["images"]["panel0"]  # the same picture, found by its range
        assert {k: v for k, v in frame.items() if k not in ("images", "base")} == {
            k: v for k, v in full.items() if k != "images"
        }
    # a base's own slider changes the density itself: each frame keeps its picture
    moved = explorer_strip(SPEC, ("base", "mean", 0), (0.0, 1.0), lines=False)
    assert shared_base_images(moved) == {} and all("panel0" in f["images"] for f in moved)
