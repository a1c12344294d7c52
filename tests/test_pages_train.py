"""The Train page in Streamlit's AppTest: data from presets, drawings and files; training; hand-over.

The page runs inside the app (app.py's navigation), as a person reaches it.
Drawings are injected as the canvas's own JSON in the session state.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flowviz.data import CanvasWindow, points_to_drawing, toy_set
from flowviz.model_io import model_bytes
from flowviz.train import ModelConfig, TrainConfig, Trainer

TIMEOUT = 120
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    return at


def _button(at: AppTest, label: str):
    for button in at.button:
        if button.label == label:
            return button
    raise AssertionError(f"no button {label!r}; buttons: {[b.label for b in at.button]}")


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _array(value) -> np.ndarray:
    """A plotly JSON array: a list, or {"dtype", "bdata"} (base64 of the raw numbers)."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value, dtype=float)


def _trace(spec: dict, name: str) -> np.ndarray:
    trace = next(t for t in spec["data"] if t.get("name") == name)
    return np.stack([_array(trace["x"]), _array(trace["y"])], -1)


def _preview_title(at: AppTest) -> str:
    for spec in _charts(at):
        title = spec.get("layout", {}).get("title", {}).get("text", "")
        if title.startswith("Your data"):
            return title
    raise AssertionError("no data preview chart")


def _wait_for(at: AppTest, done, seconds: float = 90.0) -> None:
    started = time.time()
    while not done() and time.time() - started < seconds:
        time.sleep(0.5)
        at.run()
    assert done(), "timed out"


def _close_job(at: AppTest) -> None:
    job = at.session_state["tr_job"] if "tr_job" in at.session_state else None  # noqa: SIM401
    if job is not None:
        job.close()


def test_every_control_is_labelled_and_the_page_is_calm():
    at = _page()
    labels = [s.label for s in at.slider] + [s.label for s in at.select_slider] + [r.label for r in at.radio]
    assert all(label.strip() for label in labels)
    for expected in ("Coupling layers", "Spline bins K (NSF only)", "Learning rate (peak of the schedule)"):
        assert expected in labels
    assert not at.error and not at.exception
    assert [s.value for s in at.subheader][:3] == ["1 · Data", "2 · Model and training", "3 · Training"]


def test_presets_with_size_and_noise():
    at = _page()
    at.selectbox(key="tr_preset").set_value("circles").run()
    at.slider(key="tr_preset_n").set_value(400).run()
    assert _preview_title(at) == "Your data: 400 points"
    noise = at.slider(key="tr_preset_noise_circles")
    assert noise.label == "Noise (standard deviation added to each point)"
    noise.set_value(0.0).run()
    spec = next(s for s in _charts(at) if s["layout"]["title"]["text"].startswith("Your data"))
    x, y = _trace(spec, "training data").T
    radii = np.sort(np.unique(np.round(np.hypot(x, y), 6)))
    assert np.allclose(radii, [1.25, 2.5])  # without noise: exactly the two rings
    assert not _button(at, "Start training").disabled


def test_points_drawn_on_the_canvas_become_the_data():
    at = _page()
    points = np.array([[0.0, 0.0], [1.0, 2.0], [-2.0, 1.5], [3.0, -1.0]])
    at.session_state["tr_drawing"] = points_to_drawing(points, CanvasWindow(440, 440))
    at.radio(key="tr_source").set_value("Draw on a canvas").run()
    assert not at.exception
    assert _preview_title(at) == "Your data: 4 points"
    spec = next(s for s in _charts(at) if s["layout"]["title"]["text"].startswith("Your data"))
    drawn = _trace(spec, "training data")
    assert np.allclose(drawn, points, atol=1e-9)
    _button(at, "Undo last point or stroke").click().run()
    assert _preview_title(at) == "Your data: 3 points"
    _button(at, "Clear the drawing").click().run()
    assert any("Not ready to train" in w.value for w in at.warning)
    assert _button(at, "Start training").disabled


