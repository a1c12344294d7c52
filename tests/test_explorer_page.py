"""The Explorer page driven through Streamlit's AppTest: state, edits, presets and errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import flowviz
from flowviz.flow import Flow
from flowviz.presets import FLOW_PRESETS, LAYER_DEFAULTS, default_spec
from flowviz.spec import decode_token, encode_token, parse_spec

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "explore.py")
ROTATION_SPEC = {
    "base": {"type": "gaussian", "mean": [0.3, -0.2], "cov": [[1.0, 0.3], [0.3, 0.8]]},
    "layers": [
        {"type": "rotation", "degrees": 30},
        {"type": "planar", "w": [2, 0], "u": [0.8, 0.4], "b": 0},
    ],
    "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 96},
}


def open_explorer(spec=None, token: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if spec is not None:
        at.query_params["spec"] = encode_token(parse_spec(spec))
    if token is not None:
        at.query_params["spec"] = token
    at.run()
    assert not at.exception, at.exception
    return at


def mass_shown(at: AppTest) -> str:
    metrics = [m for m in at.metric if m.label == "Mass in view"]
    assert len(metrics) == 1
    return metrics[0].value


def url_spec(at: AppTest) -> dict:
    return decode_token(
        at.query_params["spec"][0] if isinstance(at.query_params["spec"], list) else at.query_params["spec"]
    )


def slider(at: AppTest, label: str):
    found = [s for s in at.slider if s.label == label]
    assert found, f"no slider labelled {label!r}; labels: {[s.label for s in at.slider]}"
    return found[0]


def select_item(at: AppTest, label_start: str) -> None:
    """Pick a part of the flow in the stack list by the start of its shown label."""
    radio = at.radio(key="fv_selected")
    values = ["base", *at.session_state["fv_uids"]]
    match = [v for shown, v in zip(radio.options, values, strict=True) if shown.startswith(label_start)]
    assert match, radio.options
    radio.set_value(match[0]).run()


def json_area(at: AppTest):
    areas = [t for t in at.text_area if t.key and t.key.startswith("fv_json_text")]
    assert len(areas) == 1
    return areas[0]


def test_default_flow_opens_with_its_mass_and_url():
    at = open_explorer()
    expected = flowviz.evaluate(default_spec())["mass"]
    assert mass_shown(at) == f"{float(expected):.4f}"
    assert url_spec(at) == parse_spec(default_spec())


def test_link_opens_the_flow_it_carries():
    at = open_explorer(ROTATION_SPEC)
    expected = float(flowviz.evaluate(ROTATION_SPEC)["mass"])
    assert mass_shown(at) == f"{expected:.4f}"
    assert url_spec(at) == parse_spec(ROTATION_SPEC)


def test_token_without_padding_and_with_padding_both_open():
    token = encode_token(parse_spec(ROTATION_SPEC))
    padded = token + "=" * (-len(token) % 4)
    for candidate in (token, padded):
        at = open_explorer(token=candidate)
        assert url_spec(at) == parse_spec(ROTATION_SPEC)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-spec!!",
        encode_token(
            {"base": {"type": "gaussian"}, "layers": [{"type": "planar", "w": [1, 0], "u": [-2, 0]}]}
        ),
        encode_token({"base": {"type": "nope"}, "layers": []}),
    ],
)
def test_bad_token_shows_a_message_and_the_default_flow(token):
    at = open_explorer(token=token)
    assert any("could not be opened" in e.value for e in at.error), [e.value for e in at.error]
    assert url_spec(at) == parse_spec(default_spec())


def test_slider_edit_updates_spec_url_and_mass():
    at = open_explorer(ROTATION_SPEC)
    slider(at, "Rotation angle (degrees)")  # the first layer is selected on open
    slider(at, "Rotation angle (degrees)").set_value(75.0).run()
    assert not at.exception
    spec = url_spec(at)
    assert spec["layers"][0]["degrees"] == 75.0
    expected = float(flowviz.evaluate(spec)["mass"])
    assert mass_shown(at) == f"{expected:.4f}"


def test_planar_that_cannot_be_inverted_is_refused_and_last_good_flow_kept():
    at = open_explorer(ROTATION_SPEC)
    select_item(at, "2 ·")
    before = url_spec(at)
    slider(at, "Planar push u₁").set_value(-1.0).run()  # w.u = 2 * -1 = -2 <= -1
    assert not at.exception
    assert any("w.u" in e.value and "-1" in e.value for e in at.error), [e.value for e in at.error]
    assert url_spec(at) == before


def test_stack_edits_add_move_copy_switch_off_delete():
    at = open_explorer(ROTATION_SPEC)
    at.selectbox(key="fv_add_kind").set_value("swirl").run()
    at.button(key="fv_add").click().run()
    assert [layer["type"] for layer in url_spec(at)["layers"]] == ["rotation", "planar", "swirl"]
    # the new layer is selected: move it up
    up = [b for b in at.button if b.key and b.key.endswith(".up")]
    up[0].click().run()
    assert [layer["type"] for layer in url_spec(at)["layers"]] == ["rotation", "swirl", "planar"]
    dup = [b for b in at.button if b.key and b.key.endswith(".dup")]
    dup[0].click().run()
    assert [layer["type"] for layer in url_spec(at)["layers"]] == ["rotation", "swirl", "swirl", "planar"]
    on = next(t for t in at.toggle if t.label == "Layer on")
    on.set_value(False).run()
    spec = url_spec(at)
    assert spec["layers"][2].get("enabled") is False
    # switching a layer off removes it from the flow: the mass is that of the remaining layers
    active = {**spec, "layers": [layer for layer in spec["layers"] if layer.get("enabled", True)]}
    assert mass_shown(at) == f"{float(flowviz.evaluate(active)['mass']):.4f}"
    delete = [b for b in at.button if b.key and b.key.endswith(".del")]
    delete[0].click().run()
    assert [layer["type"] for layer in url_spec(at)["layers"]] == ["rotation", "swirl", "planar"]
    assert not at.exception


@pytest.mark.parametrize("name", list(FLOW_PRESETS))
def test_each_preset_loads_whole(name):
    at = open_explorer()
    at.button(key=f"fv_preset_{name}").click().run()
    assert not at.exception
    assert url_spec(at) == FLOW_PRESETS[name][1]
    mass = float(mass_shown(at))
    assert mass == pytest.approx(float(flowviz.evaluate(FLOW_PRESETS[name][1])["mass"]), abs=1e-4)
    assert mass > 0.97  # each preset's window is chosen to hold its flow


def test_every_layer_type_can_be_added_and_edited_without_error():
    at = open_explorer({"base": {"type": "gaussian"}, "layers": [], "view": {"resolution": 64}})
    for kind in LAYER_DEFAULTS:
        at.selectbox(key="fv_add_kind").set_value(kind).run()
        at.button(key="fv_add").click().run()
        assert not at.exception, kind
        assert url_spec(at)["layers"][-1]["type"] == kind
        # nudge every slider of the new layer to its upper limit and back: never an exception
        labels = [s.label for s in at.slider if not s.label.startswith(("View", "Grid", "Number of samples"))]
        for label in labels[:3]:
            control = slider(at, label)
            control.set_value(control.max).run()
            assert not at.exception, (kind, label)
    assert len(url_spec(at)["layers"]) == len(LAYER_DEFAULTS)


def test_base_types_and_mixture_presets():
    at = open_explorer(
        {"base": {"type": "gaussian"}, "layers": [{"type": "tanh"}], "view": {"resolution": 64}}
    )
    select_item(at, "Base")
    at.selectbox(key=next(s.key for s in at.selectbox if s.label == "Base distribution p_Z")).set_value(
        "uniform"
    ).run()
    assert url_spec(at)["base"]["type"] == "uniform"
    at.selectbox(key=next(s.key for s in at.selectbox if s.label == "Base distribution p_Z")).set_value(
        "mixture"
    ).run()
    base = url_spec(at)["base"]
    assert base["type"] == "mixture" and len(base["components"]) == 2
    next(b for b in at.button if b.label == "Ring of 8").click().run()
    base = url_spec(at)["base"]
    assert len(base["components"]) == 8
    means = np.array([c["mean"] for c in base["components"]])
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 2.5, atol=1e-5)
    assert not at.exception


def test_gaussian_base_sliders_set_mean_and_covariance():
    at = open_explorer({"base": {"type": "gaussian"}, "layers": [], "view": {"resolution": 64}})
    slider(at, "Mean μ₁ (x)").set_value(1.0).run()
    slider(at, "Std. dev. σ₂ (y)").set_value(2.0).run()
    slider(at, "Correlation ρ").set_value(0.5).run()
    base = url_spec(at)["base"]
    assert base["mean"] == [1.0, 0.0]
    np.testing.assert_allclose(base["cov"], [[1.0, 1.0], [1.0, 4.0]], atol=1e-12)


def test_json_editor_applies_valid_and_refuses_invalid():
    at = open_explorer(ROTATION_SPEC)
    at.segmented_control(key="fv_extras").set_value(["Formulas", "JSON"]).run()
    text = json_area(at)
    edited = copy.deepcopy(parse_spec(ROTATION_SPEC))
    edited["layers"][0]["degrees"] = 10.0
    text.set_value(json.dumps(edited)).run()
    assert not at.exception
    assert url_spec(at)["layers"][0]["degrees"] == 10.0
    broken = json.dumps(edited).replace('"degrees": 10.0', '"degrees": "ten"')
    json_area(at).set_value(broken).run()
    assert not at.exception
    assert any("degrees must be a number" in e.value for e in at.error), [e.value for e in at.error]
    assert url_spec(at)["layers"][0]["degrees"] == 10.0  # the last good flow stays
    assert json_area(at).value == broken  # nothing the user wrote is lost


def test_view_window_and_resolution_travel_in_the_spec():
    at = open_explorer(ROTATION_SPEC)
    next(s for s in at.select_slider if s.label.startswith("Grid resolution")).set_value(128).run()
    slider(at, "View x-range").set_value((-6.0, 6.0)).run()
    view = url_spec(at)["view"]
    assert view == {"xlim": [-6.0, 6.0], "ylim": [-4.0, 4.0], "resolution": 128}


def test_more_views_and_probe_numbers():
    at = open_explorer(ROTATION_SPEC)
    at.pills(key="fv_extra").set_value(["Change-of-variables terms", "Layer by layer", "Probe a point"]).run()
    assert not at.exception
    px = slider(at, "Probe x₁").value
    py = slider(at, "Probe x₂").value
    flow = Flow.from_spec(ROTATION_SPEC)
    import torch

    expected = float(flow.log_prob(torch.tensor([[px, py]], dtype=torch.float64))[0])
    shown = " ".join(latex.value for latex in at.latex)
    assert f"{expected:.4f}" in shown


def test_trained_flow_handed_over_is_shown_read_only():
    at = AppTest.from_file(PAGE, default_timeout=120)
    flow = Flow.from_spec({"base": {"type": "gaussian"}, "layers": [{"type": "swirl", "strength": 2}]})
    at.session_state["learned_flow"] = {
        "flow": flow,
        "title": "a test flow",
        "data": np.random.default_rng(0).normal(size=(50, 2)),
    }
    at.run()
    assert not at.exception
    assert any("a test flow" in i.value for i in at.info)
    assert [m for m in at.metric if m.label == "Mass in view"]
    at.segmented_control(key="fv_mode").set_value("Hand-built flow").run()
    assert not at.exception
    assert at.radio(key="fv_selected")


def test_exact_values_turn_sliders_into_number_boxes_and_back():
    at = open_explorer(ROTATION_SPEC)
    select_item(at, "1 ·")
    at.toggle(key="fv_exact").set_value(True).run()
    assert not at.exception
    assert "Rotation angle (degrees)" not in [s.label for s in at.slider]
    (box,) = [n for n in at.number_input if n.label == "Rotation angle (degrees)"]
    assert box.value == 30
    box.set_value(12.345).run()
    assert not at.exception
    assert url_spec(at)["layers"][0]["degrees"] == pytest.approx(12.345)
    assert mass_shown(at) == f"{float(flowviz.evaluate(url_spec(at))['mass']):.4f}"
    # back to sliders: the typed value stays
    at.toggle(key="fv_exact").set_value(False).run()
    assert slider(at, "Rotation angle (degrees)").value == pytest.approx(12.345)
    assert url_spec(at)["layers"][0]["degrees"] == pytest.approx(12.345)


def test_a_slider_whose_limits_move_keeps_its_value():
    """Radial β's lower limit is −α: moving α redraws β's slider, and β must stay where it was."""
    spec = {
        "base": {"type": "gaussian"},
        "layers": [{"type": "radial", "center": [0, 0], "alpha": 1.0, "beta": 0.5}],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 64},
    }
    at = open_explorer(spec)
    beta = next(s.label for s in at.slider if s.label.startswith("Radial β"))
    slider(at, beta).set_value(2.0).run()
    slider(at, "Radial α (softness)").set_value(0.5).run()
    assert not at.exception
    assert slider(at, beta).value == 2.0
    assert url_spec(at)["layers"][0] == {**spec["layers"][0], "alpha": 0.5, "beta": 2.0}


def test_probe_stays_put_when_the_window_widens():
    at = open_explorer(ROTATION_SPEC)
    at.pills(key="fv_extra").set_value(["Probe a point"]).run()
    slider(at, "Probe x₁").set_value(1.0).run()
    slider(at, "View x-range").set_value((-6.0, 6.0)).run()
    assert not at.exception
    assert url_spec(at)["view"]["xlim"] == [-6.0, 6.0]
    assert slider(at, "Probe x₁").value == 1.0


def test_linked_value_beyond_a_slider_range_is_kept_and_then_moves_normally():
    spec = copy.deepcopy(ROTATION_SPEC)
    spec["layers"][0]["degrees"] = 200
    at = open_explorer(spec)
    angle = slider(at, "Rotation angle (degrees)")
    assert (angle.min, angle.max, angle.value) == (-180, 200, 200)
    angle.set_value(100.0).run()
    assert not at.exception
    assert url_spec(at)["layers"][0]["degrees"] == 100.0
    assert slider(at, "Rotation angle (degrees)").value == 100.0


WIDE_SPECS = {
    "window beyond ±20": {
        "base": {"type": "gaussian"},
        "layers": [{"type": "scale", "scale": [10, 10]}],
        "view": {"xlim": [-30, 30], "ylim": [-25, 35], "resolution": 64},
    },
    "uniform box beyond ±4": {
        "base": {"type": "uniform", "low": [-6, -1], "high": [5, 1]},
        "layers": [],
        "view": {"xlim": [-8, 8], "ylim": [-8, 8], "resolution": 64},
    },
    "one mixture component": {
        "base": {
            "type": "mixture",
            "components": [{"mean": [1, 0], "cov": [[1, 0], [0, 1]]}],
            "weights": [1],
        },
        "layers": [],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 64},
    },
    "nine spline bins": {
        "base": {"type": "gaussian"},
        "layers": [
            {
                "type": "spline",
                "bound": 3,
                "widths": [1] * 9,
                "heights": [1, 2] * 4 + [1],
                "derivatives": [1] * 8,
            }
        ],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 64},
    },
    "five knots": {
        "base": {"type": "gaussian"},
        "layers": [
            {"type": "piecewise_linear", "knots": [-2, -1, 0, 1, 2], "slopes": [1, 2, 0.5, 2, 0.5, 1]}
        ],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 64},
    },
}


@pytest.mark.parametrize("name", WIDE_SPECS)
def test_valid_specs_beyond_the_controls_ranges_open_unchanged(name):
    """A link may carry any valid spec: the controls widen to hold it, nothing is rewritten."""
    spec = WIDE_SPECS[name]
    at = open_explorer(spec)
    select_item(at, "Base" if not spec["layers"] else "1 ·")
    assert not at.exception
    assert url_spec(at) == parse_spec(spec)
    assert mass_shown(at) == f"{float(flowviz.evaluate(spec)['mass']):.4f}"


def test_probe_names_layers_as_the_stack_list_does_when_one_is_off():
    spec = copy.deepcopy(ROTATION_SPEC)
    spec["layers"][0]["enabled"] = False
    at = open_explorer(spec)
    at.pills(key="fv_extra").set_value(["Probe a point"]).run()
    assert not at.exception
    (table,) = at.dataframe
    assert list(table.value["layer (x back to z)"]) == ["2 · planar"]


def test_a_grid_beyond_the_offered_resolutions_is_kept_with_a_warning():
    spec = copy.deepcopy(ROTATION_SPEC)
    spec["view"]["resolution"] = 700
    at = open_explorer(spec)
    assert url_spec(at)["view"]["resolution"] == 700
    assert any("700² grid" in w.value for w in at.warning)
    at.select_slider(
        key=next(s.key for s in at.select_slider if s.label.startswith("Grid resolution"))
    ).set_value(256).run()
    assert url_spec(at)["view"]["resolution"] == 256
    assert not any("grid (from the link" in w.value for w in at.warning)


def test_a_refused_edit_names_what_to_change_and_promises_no_highlight():
    """Nothing on the page is highlighted: the message itself must say which values are wrong."""
    at = open_explorer(ROTATION_SPEC)
    select_item(at, "2 ·")
    at.toggle(key="fv_exact").set_value(True).run()
    (box,) = [n for n in at.number_input if n.label == "Planar push u₁"]
    box.set_value(-1.0).run()
    (message,) = [e.value for e in at.error if "Not applied" in e.value]
    assert "highlighted" not in message
    assert "w.u = -2" in message and "until the values this names are changed" in message


def test_trained_layers_are_named_in_words():
    """A trained flow's layers read as what they do, not as class names with a structure tag."""
    from flowviz.data import toy_set
    from flowviz.train import ModelConfig, TrainConfig, Trainer

    trainer = Trainer(toy_set("circles", 200), ModelConfig(layers=2, hidden=16), TrainConfig(steps=5))
    trainer.step(5)
    model = trainer.result("circles")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["learned_flow"] = {"flow": model.flow, "title": "circles", "data": None}
    at.run()
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert labels[:4] == [
        "1 · spline coupling: x₂ given x₁ · Jacobian: triangular",
        "2 · rotation by 90° · Jacobian: volume-preserving",
        "3 · spline coupling: x₁ given x₂ · Jacobian: triangular",
        "4 · undo standardisation → x · Jacobian: full",
    ], labels
    assert not any("neural_spline_coupling" in label for label in labels)


