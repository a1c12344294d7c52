"""The 1D page on its spec: the share link reproduces the picture and its numbers exactly.

The page keeps the canonical 1D spec it drew (``one_d.spec``); its share link holds that spec's
token, and ``/1d?spec=TOKEN`` opens the same curves, interval, probe and numbers. A bad or stale
token gets a one-line warning and the default picture.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flowviz.line import build_line_base, build_line_map, carry_interval, line_curves, probe
from flowviz.line.spec import (
    DEFAULT_LINE_SPEC,
    curves_of,
    line_base,
    line_map,
    line_token,
    parse_line_spec,
    read_line_token,
    shape_json,
)
from flowviz.spec import encode_token

PAGE = Path(__file__).resolve().parents[1] / "app_pages" / "one_d.py"
K = "one_d."


def run_page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def traces(at: AppTest) -> list[dict]:
    """The traces of the page's chart, as sent to the browser."""
    (chart,) = [e for e in at.get("bidi_component") if e.proto.component_name == "flowviz.live_chart"]
    return json.loads(json.loads(chart.proto.json)["figure"])["data"]


def shared_token(at: AppTest) -> str:
    (link,) = [c.value for c in at.code if "?spec=" in c.value]
    return link.split("?spec=", 1)[1]


def test_the_share_link_reopens_the_same_picture_and_numbers():
    at = run_page()
    at.button(key=K + "preset_compress").click().run()  # uniform [0, 1], x = 0.5 z + 0.25
    at.slider(key=K + "affine_slope").set_value(1.25).run()
    at.slider(key=K + "interval_width").set_value(0.4).run()
    at.slider(key=K + "probe_x").set_value(0.9).run()
    at.select_slider(key=K + "samples").set_value(1_000).run()
    token = shared_token(at)
    spec = read_line_token(token)
    assert (
        spec
        == at.session_state[K + "spec"]
        == parse_line_spec(
            {
                "base": {"kind": "uniform", "low": 0.0, "high": 1.0},
                "map": {"kind": "affine", "slope": 1.25, "offset": 0.25},
                "interval": {"start": 0.3, "width": 0.4},
                "probe": 0.9,
                "samples": 1000,
            }
        )
    )
    opened = run_page({"spec": token})
    assert not opened.warning
    assert metrics(opened) == metrics(at)
    assert traces(opened) == traces(at)
    assert shared_token(opened) == token
    assert dict(opened.query_params) == {}  # adopted once: later edits are the person's own
    # the numbers shown are x = a z + b's: z = (x - b) / a, p_X = 1 / a on the uniform base
    assert float(metrics(opened)["z = f⁻¹(x)"]) == pytest.approx((0.9 - 0.25) / 1.25, abs=1e-12)
    assert float(metrics(opened)["p_X(x)"]) == pytest.approx(1 / 1.25, rel=1e-12)


def test_a_link_to_a_spline_on_a_mixture_shows_what_the_core_computes():
    spec = parse_line_spec(
        {
            "base": {"kind": "mixture", "mean1": -1, "std1": 0.5, "mean2": 1.5, "std2": 0.3, "weight1": 0.25},
            "map": {"kind": "spline", "knots_z": [-1.5, 0, 1.5], "knots_x": [-2, -1, 1]},
            "interval": {"start": -0.5, "width": 0.2},
            "probe": -0.4,
            "samples": 100,
        }
    )
    at = run_page({"spec": line_token(spec)})
    assert not at.warning
    assert at.selectbox(key=K + "map_kind").value == "spline"
    assert at.slider(key=K + "spline_x2").value == -1.0
    base, fmap = build_line_base(*line_base(spec)), build_line_map(*line_map(spec))
    at_probe = probe(base, fmap, -0.4)
    carried = carry_interval(base, fmap, -0.5, 0.2)
    shown = metrics(at)
    assert shown["z = f⁻¹(x)"] == f"{at_probe.z:.12g}"
    assert shown["p_X(x)"] == f"{at_probe.density:.12g}"
    assert shown["Probability in [z, z+dz] (base CDF)"] == f"{carried.mass_base:.12f}"
    assert at.session_state[K + "spec"] == spec


@pytest.mark.parametrize(
    ("token", "named"),
    [
        ("%%%", "spec token: is not URL-safe base64"),
        (encode_token({"probe": "left"}), "probe: must be a number"),
        (encode_token({"map": {"kind": "affine", "slope": 0, "offset": 1}}), "map: slope a = 0"),
        (encode_token({"version": 1, "base": {"type": "gaussian"}, "layers": []}), "unknown field 'version'"),
        (
            encode_token({"map": {"kind": "spline", "knots_z": [-2, -1, 0, 1], "knots_x": [-2, -1, 0, 1]}}),
            "map.knots_z: this page shows 3 values, the spec has 4",
        ),
    ],
)
def test_a_bad_or_stale_token_is_named_and_the_default_picture_shown(token, named):
    at = run_page({"spec": token})
    (warning,) = [w.value for w in at.warning]
    assert named in warning and "\n" not in warning
    assert at.session_state[K + "spec"] == DEFAULT_LINE_SPEC
    assert metrics(at) == metrics(run_page())


def test_an_invalid_control_keeps_the_last_drawn_spec_and_its_link():
    at = run_page()
    at.slider(key=K + "probe_x").set_value(0.5).run()
    before = shared_token(at)
    at.slider(key=K + "uniform_low").set_value(2.5).run()  # above high = 2: not drawn
    assert any("must be below high" in e.value for e in at.sidebar.error)
    assert shared_token(at) == before
    assert read_line_token(before)["probe"] == 0.5


def test_the_computations_are_cached_by_the_spec_across_runs_and_visitors():
    spec = parse_line_spec(
        {"base": {"kind": "gaussian", "mean": 0.123, "std": 0.77}, "map": {"kind": "tanh", "steepness": 1.3}}
    )
    shape = shape_json(spec)
    curves_of.cache_clear()
    first = run_page({"spec": line_token(spec)})
    assert curves_of.cache_len() == 1
    cached = curves_of(shape)
    second = run_page({"spec": line_token(spec)})  # another visitor, the same picture: nothing recomputed
    second.slider(key=K + "probe_x").set_value(0.3).run()  # a rerun of the same session
    assert curves_of.cache_len() == 1 and curves_of(shape) is cached
    assert metrics(second)["z = f⁻¹(x)"] != metrics(first)["z = f⁻¹(x)"]
    fresh = line_curves(build_line_base(*line_base(spec)), build_line_map(*line_map(spec)))
    assert cached.x_range == fresh.x_range and cached.mass_in_view == fresh.mass_in_view
    # the probe's numbers are the core's at x = 0.3: z = atanh(x) / k
    assert float(metrics(second)["z = f⁻¹(x)"]) == pytest.approx(math.atanh(0.3) / 1.3, rel=1e-11)


def test_values_beyond_the_sliders_are_moved_inside_and_named():
    spec = parse_line_spec({"base": {"kind": "uniform", "low": -10, "high": 1}, "probe": 0.25})
    at = run_page({"spec": line_token(spec)})
    (warning,) = [w.value for w in at.warning]
    assert "its base went beyond what the sliders reach here and was moved inside" in warning
    drawn = at.session_state[K + "spec"]
    assert drawn["base"] == {"kind": "uniform", "high": 1.0, "low": -3.0}  # the slider's least value
    assert drawn["probe"] == 0.25
    at.slider(key=K + "probe_x").set_value(0.5).run()
    assert not at.warning  # said once
