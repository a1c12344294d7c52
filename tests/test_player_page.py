"""The player on the Explorer through AppTest: present for every flow, and free until Play is pressed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

import flowviz.playback
from flowviz.flow import Flow
from flowviz.playback import frame_times
from flowviz.spec import canonical_json, encode_token, parse_spec
from flowviz.ui.player import strip_id

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "explore.py")
SPEC = parse_spec(
    {
        "base": {"type": "gaussian"},
        "layers": [{"type": "rotation", "degrees": 30}, {"type": "exp", "enabled": False}, {"type": "tanh"}],
        "view": {"xlim": [-3, 3], "ylim": [-3, 3], "resolution": 64},
    }
)


def player_data(at: AppTest) -> dict:
    (player,) = [e for e in at.get("bidi_component") if e.proto.component_name == "flowviz.flow_player"]
    return json.loads(player.proto.json)


def refuse_strips(*args, **kwargs):
    raise AssertionError("a frame strip was computed before anyone pressed Play")


def test_the_player_sends_no_frames_until_asked(monkeypatch):
    """The sliders' latency stays as it was: until Play, the page computes and sends no strip."""
    monkeypatch.setattr(flowviz.playback, "play_strip", refuse_strips)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["spec"] = encode_token(SPEC)
    at.run()
    assert not at.exception, at.exception
    data = player_data(at)
    assert data["frames"] == ""
    assert data["strip_id"] == strip_id(canonical_json(SPEC), False)
    assert data["n_frames"] == len(frame_times(2)) == 2 * 24 + 1  # the switched-off layer is not played
    assert len(json.dumps(data)) < 2000
    # the log scale is another strip (another colour range)
    at.toggle(key="fv_log").set_value(True).run()
    assert player_data(at)["strip_id"] == strip_id(canonical_json(SPEC), True)


def test_a_trained_flow_gets_the_player_too(monkeypatch):
    monkeypatch.setattr("flowviz.playback.play_strip", refuse_strips)  # what trained_strip calls
    at = AppTest.from_file(PAGE, default_timeout=120)
    flow = Flow.from_spec({"base": {"type": "gaussian"}, "layers": [{"type": "swirl", "strength": 2}]})
    at.session_state["learned_flow"] = {"flow": flow, "title": "a test flow", "data": np.zeros((5, 2))}
    at.run()
    assert not at.exception
    data = player_data(at)
    assert data["frames"] == "" and data["n_frames"] == 25
    assert data["ahead"] is False  # no cost model for a trained flow's strip: made when Play asks


def test_frames_go_out_in_the_one_run_that_answers_a_request():
    """Asked for (as the browser's Play does), the strip is sent once; later runs of the same flow carry none."""
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["spec"] = encode_token(SPEC)
    at.session_state["fv_player_asked"] = (strip_id(canonical_json(SPEC), False), False)
    at.run()
    assert not at.exception, at.exception
    frames = json.loads(player_data(at)["frames"])
    assert frames["n"] == 2 * 24 + 1 and frames["labels"][-1] == "3 · tanh, 100 %"
    at.run()
    assert player_data(at)["frames"] == ""


def test_frames_asked_for_ahead_of_play_are_made_at_low_priority_as_no_quick_run(monkeypatch):
    """A still page asks for the frames before Play: they go out as for Play, but the run lowers its
    thread and stops counting as a quick run (nobody waits for it, so training is not held)."""
    from flowviz.ui import fairness

    lowered, not_quick = [], []
    real_lowered = fairness.lowered

    def spy_lowered(low=True):
        lowered.append(low)
        return real_lowered(False)  # (the test's own thread keeps its priority)

    monkeypatch.setattr(fairness, "lowered", spy_lowered)
    real_not_quick = fairness.QUICK_RUNS.not_quick

    def spy_not_quick():  # said inside a run (every run also says it at its end, then outside)
        if getattr(fairness.QUICK_RUNS._counted, "depth", 0) > 0:
            not_quick.append(True)
        real_not_quick()

    monkeypatch.setattr(fairness.QUICK_RUNS, "not_quick", spy_not_quick)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["spec"] = encode_token(SPEC)
    at.run()
    assert player_data(at)["ahead"] is True  # a light flow: the page may ask ahead
    assert lowered == [] and not_quick == []  # no frames asked for: no such run
    at.session_state["fv_player_asked"] = (strip_id(canonical_json(SPEC), False), True)
    at.run()
    assert not at.exception, at.exception
    assert json.loads(player_data(at)["frames"])["n"] == 2 * 24 + 1
    assert lowered == [True] and not_quick == [True]
    # asked for by Play itself: a quick run at the visitor's priority
    at.session_state["fv_player_asked"] = (strip_id(canonical_json(SPEC), False), False)
    at.run()
    assert lowered == [True, False] and not_quick == [True]


def test_a_costly_flow_is_not_played_ahead():
    """The page asks ahead only where the strip costs at most about a second of one core."""
    from flowviz.ui.fairness import play_ahead

    light = parse_spec({"base": {"type": "gaussian"}, "layers": [{"type": "tanh"}]})
    assert play_ahead(light, len(frame_times(1)), 96)
    heavy_layers = [{"type": "planar", "w": [1, 0], "u": [0.5, 0], "b": 0}] * 24
    heavy = parse_spec({"base": {"type": "gaussian"}, "layers": heavy_layers})
    assert not play_ahead(heavy, len(frame_times(24)), 96)
    # a grid costly in itself: not either, however short its strip
    fine = parse_spec({**light, "view": {**light["view"], "resolution": 1024}})
    assert not play_ahead(fine, len(frame_times(1)), 96)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["spec"] = encode_token(heavy)
    at.run()
    assert not at.exception, at.exception
    assert player_data(at)["ahead"] is False