def test_free_drawing_spreads_points_along_strokes_with_jitter():
    at = _page()
    stroke = {
        "type": "path",
        "path": [["M", 55, 220], ["L", 385, 220]],  # 6 data units long at 55 px per unit
        "left": 53.5,
        "top": 218.5,
        "width": 330,
        "height": 0,
        "strokeWidth": 3,
        "scaleX": 1,
        "scaleY": 1,
    }
    at.session_state["tr_drawing"] = {"objects": [stroke]}
    at.radio(key="tr_source").set_value("Draw on a canvas").run()
    at.radio(key="tr_tool").set_value("Free draw: points along each stroke").run()
    at.slider(key="tr_spacing").set_value(0.1).run()
    at.slider(key="tr_jitter").set_value(0.0).run()
    assert _preview_title(at) == "Your data: 60 points"
    assert any("no spread in y" in w.value for w in at.warning)  # a straight line has no area
    at.slider(key="tr_jitter").set_value(0.2).run()
    assert not at.warning and not at.exception


def test_csv_upload_preview_errors_and_the_last_good_file_is_kept():
    at = _page()
    at.radio(key="tr_source").set_value("Upload a CSV file").run()
    at.file_uploader(key="tr_csv_file").set_value(
        ("points.csv", b"x,y\n1,2\n3,5\n-1,0.5\n", "text/csv")
    ).run()
    assert not at.exception and not at.error
    assert _preview_title(at) == "Your data: 3 points"
    assert at.dataframe
    at.file_uploader(key="tr_csv_file").set_value(("bad.csv", b"x,y\n1,2\nnan,3\n", "text/csv")).run()
    assert not at.exception
    assert any("bad.csv, line 3" in e.value and "not a finite number" in e.value for e in at.error)
    assert _preview_title(at) == "Your data: 3 points"  # the last good file stays in use
    at.file_uploader(key="tr_csv_file").set_value(("empty.csv", b"", "text/csv")).run()
    assert any("the file is empty" in e.value for e in at.error)


def test_a_short_training_then_the_explorer_gets_the_flow():
    at = _page()
    at.slider(key="tr_preset_n").set_value(300).run()
    at.select_slider(key="tr_steps").set_value(100).run()
    _button(at, "Start training").click().run()
    job = at.session_state["tr_job"]
    try:
        _wait_for(at, lambda: not job.active)
        at.run()
        assert not at.exception and not at.error
        assert job.state == "done" and job.step_count == 100
        assert "4 · What the flow learned" in [s.value for s in at.subheader]
        titles = [spec["layout"]["title"]["text"] for spec in _charts(at) if "title" in spec["layout"]]
        assert any(t.startswith("Learned density") for t in titles)
        assert any(t.startswith("NLL") for t in titles)
        assert any("z = f⁻¹(x)" in t for t in titles)
        assert at.get("download_button")
        _button(at, "Open in Explorer").click().run()
        assert not at.exception
        handed = at.session_state["learned_flow"]
        assert set(handed) == {"flow", "title", "data"}
        assert handed["data"].shape == (300, 2)
        assert "Two moons" in handed["title"]
    finally:
        _close_job(at)


def test_pause_resume_and_stop_keep_the_best_model():
    at = _page()
    at.slider(key="tr_preset_n").set_value(300).run()
    at.select_slider(key="tr_steps").set_value(10000).run()
    _button(at, "Start training").click().run()
    job = at.session_state["tr_job"]
    try:
        _wait_for(at, lambda: job.step_count >= 30)
        _button(at, "Pause").click().run()
        at.run()
        paused_at = job.step_count
        time.sleep(1.0)
        at.run()
        assert job.state == "paused" and job.step_count <= paused_at + 25  # at most the slice in flight
        assert not _button(at, "Resume").disabled
        _button(at, "Resume").click().run()
        _wait_for(at, lambda: job.step_count > paused_at + 30)
        _button(at, "Stop").click().run()
        at.run()
        assert job.state == "stopped"
        assert "4 · What the flow learned" in [s.value for s in at.subheader]
        assert not at.exception
    finally:
        _close_job(at)


@pytest.fixture(scope="module")
def saved_model() -> bytes:
    trainer = Trainer(toy_set("circles", 300), ModelConfig(layers=2, hidden=16), TrainConfig(steps=20))
    trainer.step(20)
    return model_bytes(trainer.result("a flow trained on circles"))


def test_models_upload_again_and_bad_files_are_refused(saved_model):
    at = _page()
    uploader = at.file_uploader(key="tr_model_file")
    uploader.set_value(("notes.safetensors", b"not a model at all", "application/octet-stream")).run()
    assert not at.exception
    assert any("cannot be loaded" in e.value and "not a flowviz model" in e.value for e in at.error)
    at.file_uploader(key="tr_model_file").set_value(
        ("m.safetensors", saved_model, "application/octet-stream")
    ).run()
    at.run()
    assert not at.exception
    assert "4 · What the flow learned" in [s.value for s in at.subheader]
    assert any("a flow trained on circles" in m.value for m in at.markdown)


