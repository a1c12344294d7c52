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


def test_frames_go_out_in_the_one_run_that_answers_a_request():
    """Asked for (as the browser's Play does), the strip is sent once; later runs of the same flow carry none."""
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["spec"] = encode_token(SPEC)
    at.session_state["fv_player_asked"] = strip_id(canonical_json(SPEC), False)
    at.run()
    assert not at.exception, at.exception
    frames = json.loads(player_data(at)["frames"])
    assert frames["n"] == 2 * 24 + 1 and frames["labels"][-1] == "3 · tanh, 100 %"
    at.run()
    assert player_data(at)["frames"] == ""
