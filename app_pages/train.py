"""Train a flow on 2D data you draw, pick or upload, and watch it learn.

The page is a shell over the core: flowviz.data makes the points, flowviz.train
trains (in a background thread per session, the model in st.session_state, never
in a shared cache), flowviz.plots.train draws, flowviz.model_io saves and loads.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from flowviz.data import (
    TOY_SETS,
    CanvasWindow,
    drawing_to_points,
    drop_last_object,
    read_csv,
    toy_set,
)
from flowviz.errors import SpecError
from flowviz.model_io import load_model, model_bytes
from flowviz.plots import train as plots
from flowviz.train import (
    ModelConfig,
    TrainConfig,
    TrainedModel,
    TrainingProcess,
    check_trainable,
    layer_name,
)
from flowviz.trained_views import finished_views
from flowviz.ui.editor import init
from flowviz.ui.live_chart import live_chart
from flowviz.ui.path import next_idea
from flowviz.ui.session import session_alive
from flowviz.ui.text import literal

ss = st.session_state
WINDOW = CanvasWindow(width=440, height=440, xlim=(-4.0, 4.0), ylim=(-4.0, 4.0))
DRAW, PRESET, UPLOAD = "Draw on a canvas", "Pick a toy data set", "Upload a CSV file"
POINTS, FREE = "Points: each click adds one", "Free draw: points along each stroke"
KINDS = {"nsf": "Neural spline (NSF)", "realnvp": "Affine (RealNVP)"}
DEFAULT_MODEL = ModelConfig()
DEFAULT_TRAIN = TrainConfig()
# Pictures redrawn twice a second need no hover or zoom: static plots cost the browser less.
LIVE_CHART = {"staticPlot": True}
FINAL_RESOLUTION = 200
EMPTY_DRAWING = {"objects": []}


# --------------------------------------------------------------------------- data


def _undo_drawing() -> None:
    ss.tr_drawing = drop_last_object(ss.get("tr_drawing"))
    ss.tr_canvas_seed = ss.tr_drawing
    ss.tr_canvas_version = ss.get("tr_canvas_version", 0) + 1


def _clear_drawing() -> None:
    ss.tr_drawing = dict(EMPTY_DRAWING)
    ss.tr_canvas_seed = ss.tr_drawing
    ss.tr_canvas_version = ss.get("tr_canvas_version", 0) + 1


def drawn_data() -> tuple[np.ndarray, str]:
    tool = st.radio("Drawing tool", [POINTS, FREE], horizontal=True, key=init("tr_tool", POINTS))
    spacing, jitter = 0.1, 0.0
    if tool == FREE:
        left, right = st.columns(2)
        spacing = left.slider(
            "Spacing of points along a stroke (data units)",
            0.02,
            0.5,
            step=0.01,
            key=init("tr_spacing", 0.08),
            help="One point every this far along each stroke, measured along its length.",
        )
        jitter = right.slider(
            "Jitter around strokes (standard deviation, data units)",
            0.0,
            0.5,
            step=0.01,
            key=init("tr_jitter", 0.08),
            help="Each point is moved by Gaussian noise of this size, so a stroke becomes a fuzzy band.",
        )
    version = ss.get("tr_canvas_version", 0)
    canvas_key = f"tr_canvas_{version}"
    if canvas_key not in ss:  # a fresh canvas (first visit, back from another page, undo, clear)
        ss.tr_canvas_seed = ss.get("tr_drawing") or dict(EMPTY_DRAWING)
    st.caption(
        "The canvas shows the window [-4, 4] × [-4, 4]; grid lines every 1 unit. "
        + ("Click to add points." if tool == POINTS else "Drag to draw strokes.")
        + " The buttons below the canvas undo the last point or stroke, or clear it all."
    )
    try:
        from streamlit_drawable_canvas import st_canvas

        result = st_canvas(
            drawing_mode="point" if tool == POINTS else "freedraw",
            stroke_width=1 if tool == POINTS else 3,
            stroke_color="#c62828" if tool == POINTS else "#1565c0",
            fill_color="#c62828",
            background_image=plots.canvas_background(WINDOW),
            width=WINDOW.width,
            height=WINDOW.height,
            point_display_radius=3,
            initial_drawing=ss.tr_canvas_seed,
            key=canvas_key,
        )
        if result.json_data is not None:
            ss.tr_drawing = result.json_data
    except Exception as error:  # the canvas is an optional extra: never let it break the page
        st.warning(f"The drawing canvas could not be shown ({type(error).__name__}); pick a toy set instead.")
    left, right = st.columns(2)
    left.button("Undo last point or stroke", on_click=_undo_drawing, width="stretch")
    right.button("Clear the drawing", on_click=_clear_drawing, width="stretch")
    points = drawing_to_points(ss.get("tr_drawing"), WINDOW, spacing=spacing, jitter=jitter, seed=0)
    return points, f"your drawing ({len(points)} points)"


def preset_data() -> tuple[np.ndarray, str]:
    name = st.selectbox(
        "Toy data set",
        list(TOY_SETS),
        format_func=lambda k: TOY_SETS[k].title,
        key=init("tr_preset", "two_moons"),
    )
    toy = TOY_SETS[name]
    left, right = st.columns(2)
    n = left.slider("Number of points", 100, 5000, step=100, key=init("tr_preset_n", 1000))
    noise = right.slider(
        "Noise (standard deviation added to each point)",
        0.0,
        toy.max_noise,
        step=0.01,
        key=init(f"tr_preset_noise_{name}", toy.noise),
    )
    seed = st.number_input("Random seed of the data set", 0, 1_000_000, step=1, key=init("tr_preset_seed", 0))
    points = toy_set(name, int(n), float(noise), int(seed))
    return points, f"{toy.title} ({n} points, noise {noise:g})"


def uploaded_data() -> tuple[np.ndarray | None, str]:
    upload = st.file_uploader(
        "CSV file with two numeric columns (x, y), one point per line; a header line is optional",
        type=["csv", "txt"],
        key="tr_csv_file",
    )
    if upload is not None and ss.get("tr_csv_seen") != (upload.name, upload.size, upload.file_id):
        ss.tr_csv_seen = (upload.name, upload.size, upload.file_id)
        try:
            ss.tr_csv = (upload.name, read_csv(upload.getvalue(), name=upload.name))
            ss.tr_csv_error = None
        except SpecError as error:
            ss.tr_csv_error = str(error)
    if ss.get("tr_csv_error"):
        st.error(f"**This file cannot be used:** {literal(ss.tr_csv_error)}")
    if not ss.get("tr_csv"):
        st.info("Upload a CSV file to train on it. Example:\n\n```\nx,y\n0.5,1.2\n-0.3,0.8\n```")
        return None, "no file"
    name, points = ss.tr_csv
    note = " (the last file that could be read)" if ss.get("tr_csv_error") else ""
    st.caption(f"**{literal(name)}**{note}: {len(points)} points; the first rows:")
    st.dataframe({"x": points[:8, 0], "y": points[:8, 1]}, height=200, width="content")
    return points, f"{name} ({len(points)} points)"


def data_section() -> tuple[np.ndarray | None, str, str | None]:
    """The points to train on, a description, and why they cannot be used (or None)."""
    source = st.radio(
        "Where the data comes from", [DRAW, PRESET, UPLOAD], horizontal=True, key=init("tr_source", PRESET)
    )
    if source == DRAW:
        points, title = drawn_data()
    elif source == PRESET:
        points, title = preset_data()
    else:
        points, title = uploaded_data()
    if points is None:
        return None, title, "no data yet"
    try:
        check_trainable(points, place="the data")
    except SpecError as error:
        reason = error.reason
        if len(points) < 2:
            reason = "draw at least 2 points (or pick a toy data set) to train a flow"
        st.warning(f"**Not ready to train:** {reason}.")
        return points, title, reason
    return points, title, None


# --------------------------------------------------------------------------- model and training settings


def settings_section() -> tuple[ModelConfig, TrainConfig]:
    kind = st.radio(
        "Coupling layer type",
        list(KINDS),
        format_func=KINDS.get,
        horizontal=True,
        key=init("tr_kind", DEFAULT_MODEL.kind),
        help="NSF: each coupling bends one coordinate by a monotone rational-quadratic spline "
        "(Durkan et al. 2019). RealNVP: it scales and shifts it (Dinh et al. 2017).",
    )
    left, right = st.columns(2)
    layers = left.slider("Coupling layers", 1, 12, key=init("tr_layers", DEFAULT_MODEL.layers))
    hidden = right.select_slider(
        "Hidden units in each coupling's network",
        [16, 32, 64, 128, 256],
        key=init("tr_hidden", DEFAULT_MODEL.hidden),
    )
    bins = left.slider(
        "Spline bins K (NSF only)",
        2,
        32,
        key=init("tr_bins", DEFAULT_MODEL.bins),
        disabled=kind != "nsf",
        help="More bins: a more flexible bend per layer.",
    )
    right.write("")
    actnorm = right.checkbox(
        "ActNorm after each coupling",
        key=init("tr_actnorm", DEFAULT_MODEL.actnorm),
        help="A learned per-coordinate scale and shift, initialised from the first batch (Glow, Kingma & Dhariwal 2018).",
    )
    early = right.checkbox(
        "Early stopping on the validation NLL",
        key=init("tr_early", True),
        help="10% of the points are held out; when their NLL has not improved for a quarter of the "
        "steps, training stops. Either way, the kept model is the running average of the weights "
        "at its best validation NLL.",
    )
    lr = left.select_slider(
        "Learning rate (peak of the schedule)",
        [1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2],
        format_func=lambda v: f"{v:g}",
        key=init("tr_lr", DEFAULT_TRAIN.lr),
        help="Adam; a short warm-up, then a cosine decay to 1% of this over the steps.",
    )
    batch = right.select_slider(
        "Batch size (points per step)",
        [64, 128, 256, 512, 1024, 2048],
        key=init("tr_batch", DEFAULT_TRAIN.batch_size),
    )
    steps = st.select_slider(
        "Training steps",
        [100, 250, 500, 1000, 2000, 3000, 5000, 10000],
        key=init("tr_steps", DEFAULT_TRAIN.steps),
    )
    model = ModelConfig(
        kind=kind,
        layers=int(layers),
        hidden=int(hidden),
        depth=DEFAULT_MODEL.depth,
        bins=int(bins),
        bound=DEFAULT_MODEL.bound,
        actnorm=bool(actnorm),
        mixing=DEFAULT_MODEL.mixing,
    )
    train = TrainConfig(
        lr=float(lr),
        batch_size=int(batch),
        steps=int(steps),
        val_every=max(10, int(steps) // 40),
        patience=10 if early else None,
        warmup=DEFAULT_TRAIN.warmup,
    )
    return model, train


# --------------------------------------------------------------------------- training controls


def _start(points: np.ndarray, title: str, model: ModelConfig, train: TrainConfig) -> None:
    _stop_job()
    job = TrainingProcess(points, model, train, owner_alive=session_alive(), figures=True)
    job.start()  # may refuse (the server's cap): then the last run and model stay as they were
    kind = "NSF" if model.kind == "nsf" else "RealNVP"
    ss.tr_job = job
    ss.tr_job_data = np.asarray(points)
    ss.tr_job_title = f"{kind} flow ({model.layers} couplings) trained on {title}"
    ss.tr_model = None


def _stop_job() -> None:
    job = ss.get("tr_job")
    if job is not None:
        job.close()


def _reset() -> None:
    _stop_job()
    for key in ("tr_job", "tr_job_data", "tr_model", "tr_model_data"):
        ss.pop(key, None)


def controls(points, title, data_problem, model, train) -> None:
    job: TrainingProcess | None = ss.get("tr_job")
    state = job.state if job else "ready"
    ss.tr_controls_state = state  # the live part redraws the whole page when the job's state moves on
    columns = st.columns(5)
    start_help = None if data_problem is None else f"Not ready: {data_problem}."
    if columns[0].button(
        "Start training",
        type="primary",
        disabled=data_problem is not None or state in ("starting", "running", "paused"),
        help=start_help,
        width="stretch",
    ):
        try:
            _start(points, title, model, train)
            ss.tr_start_error = None
        except SpecError as error:
            ss.tr_start_error = error.reason
        st.rerun()
    if ss.get("tr_start_error"):
        st.error(f"**Cannot start:** {ss.tr_start_error}.")
    if columns[1].button("Pause", disabled=state != "running", width="stretch"):
        job.pause()
        st.rerun()
    if columns[2].button("Resume", disabled=state != "paused", width="stretch"):
        job.resume()
        st.rerun()
    if columns[3].button("Stop", disabled=state not in ("starting", "running", "paused"), width="stretch"):
        job.stop()
        job.poll()
        st.rerun()
    if columns[4].button(
        "Reset",
        disabled=job is None and ss.get("tr_model") is None,
        width="stretch",
        on_click=_reset,
    ):
        st.rerun()


# --------------------------------------------------------------------------- live view


LIVE_LABELS = {
    "loss": "Training and validation NLL so far",
    "density": "The learned density now, data in red",
    "samples": "Samples of the flow now, data in red",
}


def _live_pictures(figures: dict | str | None) -> None:
    """The run's three live pictures, made by the training process itself (see
    flowviz.trained_views.live_figures): this page only forwards them."""
    if figures is None:
        st.info("Drawing the first pictures…")
        return
    if isinstance(figures, str):
        st.error(f"Could not draw the current model: {figures}")
        return
    for column, name in zip(st.columns(3), LIVE_LABELS, strict=True):
        with column:
            figure = figures[name]
            live_chart(
                figure, f"tr_{name}", int(figure["layout"].get("height", 420)), LIVE_LABELS[name], LIVE_CHART
            )


def _progress_text(job: TrainingProcess, history) -> str:
    words = {
        "starting": "Starting the training process",
        "running": "Training",
        "paused": "Paused",
        "stopped": "Stopped",
        "done": "Done",
        "failed": "Failed",
    }
    word = "Stopped early" if job.summary.get("stopped_early") else words.get(job.state, job.state)
    parts = [f"{word}: step {job.step_count} of {job.config.steps}"]
    last = history[-1] if history else None
    recent = [r for r in history[-10:] if r.steps_per_second > 0]
    if recent and job.state == "running":
        parts.append(f"{np.median([r.steps_per_second for r in recent]):.0f} steps/s")
    if last is not None:
        finite = [r.train_nll for r in history[-5:] if np.isfinite(r.train_nll)]
        if finite:
            parts.append(f"training NLL {finite[-1]:.3f}")
        if last.val_nll is not None:
            parts.append(f"validation NLL {last.val_nll:.3f}")
        parts.append(f"learning rate {last.lr:.1e}")
    return " · ".join(parts)


def _finished_text(job: TrainingProcess) -> str:
    how = {
        "done": "Training finished",
        "stopped": f"Stopped at step {job.step_count}",
        "failed": "Training failed",
    }.get(job.state, "Training ended")
    if job.summary.get("stopped_early"):
        how = (
            f"Stopped early at step {job.step_count}: the validation NLL (on points held out from training) "
            "had stopped improving, a sign that the flow was starting to learn the training points by heart"
        )
    best = job.summary.get("best_val_nll")
    kept = (
        f"The model kept is the one with the best validation NLL, {best:.3f}, from step {job.best_step}: "
        "the running average of the weights up to then, which wobbles less than the weights of any one step."
        if best is not None
        else "The model kept is the running average of the weights (too few points to hold some out "
        "for validation)."
    )
    return f"{how}. {kept} Its pictures are below, in section 4."


def live_section(data: np.ndarray | None, data_problem: str | None) -> None:
    job: TrainingProcess | None = ss.get("tr_job")
    window = plots.data_window(ss.get("tr_job_data") if job is not None else data)
    if job is None:
        left, right = st.columns(2)
        with left:
            if data is not None and len(data):
                fig = plots.samples_figure(np.zeros((0, 2)), data, window)
                fig.update_layout(title={"text": f"Your data: {len(data)} points"})
                st.plotly_chart(fig, width="stretch", key="tr_data_preview")
        right.info(
            "Press **Start training**. The flow starts as a Gaussian fitted to the data's mean and spread; "
            "every step moves its layers to raise the likelihood of the points. Curves, density and samples "
            "update twice a second."
        )
        return

    @st.fragment(run_every=0.5 if job.active else None)
    def live() -> None:
        job.poll(timeout=1.0)
        history = list(job.history)
        if job.error:
            st.error(f"Training failed: {job.error}. Press Reset and try other settings.")
        fraction = 1.0 if job.state == "done" else min(1.0, job.fraction_done)
        st.progress(fraction, text=_progress_text(job, history))
        for event in job.events:
            st.warning(event, icon=":material/warning:")
        if job.architecture is None:  # no answer with a model yet
            st.info("Starting the training process (a few seconds)…")
        elif job.active:
            _live_pictures(job.figures)
        else:
            columns = st.columns(3)
            try:
                columns[0].plotly_chart(
                    plots.loss_figure(history, job.best_step or None), width="stretch", key="tr_loss"
                )
            except Exception as error:  # never an exception box: the run's result is below either way
                st.error(f"Could not draw the loss curves: {error}")
            columns[1].info(_finished_text(job))
        if not job.active and ss.get("tr_live_was_active", False):
            ss.tr_live_was_active = False
            st.rerun(scope="app")
        ss.tr_live_was_active = job.active
        if job.state != ss.get("tr_controls_state"):  # e.g. starting -> running: Pause becomes possible
            st.rerun(scope="app")

    live()


# --------------------------------------------------------------------------- after training


def _current_model() -> TrainedModel | None:
    job: TrainingProcess | None = ss.get("tr_job")
    if job is not None and not job.active and not job.collected:
        model = job.result(ss.get("tr_job_title", "trained flow"))
        if model is not None and job.step_count > 0:
            ss.tr_model = model
            ss.tr_model_data = ss.get("tr_job_data")
        job.collected = True
        job.close()
    return ss.get("tr_model")


def _views(model: TrainedModel, data: np.ndarray | None) -> dict:
    """Pictures of a finished model (computed once per model and data, and shared) and its layers' names."""
    names = ["z₀ ~ N(0, I)"]
    for k, layer in enumerate(model.flow.layers, start=1):
        last = k == len(model.flow.layers)
        names.append(f"{k}: " + layer_name(layer, last))
    return {**finished_views(model.flow, data, FINAL_RESOLUTION), "names": names}


