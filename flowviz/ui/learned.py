"""The Explorer showing a trained flow: every view, its learned layers read-only.

The Train page hands a flow over in ``st.session_state["learned_flow"]`` =
{"flow": Flow, "title": str, "data": array (N, 2) or None}. A trained network
is not a spec, so it cannot travel in the link; it lives in this session.
"""

from __future__ import annotations

import json

import streamlit as st

from flowviz.explorer import trained_fields, trained_samples, trained_steps
from flowviz.flow import Flow
from flowviz.playback import TRAINED_PREVIEW_RESOLUTION, trained_strip
from flowviz.plots.train import data_window
from flowviz.train import layer_name
from flowviz.ui import fairness
from flowviz.ui import views as ui_views
from flowviz.ui.editor import init

LEARNED = "learned_flow"
MODE = "fv_mode"
SEEN = "fv_learned_seen"
TRAINED, HAND_BUILT = "Trained flow", "Hand-built flow"


def has_learned_flow() -> bool:
    """Whether to show the trained flow: one was handed over and the person has not switched away."""
    ss = st.session_state
    learned = ss.get(LEARNED)
    if not learned or "flow" not in learned:
        return False
    if ss.get(SEEN) is not learned:  # a newly handed-over flow: show it
        ss[SEEN] = learned
        ss[MODE] = TRAINED
    choice = st.segmented_control(
        "Which flow",
        [TRAINED, HAND_BUILT],
        key=MODE,
        help="A flow trained on the Train page, or the one built here.",
    )
    return choice != HAND_BUILT


def learned_explorer() -> None:
    learned = st.session_state[LEARNED]
    flow: Flow = learned["flow"]
    data = learned.get("data")
    st.info(
        f"Showing the trained flow: **{learned.get('title', 'trained flow')}**. Its layers were learned by "
        "maximum likelihood, so they are shown read-only; the views work exactly as for a hand-built flow."
    )
    with st.sidebar:
        st.markdown("#### View")
        ui_views.view_options()
    _explorer_body(flow, data)


@st.fragment
@fairness.quick
def _explorer_body(flow: Flow, data) -> None:
    controls, views = st.columns([1, 2.3], gap="medium")
    with controls:
        st.markdown("**The flow, from z (top) to x (bottom)**")
        st.caption("Base p_Z: standard Gaussian N(0, I)")
        last = len(flow.layers) - 1
        for i, layer in enumerate(flow.layers):
            with st.expander(f"{i + 1} · {layer_name(layer, i == last)} · Jacobian: {layer.structure}"):
                for part, title in (
                    ("forward", "Forward"),
                    ("inverse", "Inverse"),
                    ("log_det", "Volume change"),
                ):
                    if part in layer.latex:
                        st.markdown(f"**{title}**")
                        st.latex(layer.latex[part])
    window = data_window(data)  # the Train page's window
    with views:
        options = ui_views.RESOLUTIONS
        resolution = st.select_slider(
            "Grid resolution (points per axis)", options, key=init("fv_learned_res", 256)
        )
        view = {**window, "resolution": int(resolution)}
        fields = trained_fields(flow, view)
        names = [f"{i + 1} · {layer_name(layer, i == last)}" for i, layer in enumerate(flow.layers)]
        ui_views.render_views(
            fields,
            view,
            names,
            flow_factory=lambda: flow,
            samples=lambda n: trained_samples(flow, n),
            steps=lambda titles: trained_steps(flow, view, tuple(titles)),
            play=(
                f"trained {id(st.session_state[LEARNED])} {json.dumps(window)}",
                lambda log_scale: trained_strip(flow, window, TRAINED_PREVIEW_RESOLUTION, log_scale),
                False,  # a trained flow's strip has no cost model: computed when Play asks, not ahead
            ),
        )