BELOW_THE_SLIDERS = {
    "planar b": {"type": "planar", "w": [1, 0], "u": [0.5, 0.5], "b": -10},
    "shift": {"type": "shift", "shift": [-6, 1]},
    "radial beta": {"type": "radial", "center": [0, 0], "alpha": 1, "beta": -0.97},
}


@pytest.mark.parametrize("name", BELOW_THE_SLIDERS)
def test_link_values_below_a_slider_are_kept_after_clicks(name):
    """A value below a slider's default minimum survives the next clicks, as one above its maximum does."""
    spec = {
        "base": {"type": "gaussian"},
        "layers": [BELOW_THE_SLIDERS[name]],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 64},
    }
    at = open_explorer(spec)
    select_item(at, "1 ·")
    at.pills(key="fv_extra").set_value(["Samples"]).run()
    at.pills(key="fv_extra").set_value([]).run()
    assert not at.exception
    assert url_spec(at) == parse_spec(spec)


def test_a_flow_too_large_for_a_link_says_so_and_leaves_the_bar_empty(monkeypatch):
    """Beyond the link limit the address bar holds no spec (not one that cannot be opened), with a warning."""
    import flowviz.ui.state

    at = open_explorer(ROTATION_SPEC)
    assert url_spec(at) == parse_spec(ROTATION_SPEC)
    token = at.query_params["spec"]
    token = token[0] if isinstance(token, list) else token
    monkeypatch.setattr(flowviz.ui.state, "MAX_LINK_CHARS", len(token) - 1)
    select_item(at, "Base")
    assert not at.exception
    assert "spec" not in at.query_params
    (warning,) = [w.value for w in at.warning if "too large for a link" in w.value]
    assert f"its address would be {len(token):,} characters, more than the {len(token) - 1:,}" in warning
    assert "Download spec (JSON)" in warning
    monkeypatch.setattr(flowviz.ui.state, "MAX_LINK_CHARS", len(token))
    select_item(at, "1 ·")
    assert url_spec(at) == parse_spec(ROTATION_SPEC)
    assert not [w for w in at.warning if "too large for a link" in w.value]


