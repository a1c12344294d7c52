"""Explorer: build a 2D flow by hand and watch the density stretch and compress, live."""

from __future__ import annotations

import copy

import streamlit as st

from flowviz.errors import SpecError
from flowviz.explorer import explorer_fields, explorer_samples, explorer_steps
from flowviz.flow import Flow
from flowviz.playback import PREVIEW_RESOLUTION, frame_times, strip_of_spec
from flowviz.presets import FLOW_PRESETS
from flowviz.spec import canonical_json, max_resolution, parse_spec
from flowviz.ui import editor, fairness, learned, share, state, widgets
from flowviz.ui import views as ui_views
from flowviz.ui.path import next_idea, start_pointer


def load_preset(name: str) -> None:
    description, spec = FLOW_PRESETS[name]
    state.replace_spec(copy.deepcopy(spec))
    state.notice("info", f"**{name.capitalize()}**: {description}")


def sidebar(spec: dict) -> None:
    """The stack and everything that changes its shape: a full rerun each, which is fine for clicks."""
    ss = st.session_state
    with st.sidebar:
        st.markdown("#### Presets")
        st.caption("One click loads a whole flow; every control then starts from it.")
        for name in FLOW_PRESETS:
            st.button(
                name.capitalize(),
                key=f"fv_preset_{name}",
                on_click=load_preset,
                args=(name,),
                width="stretch",
            )
        st.markdown("#### The flow")
        ids = state.uids()
        items = [state.BASE, *ids]
        if ss.get(state.SELECTED) not in items:
            ss[state.SELECTED] = state.BASE
        labels = {state.BASE: f"Base p_Z · {editor.BASE_TYPES[spec['base']['type']]}"}
        captions = ["where z₀ is drawn"]
        for i, (uid, layer) in enumerate(zip(ids, spec["layers"], strict=True)):
            labels[uid] = editor.layer_label(layer, i)
            captions.append(editor.layer_caption(layer))
        selected = st.radio(
            "From z (top) to x (bottom): pick a part to edit",
            items,
            format_func=labels.get,
            captions=captions,
            key=state.SELECTED,
        )
        if selected != state.BASE:
            index = ids.index(selected)
            editor.layer_actions(selected, spec["layers"][index], index, len(ids))
        editor.add_layer_controls()
        st.markdown("#### View")
        ui_views.view_options()
        ui_views.sync_view_query()
        view_settings(spec)


def selected_editor(spec: dict) -> dict:
    """The controls of the selected part. Returns the spec to draw: the edit if valid, else the last good one."""
    selected = st.session_state[state.SELECTED]
    draft = copy.deepcopy(spec)
    if selected == state.BASE:
        st.markdown("**Base distribution p_Z**")
        draft["base"] = editor.base_editor(spec["base"])
    else:
        index = state.uids().index(selected)
        layer = spec["layers"][index]
        st.markdown(f"**{editor.layer_label(layer, index)}**")
        draft["layers"][index] = editor.layer_editor(layer, selected)
    try:
        good = parse_spec(draft)
    except SpecError as error:
        st.error(
            f"**Not applied** — {error.reason}. The pictures show the last valid flow "
            "until the values this names are changed.",
            icon=":material/warning:",
        )
        return spec
    if good != spec:
        type_changed = good["base"]["type"] != spec["base"]["type"]
        state.commit(good)
        if type_changed:  # the stack list names the base type: redraw the whole page
            st.rerun()
    return good


def view_settings(spec: dict) -> None:
    """Window and resolution: part of the spec, so they travel with the link."""
    view = spec["view"]
    res_key = editor.init(editor.key("view", "res"), int(view["resolution"]))
    xlim = editor.range_slider(
        "View x-range", view["xlim"], 20.0, 0.5, editor.key("view", "x"), "The window, in both z and x."
    )
    ylim = editor.range_slider("View y-range", view["ylim"], 20.0, 0.5, editor.key("view", "y"))
    finest = max_resolution(spec)  # a costly flow is offered only grids it may ask for
    options = sorted({*(r for r in ui_views.RESOLUTIONS if r <= finest), int(view["resolution"])})
    resolution = st.select_slider(
        "Grid resolution (points per axis)",
        options,
        key=res_key,
        help="More points: finer pictures, more work.",
    )
    if int(resolution) > max(ui_views.RESOLUTIONS):
        st.warning(
            f"A {int(resolution)}² grid (from the link or file) takes seconds per change: "
            f"pick {max(ui_views.RESOLUTIONS)} or less for live sliders."
        )
    draft = {**spec, "view": {"xlim": list(xlim), "ylim": list(ylim), "resolution": int(resolution)}}
    try:
        good = parse_spec(draft)
    except SpecError as error:
        st.error(f"View not applied — {error.reason}.")
        return
    if good != spec:
        state.commit(good)