def _open_in_explorer(model: TrainedModel, data) -> None:
    ss["learned_flow"] = {"flow": model.flow, "title": model.title, "data": data}
    st.switch_page("app_pages/explore.py")


def results_section() -> None:
    model = _current_model()
    if model is None:
        return
    data = ss.get("tr_model_data")
    st.subheader("4 · What the flow learned")
    st.markdown(f"**{literal(model.title or 'A trained flow')}**")
    steps = model.training.get("steps")
    best = model.training.get("best_val_nll")
    facts = []
    if steps:
        facts.append(f"{steps} steps")
    if best is not None:
        facts.append(
            f"best validation NLL {best:.3f} nats per point (step {model.training.get('best_step')})"
        )
    if facts:
        st.caption("; ".join(facts) + ". The model kept is the one with the best validation NLL.")
    left, middle, right = st.columns([1.2, 1.4, 2])
    if left.button("Open in Explorer", type="primary", width="stretch"):
        _open_in_explorer(model, data)
    try:
        payload = model_bytes(model)
        middle.download_button(
            "Download the model (.safetensors)",
            payload,
            file_name="flowviz-model.safetensors",
            mime="application/octet-stream",
            width="stretch",
        )
    except Exception as error:
        middle.error(f"Could not prepare the download: {error}")
    right.caption(
        "The Explorer shows this flow with every view (density, volume change, the two terms, "
        "deformed grid, samples); its learned layers are read-only there."
    )
    try:
        views = _views(model, data)
    except Exception as error:
        st.error(f"Could not draw the trained model: {error}")
        return
    try:
        _result_figures(views, data)
    except Exception as error:  # a picture that fails must not take the page with it
        st.error(f"Could not draw the trained model: {error}")


