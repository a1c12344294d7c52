"""Explorer: build a 2D flow by hand and watch the density stretch and compress, live."""

from __future__ import annotations

import copy

import streamlit as st

from flowviz.errors import SpecError
from flowviz.flow import Flow
from flowviz.presets import FLOW_PRESETS
from flowviz.spec import canonical_json, parse_spec
from flowviz.ui import editor, learned, share, state
from flowviz.ui import views as ui_views
from flowviz.views import explorer_fields, explorer_samples

RESOLUTIONS = [64, 96, 128, 192, 256, 384, 512]


def load_preset(name: str) -> None:
    description, spec = FLOW_PRESETS[name]
    state.replace_spec(copy.deepcopy(spec))
    state.notice("info", f"**{name.capitalize()}**: {description}")


def preset_row() -> None:
    names = list(FLOW_PRESETS)
    columns = st.columns([0.6, *[1] * len(names)], vertical_alignment="center")
    columns[0].markdown(
        "**Presets**", help="One click loads a whole flow; every control then starts from it."
    )
    for column, name in zip(columns[1:], names, strict=True):
        column.button(
            name.capitalize(),
            key=f"fv_preset_{name}",
            on_click=load_preset,
            args=(name,),
            width="stretch",
        )


def edit_flow(spec: dict) -> dict:
    """The stack editor. Returns the spec to draw: the edited one if valid, else the last good one."""
    ss = st.session_state
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
        "The flow, from z (top) to x (bottom): pick a part to edit",
        items,
        format_func=labels.get,
        captions=captions,
        key=state.SELECTED,
    )
    draft = copy.deepcopy(spec)
    layer = None
    with st.container(border=True):
        if selected == state.BASE:
            draft["base"] = editor.base_editor(spec["base"])
        else:
            index = ids.index(selected)
            layer = spec["layers"][index]
            switched_on = editor.layer_actions(selected, layer, index, len(ids))
            edited = editor.layer_editor(layer, selected)
            edited.pop("enabled", None)
            if not switched_on:
                edited["enabled"] = False
            draft["layers"][index] = edited
        try:
            good = parse_spec(draft)
        except SpecError as error:
            st.error(
                f"**Not applied** — {error.reason}. The pictures show the last valid flow; "
                "change the highlighted values to continue.",
                icon="⚠️",
            )
        else:
            if good != spec:
                state.commit(good)
                spec = good
    if layer is not None:
        with st.expander("Formulas of this layer", expanded=True):
            editor.formulas(layer)
    editor.add_layer_controls()
    with st.expander("Flow spec (JSON)"):
        share.json_editor(spec)
    return spec


def view_settings(spec: dict) -> dict:
    """Window and resolution: part of the spec, so they travel with the link."""
    view = spec["view"]
    c1, c2, c3 = st.columns(3)
    with c1:
        x_key = editor.init(editor.key("view", "x"), tuple(view["xlim"]))
        xlim = st.slider(
            "View x-range", -20.0, 20.0, step=0.5, key=x_key, help="The window, in both z and x."
        )
    with c2:
        y_key = editor.init(editor.key("view", "y"), tuple(view["ylim"]))
        ylim = st.slider("View y-range", -20.0, 20.0, step=0.5, key=y_key)
    with c3:
        options = sorted({*RESOLUTIONS, int(view["resolution"])})
        res_key = editor.init(editor.key("view", "res"), int(view["resolution"]))
        resolution = st.select_slider(
            "Grid resolution (points per axis)",
            options,
            key=res_key,
            help="More points: finer pictures, more work.",
        )
    draft = {**spec, "view": {"xlim": list(xlim), "ylim": list(ylim), "resolution": int(resolution)}}
    try:
        good = parse_spec(draft)
    except SpecError as error:
        st.error(f"View not applied — {error.reason}.")
        return spec
    if good != spec:
        state.commit(good)
    return good


def show_views(spec: dict) -> None:
    key = canonical_json(spec)
    layers = [layer for layer in spec["layers"] if layer.get("enabled", True)]
    names = [f"{i + 1} · {layer['type']}" for i, layer in enumerate(layers)]
    ui_views.render_views(
        explorer_fields(key),
        spec["view"],
        names,
        flow_factory=lambda: Flow.from_spec(spec),
        samples=lambda n: explorer_samples(key, n),
    )


@st.fragment
def explorer() -> None:
    share.absorb_json_edit()
    notice = state.take_notice()
    spec = state.current_spec()
    controls, views = st.columns([1, 2], gap="medium")
    with views:
        if notice:
            getattr(st, notice[0])(notice[1])
    with controls:
        spec = edit_flow(spec)
    with views:
        spec = view_settings(spec)
        token = state.sync_url(spec)
        show_views(spec)
        with st.expander("Share and export"):
            share.share_panel(spec, token)


state.init_state()
st.markdown("### Explorer: push a density through a flow")
intro, formula = st.columns([1.2, 1], vertical_alignment="center")
intro.markdown(
    "Pick a base density p_Z, stack invertible layers f = f_K ∘ … ∘ f₁, and drag any slider: the "
    "pushed-forward density, the volume change and the deformed grid follow at once."
)
with formula:
    st.latex(r"p_X(x) = p_Z\big(f^{-1}(x)\big)\,\big|\det J_{f^{-1}}(x)\big|")
preset_row()
if learned.has_learned_flow():
    learned.learned_explorer()
else:
    explorer()