def show_views(spec: dict) -> None:
    key = canonical_json(spec)
    # the active layers, numbered as in the stack list (a switched-off layer keeps its number)
    names = [
        f"{i + 1} · {layer['type']}" for i, layer in enumerate(spec["layers"]) if layer.get("enabled", True)
    ]
    ui_views.render_views(
        explorer_fields(key),
        spec["view"],
        names,
        flow_factory=lambda: Flow.from_spec(spec),
        samples=lambda n: explorer_samples(key, n),
        steps=lambda titles: explorer_steps(key, titles),
        play=(
            key,
            lambda log_scale: strip_of_spec(key, PREVIEW_RESOLUTION, log_scale),
            fairness.play_ahead(spec, len(frame_times(len(names))), PREVIEW_RESOLUTION),
        ),
    )


@st.fragment
@fairness.quick
def explorer() -> None:
    """What a slider of the flow changes: only this part reruns when one moves."""
    share.absorb_json_edit()
    if st.session_state.pop(state.FULL_RERUN, False):
        st.rerun()  # a whole new flow, adopted in a run of this part alone: redraw the stack list too
    notice = state.take_notice()
    spec = state.current_spec()
    fairness.yield_if_heavy(spec)  # a costly grid waits for the other visitors' light runs
    controls, views = st.columns([1.15, 2.2], gap="medium")
    with views:
        if notice:
            getattr(st, notice[0])(notice[1])
    with controls, st.container(border=True):
        editor.drag_previews(None)  # (none left from a run cut short)
        spec = selected_editor(spec)
        editor.exact_values_toggle()
        editor.drag_previews(spec)  # the sliders' pictures while dragged: of the flow drawn now
    token = state.sync_url(spec)
    with views:
        if token is None:
            st.warning(share.too_long_for_a_link(spec), icon=":material/link_off:")
        show_views(spec)
    with controls:
        extras = (
            st.segmented_control(
                "Also show",
                ["Formulas", "JSON", "Share"],
                selection_mode="multi",
                key=widgets.kept("fv_extras", ["Formulas"]),
            )
            or []
        )
        widgets.remember("fv_extras")
        selected = st.session_state[state.SELECTED]
        if "Formulas" in extras and selected != state.BASE:
            editor.formulas(spec["layers"][state.uids().index(selected)])
        if "JSON" in extras:
            share.json_editor(spec)
    if "Share" in extras:  # the whole width: a long link and its buttons fit there
        with st.container(border=True, key="fv_share"):
            share.share_panel(spec, token, ui_views.view_query())


state.init_state()
fairness.yield_if_heavy(state.current_spec())  # a costly grid's whole run lets quick runs go first
view_link_problem = ui_views.adopt_view_query()
start_pointer()
if view_link_problem:
    st.warning(view_link_problem, icon=":material/link:")
st.markdown("### Explorer: push a density through a flow")
intro, formula = st.columns([1.2, 1], vertical_alignment="center")
with formula:
    st.latex(r"p_X(x) = p_Z\big(f^{-1}(x)\big)\,\big|\det J_{f^{-1}}(x)\big|")
with intro:
    showing_learned = learned.has_learned_flow()
if showing_learned:
    intro.markdown("A flow trained on the Train page, seen through every view of the Explorer.")
    learned.learned_explorer()
else:
    intro.markdown(
        "Pick a base density p_Z and stack invertible layers f = f_K ∘ … ∘ f₁ in the sidebar, then drag any "
        "slider: the pushed-forward density, the volume change and the deformed grid follow at once."
    )
    share.absorb_json_edit()
    st.session_state.pop(state.FULL_RERUN, None)  # this run draws the whole page anyway
    sidebar(state.current_spec())
    explorer()
next_idea("explore")