def _result_figures(views: dict, data) -> None:
    if data is not None and not st.toggle(
        "Show the data points",
        key=init("tr_show_data", True),
        help="The red training points over the learned density and the samples; hide them to see what "
        "lies beneath.",
    ):
        data_shown = None
    else:
        data_shown = data
    columns = st.columns(3)
    columns[0].plotly_chart(
        plots.density_figure(views["grid"], data_shown, "Learned density p(x)"),
        width="stretch",
        key="tr_final_density",
    )
    columns[1].plotly_chart(
        plots.samples_figure(views["samples"], data_shown, views["window"]),
        width="stretch",
        key="tr_final_samples",
    )
    if "latent" in views:
        columns[2].plotly_chart(plots.latent_figure(views["latent"]), width="stretch", key="tr_latent")
    else:
        columns[2].info(
            "A loaded model comes without its data: there is nothing to map back to latent space."
        )
    st.markdown(
        "**The trace through the layers**: 600 base samples z₀, coloured by their angle in z₀, after each layer "
        "(rotations turn the plane so the next coupling bends another direction; the last layer undoes the "
        "standardisation)."
    )
    st.plotly_chart(plots.trace_figure(views["trace"], views["names"]), width="stretch", key="tr_trace")


def load_section() -> None:
    with st.expander("Load a model saved from this page", expanded=False):
        upload = st.file_uploader("Model file (.safetensors) downloaded from this page", key="tr_model_file")
        if upload is not None and ss.get("tr_model_seen") != (upload.name, upload.size, upload.file_id):
            ss.tr_model_seen = (upload.name, upload.size, upload.file_id)
            try:
                loaded = load_model(upload.getvalue(), name=upload.name)
                _stop_job()
                ss.pop("tr_job", None)
                ss.tr_model = loaded
                ss.tr_model_data = None
                ss.tr_model_error = None
                st.rerun()
            except SpecError as error:
                ss.tr_model_error = str(error)
        if ss.get("tr_model_error"):
            st.error(f"**This file cannot be loaded:** {literal(ss.tr_model_error)}")


# --------------------------------------------------------------------------- the page

st.title("Train a flow on your own data")
st.caption(
    "Draw points, pick a toy set or upload a CSV; a normalizing flow learns their density by maximum "
    r"likelihood, $\log p(x) = \log \mathcal{N}(f^{-1}(x); 0, I) + \log|\det J_{f^{-1}}(x)|$, "
    "and you watch it happen."
)
data_column, settings_column = st.columns([1.1, 1], gap="large")
with data_column:
    st.subheader("1 · Data")
    points, data_title, data_problem = data_section()
with settings_column:
    st.subheader("2 · Model and training")
    model_config, train_config = settings_section()
    load_section()

st.subheader("3 · Training")
controls(points, data_title, data_problem, model_config, train_config)
live_section(points, data_problem)
results_section()
next_idea("train")