def test_a_mass_that_is_no_probability_is_flagged_and_still_shown_plainly():
    cov = [[1, 1 - 1e-16], [1 - 1e-16, 1]]
    spec = {
        "base": {"type": "gaussian", "mean": [0, 0], "cov": cov},
        "layers": [],
        "view": ROTATION_SPEC["view"],
    }
    at = open_explorer(spec)
    assert float(mass_shown(at)) > 1000
    assert any("more than 1: not a probability" in w.value for w in at.warning)
    assert not any(w.value.endswith("widen the view.") for w in at.warning)


def test_opening_the_base_editor_changes_no_digit_of_a_link():
    """cov from a link is shown as sigma and rho; untouched, it goes back exactly (not 0.7999999999999999)."""
    at = open_explorer(ROTATION_SPEC)
    select_item(at, "Base")
    at.pills(key="fv_extra").set_value(["Samples"]).run()
    assert not at.exception
    assert url_spec(at) == parse_spec(ROTATION_SPEC)


@pytest.mark.parametrize(
    "request_sent",
    [
        {"level": "two", "at": "x", "heading": 7, "have": "all"},
        {"level": -3, "at": float("nan"), "have": [float("inf"), "a", None]},
        {"level": 99, "at": 1e300, "heading": -1, "have": list(range(10_000))},
        {"level": 1, "at": 0.5, "heading": 1, "speed": "fast", "lag": None},
        {"level": 2, "at": 0.5, "heading": -1, "speed": -1e308, "lag": float("inf")},
        {"level": 3, "at": 0.5, "heading": 1, "speed": True, "lag": -5},
    ],
)
def test_a_malformed_request_for_a_drag_strip_gets_a_strip_not_an_error(request_sent, monkeypatch):
    import flowviz.ui.drag_slider as drag_slider

    sent = []
    original = drag_slider._component

    def recording(**kwargs):
        sent.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(drag_slider, "_component", recording)
    at = open_explorer(ROTATION_SPEC)
    first = next(call for call in sent if call["data"].get("strip_id"))
    want_key = first["key"][: -len(".drag")] + ".want"
    at.session_state[want_key] = {"id": first["data"]["strip_id"], **request_sent}
    sent.clear()
    at.run()
    assert not at.exception, at.exception
    strips = [call["data"]["strip"] for call in sent if "strip" in call["data"]]
    assert len(strips) == 1
    assert strips[0]["frames"] and all("images" in frame for frame in strips[0]["frames"])


def test_a_control_of_a_layer_that_is_gone_changes_nothing():
    """A layer's buttons and switch still on the page after a preset replaced the stack (the
    browser sends their events with its next run) ask for nothing, and raise nothing."""

    def script():
        import json as json_

        import streamlit as st

        from flowviz.presets import FLOW_PRESETS
        from flowviz.ui import state

        state.init_state()
        old = state.uids()[0]
        state.replace_spec(FLOW_PRESETS["banana"][1])
        before = json_.dumps(state.current_spec(), sort_keys=True)
        state.set_enabled(old, False)
        state.move(old, 1)
        state.duplicate(old)
        state.remove(old)
        st.text(f"unchanged: {json_.dumps(state.current_spec(), sort_keys=True) == before}")

    at = AppTest.from_function(script, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.text[0].value == "unchanged: True"