def test_the_canvas_caption_points_to_buttons_that_are_there():
    """The canvas's own toolbar shows only on hover: the caption names the page's buttons instead."""
    at = _page()
    at.radio(key="tr_source").set_value("Draw on a canvas").run()
    assert not at.exception
    caption = next(c.value for c in at.caption if c.value.startswith("The canvas shows"))
    assert "toolbar" not in caption and "above it" not in caption
    assert "Undo last point or stroke" in [b.label for b in at.button]
    assert "undo the last point or stroke" in caption


def test_the_data_points_can_be_hidden_over_the_results():
    """The red points cover the learned density and the samples: a toggle takes them off both."""
    points = toy_set("circles", 300)
    trainer = Trainer(points, ModelConfig(layers=2, hidden=16), TrainConfig(steps=5))
    trainer.step(5)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/train.py")
    at.session_state["tr_model"] = trainer.result("circles")
    at.session_state["tr_model_data"] = points
    at.run()
    assert not at.exception

    def data_traces() -> dict[str, int]:
        return {
            spec["layout"]["title"]["text"]: len(_trace(spec, "training data"))
            for spec in _charts(at)
            if any(t.get("name") == "training data" for t in spec["data"])
            and not spec["layout"]["title"]["text"].startswith("Your data")  # the preview of section 1
        }

    shown = data_traces()
    assert any(t.startswith("Learned density") for t in shown) and any(t.startswith("Samples") for t in shown)
    assert all(n > 0 for n in shown.values()), shown
    at.toggle(key="tr_show_data").set_value(False).run()
    assert not at.exception
    assert data_traces() == {}
    titles = [spec["layout"]["title"]["text"] for spec in _charts(at) if "title" in spec["layout"]]
    assert "Samples of the flow (white)" in titles  # no promise of red points that are not there


def test_a_full_server_says_so_and_keeps_the_page(monkeypatch):
    """At the server's cap of training processes, Start answers with a message; nothing starts or is lost."""
    import flowviz.train

    monkeypatch.setattr(flowviz.train._SUPERVISOR, "limit", 0)
    at = _page()
    _button(at, "Start training").click().run()
    assert not at.exception
    assert "tr_job" not in at.session_state
    errors = [e.value for e in at.error]
    assert any(e.startswith("**Cannot start:** this server is already training 0 flows") for e in errors), (
        errors
    )
    assert not _button(at, "Start training").disabled


def test_the_train_page_holds_no_training_while_other_pages_do(monkeypatch):
    """A run of another page holds training until it ends; the Train page's own runs (its visitor is
    watching the training) never hold it. Seen from inside each page's run (the idea offered at its
    end, drawn after everything else), not from the run's duration, which the test harness pads."""
    import flowviz.ui.path
    from flowviz.ui import fairness

    held: list[tuple[float, bool]] = []
    runs = fairness.QuickRuns(lambda h: held.append((time.monotonic(), h)), tail=0.0)
    monkeypatch.setattr(fairness, "QUICK_RUNS", runs)
    seen: list[tuple[int, bool]] = []  # per run: quick runs in progress, training held
    real_next_idea = flowviz.ui.path.next_idea

    def watched_next_idea(*args, **kwargs):
        deadline = time.monotonic() + 2.0  # the governing thread holds training within moments
        while runs.running and not (held and held[-1][1]) and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append((runs.running, bool(held and held[-1][1])))
        return real_next_idea(*args, **kwargs)

    monkeypatch.setattr(flowviz.ui.path, "next_idea", watched_next_idea)

    def one_run(at: AppTest) -> tuple[int, bool]:
        """What the page saw near its end, once its run and training's release are over."""
        held.clear()
        seen.clear()
        at.run()
        deadline = time.monotonic() + 5.0
        while held and held[-1][1] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not (held and held[-1][1]), held  # let go after the run
        assert len(seen) == 1, seen
        return seen[0]

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/one_d.py").run()
    assert one_run(at) == (1, True)  # another page: training held while it runs
    assert [h for _, h in held][:1] == [True]
    at.switch_page("app_pages/train.py").run()
    assert one_run(at) == (0, False)  # the Train page: never held
    assert held == []
    assert not at.exception
