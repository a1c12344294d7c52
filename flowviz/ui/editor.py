"""The flow editor: the base distribution and the layer stack, as labelled controls.

Each function renders the controls of one part of the spec and returns that part
as the controls now say (a draft: the caller validates it with the spec's own
checks, so a combination no range can exclude still gets a clear message).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import streamlit as st

from flowviz import spec as limits
from flowviz.layers import LAYER_CLASSES
from flowviz.presets import BASE_PRESETS, LAYER_DEFAULTS, LAYER_TITLES, ring_of_gaussians, two_blobs
from flowviz.ui import fields, state
from flowviz.ui.drag_slider import CONDITION_KEY
from flowviz.ui.fields import Control
from flowviz.ui.widgets import (  # noqa: F401 (the pages use them as editor.key, editor.init, ...)
    EXACT,
    LIMITS,
    drag_previews,
    exact_values_toggle,
    init,
    keep_value,
    key,
    range_slider,
    slider,
    table,
)

BASE_TYPES = {"gaussian": "Gaussian", "uniform": "Uniform box", "mixture": "Mixture of Gaussians"}
STRUCTURE_WORDS = {
    "diagonal": "diagonal Jacobian",
    "triangular": "triangular Jacobian",
    "permutation": "permutation Jacobian",
    "full": "full Jacobian",
}


# ----------------------------------------------------------------------------- base


def _gaussian_controls(
    component: dict, prefix: tuple, show_weight: float | None = None
) -> tuple[dict, float]:
    """mean, standard deviations and correlation of one Gaussian (cov = S R S)."""
    (a, b), (_, d) = component["cov"]
    sx, sy = math.sqrt(a), math.sqrt(d)
    rho = b / (sx * sy)
    given = (sx, sy, rho)
    c1, c2 = st.columns(2)
    mean_path = ("base", "mean") if prefix[1] == "g" else ("base", "components", prefix[2], "mean")
    with c1:
        mx = slider("Mean μ₁ (x)", component["mean"][0], -3, 3, 0.05, key(*prefix, "mx"), "", (*mean_path, 0))
        sx = slider("Std. dev. σ₁ (x)", sx, 0.1, 3, 0.05, key(*prefix, "sx"), "kept above 0")
    with c2:
        my = slider("Mean μ₂ (y)", component["mean"][1], -3, 3, 0.05, key(*prefix, "my"), "", (*mean_path, 1))
        sy = slider("Std. dev. σ₂ (y)", sy, 0.1, 3, 0.05, key(*prefix, "sy"), "kept above 0")
    rho = slider(
        "Correlation ρ",
        rho,
        -0.95,
        0.95,
        0.01,
        key(*prefix, "rho"),
        "kept inside (−1, 1) so the covariance is valid",
    )
    weight = 1.0
    if show_weight is not None:
        weight = slider(
            "Weight (normalised)", show_weight, 0.05, 1.0, 0.05, key(*prefix, "w"), "kept above 0"
        )
    # An entry whose controls did not move keeps its exact value (sqrt(0.8)^2 is 0.7999999999999999).
    var_x = a if sx == given[0] else sx * sx
    var_y = d if sy == given[1] else sy * sy
    covariance = b if (sx, sy, rho) == given else rho * sx * sy
    cov = [[var_x, covariance], [covariance, var_y]]
    return {"type": "gaussian", "mean": [mx, my], "cov": cov}, weight


def _replace_base(base: dict) -> None:
    spec = copy.deepcopy(state.current_spec())
    spec["base"] = copy.deepcopy(base)
    state.replace_spec(spec, select=state.BASE)


def base_editor(base: dict) -> dict:
    """The base distribution's controls; returns the draft base."""
    kind = st.selectbox(
        "Base distribution p_Z",
        list(BASE_TYPES),
        format_func=BASE_TYPES.get,
        key=init(key("base", "type"), base["type"]),
        help="The simple density the flow starts from.",
    )
    if kind != base["type"]:
        defaults = {"gaussian": "standard Gaussian", "uniform": "uniform box", "mixture": "two blobs"}
        base = copy.deepcopy(BASE_PRESETS[defaults[kind]])
    if kind == "gaussian":
        draft, _ = _gaussian_controls(base, ("base", "g"))
        return draft
    if kind == "uniform":
        x_range = range_slider(
            "Box x-range (low, high)",
            (base["low"][0], base["high"][0]),
            4.0,
            0.05,
            key("base", "ux"),
            "The box must have a positive width.",
        )
        y_range = range_slider(
            "Box y-range (low, high)",
            (base["low"][1], base["high"][1]),
            4.0,
            0.05,
            key("base", "uy"),
            "The box must have a positive height.",
        )
        return {"type": "uniform", "low": [x_range[0], y_range[0]], "high": [x_range[1], y_range[1]]}
    return _mixture_editor(base)


def _mixture_editor(base: dict) -> dict:
    c1, c2 = st.columns(2)
    c1.button(
        "Two blobs",
        on_click=_replace_base,
        args=(two_blobs(),),
        width="stretch",
        key=key("base", "blobs"),
    )
    c2.button(
        "Ring of 8",
        on_click=_replace_base,
        args=(ring_of_gaussians(),),
        width="stretch",
        key=key("base", "ring"),
    )
    components = base["components"]
    weights = base["weights"]
    count = int(
        st.number_input(
            "Number of components",
            min_value=min(2, len(components)),
            max_value=limits.MAX_MIXTURE_COMPONENTS,
            step=1,
            key=init(key("base", "count"), len(components)),
            help=f"Up to {limits.MAX_MIXTURE_COMPONENTS}; beyond {fields.SLIDER_COMPONENTS} they are edited "
            "in a table.",
        )
    )
    while len(components) < count:
        angle = 2 * math.pi * len(components) / count
        components = [
            *components,
            {"mean": [2 * math.cos(angle), 2 * math.sin(angle)], "cov": [[0.25, 0], [0, 0.25]]},
        ]
        weights = [*weights, float(np.mean(weights))]
    components, weights = components[:count], weights[:count]
    if count > fields.SLIDER_COMPONENTS:
        return _mixture_table(components, weights)
    drafts, draft_weights = [], []
    tabs = st.tabs([f"Component {i + 1}" for i in range(count)])
    for i, tab in enumerate(tabs):
        with tab:
            draft, weight = _gaussian_controls(components[i], ("base", "m", i), show_weight=weights[i])
            drafts.append({"mean": draft["mean"], "cov": draft["cov"]})
            draft_weights.append(weight)
    return {"type": "mixture", "components": drafts, "weights": draft_weights}


NARROW = {"width": 44, "format": "%.2f"}  # shown rounded; a value is kept exactly until edited


def _mixture_table(components: list[dict], weights: list[float]) -> dict:
    """Many components: one row each (mean, standard deviations, correlation, weight)."""
    sx = [math.sqrt(c["cov"][0][0]) for c in components]
    sy = [math.sqrt(c["cov"][1][1]) for c in components]
    edited = table(
        {
            "μ₁": [c["mean"][0] for c in components],
            "μ₂": [c["mean"][1] for c in components],
            "σ₁": sx,
            "σ₂": sy,
            "ρ": [c["cov"][0][1] / (a * b) for c, a, b in zip(components, sx, sy, strict=True)],
            "weight": list(weights),
        },
        key("base", "table", len(components)),
        **{  # six narrow columns fit the editor's width
            "μ₁": NARROW,
            "μ₂": NARROW,
            "σ₁": {**NARROW, "min_value": 0.0},
            "σ₂": {**NARROW, "min_value": 0.0},
            "ρ": {**NARROW, "min_value": -0.999, "max_value": 0.999},
        },
        weight={**NARROW, "format": "%.3f", "min_value": 0.0, "help": "normalised to sum to 1"},
    )
    drafts = []
    for mx, my, a, b, rho in zip(*(edited[c] for c in ("μ₁", "μ₂", "σ₁", "σ₂", "ρ")), strict=True):
        drafts.append({"mean": [mx, my], "cov": [[a * a, rho * a * b], [rho * a * b, b * b]]})
    st.caption("One row per component: its mean, standard deviations, correlation and weight.")
    return {"type": "mixture", "components": drafts, "weights": edited["weight"]}


# ----------------------------------------------------------------------------- layers


def layer_label(layer: dict, index: int) -> str:
    off = "" if layer.get("enabled", True) else "  (off)"
    return f"{index + 1} · {LAYER_TITLES[layer['type']]}{off}"


def layer_caption(layer: dict) -> str:
    cls = LAYER_CLASSES[layer["type"]]
    words = STRUCTURE_WORDS[cls.jacobian]
    return words + (", volume-preserving" if cls.volume_preserving else "")


def _number_control(control: Control, layer: dict, uid: str) -> float:
    """The slider of one number of a layer (its frames: the same number in the current spec)."""
    value = fields.get_value(layer, control.path)
    if value is None:
        value = fields.neutral_value(control.path)
    low, high = fields.dynamic_range(control, layer)
    widget_key = key(uid, *control.path)
    ss = st.session_state
    if widget_key in ss and float(ss[widget_key]) <= fields.invalid_at_or_below(control, layer):
        ss[widget_key] = low  # a limit moved (radial beta above -alpha): follow it
    path = ("layers", state.uids().index(uid), *control.path)
    return slider(control.label, value, low, high, control.step, widget_key, control.help, path)


def _signed_controls(layer: dict, uid: str, name: str) -> None:
    """Signed factors (scale's k): a magnitude slider kept away from 0 and a mirror switch for each."""
    for i, control in enumerate(LAYER_CLASSES[layer["type"]].controls):
        k = layer[name][i]
        c1, c2 = st.columns([3, 1])
        with c1:
            magnitude = slider(
                control.label,
                abs(k),
                control.low,
                control.high,
                control.step,
                key(uid, name, i),
                control.help,
            )
        with c2:
            mirror = st.checkbox(
                "Mirror",
                key=init(key(uid, "mirror", i), k < 0),
                help=f"Negative k{'₁₂'[i]}: reflect the plane; |det J| is unchanged.",
            )
        layer[name][i] = -magnitude if mirror else magnitude


def _spline_shape(layer: dict, uid: str) -> None:
    options = {"both coordinates": [0, 1], "x₁ only": [0], "x₂ only": [1]}
    names = list(options)
    current = names[[v for v in options.values()].index(layer["dims"])]
    choice = st.radio(
        "Acts on",
        names,
        key=init(key(uid, "dims"), current),
        horizontal=True,
        help="Elementwise: each chosen coordinate gets the same 1D map.",
    )
    layer["dims"] = options[choice]
    cls = LAYER_CLASSES[layer["type"]]
    count = int(
        st.number_input(
            cls.count_label,
            1,
            cls.max_count,
            step=1,
            key=init(key(uid, cls.count_field), len(layer[cls.count_field])),
            help=f"{cls.count_help} (up to {cls.max_count}; beyond {cls.slider_count} they are edited in a table).",
        )
    )
    cls.resize(layer, count)


def _knot_table(layer: dict, uid: str) -> None:
    """Many bins or knots: one row each, in one table."""
    if "widths" in layer:  # a spline's bins
        bins = len(layer["widths"])
        edited = table(
            {
                "width": layer["widths"],
                "height": layer["heights"],
                "end slope": [*layer["derivatives"], math.nan],
            },
            key(uid, "table", bins),
            width={"min_value": 0.0},
            height={"min_value": 0.0},
            **{"end slope": {"min_value": 0.0, "help": "the slope at the bin's right knot"}},
        )
        layer["widths"], layer["heights"] = edited["width"], edited["height"]
        layer["derivatives"] = edited["end slope"][:-1]
        st.caption(
            "One row per bin, from −B to B: widths and heights are rescaled to sum to 2B; each bin's "
            "end slope is the slope at its right knot, and at B (the last row) it is 1, where the spline "
            "joins the identity."
        )
        return
    knots = len(layer["knots"])
    edited = table(
        {"segment starts at": [-math.inf, *layer["knots"]], "slope": layer["slopes"]},
        key(uid, "table", knots),
        slope={"min_value": 0.0},
    )
    layer["knots"], layer["slopes"] = edited["segment starts at"][1:], edited["slope"]
    st.caption("One row per segment: the first starts at −∞; knots must increase and slopes stay above 0.")


def _rows(controls: list[Control]) -> list[list[Control]]:
    """Bin k's width beside its height; then the knot slopes (or positions) two by two."""
    by_index: dict[tuple, list[Control]] = {}
    for control in controls:
        group = ("bin", control.path[1]) if control.path[0] in ("widths", "heights") else (control.path[0],)
        by_index.setdefault(group, []).append(control)
    rows: list[list[Control]] = []
    for group, members in by_index.items():
        if group[0] == "bin":
            rows.append(members)
        else:
            rows += [members[i : i + 2] for i in range(0, len(members), 2)]
    return rows


def layer_editor(layer: dict, uid: str) -> dict:
    """The selected layer's controls; returns the draft layer."""
    draft = copy.deepcopy(layer)
    cls = LAYER_CLASSES[draft["type"]]
    if cls.signed_magnitudes:
        _signed_controls(draft, uid, cls.signed_magnitudes)
        return draft
    if "condition_on" in cls.fields:
        options = {"x₁ passes through, x₂ is changed": 0, "x₂ passes through, x₁ is changed": 1}
        names = list(options)
        choice = st.radio(
            "Coupling direction",
            names,
            key=init(key(uid, "cond"), names[draft["condition_on"]]),
            help="The passing coordinate steers the shift and scale of the other one.",
        )
        draft["condition_on"] = options[choice]
    if cls.count_field:
        _spline_shape(draft, uid)
        if len(draft[cls.count_field]) > cls.slider_count:  # one table instead of a slider per number
            for control in cls.controls:  # the bound
                fields.set_value(draft, control.path, _number_control(control, draft, uid))
            _knot_table(draft, uid)
            return draft
    controls = fields.controls_for(draft)
    if not controls:
        st.caption("This layer has no parameters.")
    if cls.control_groups:
        groups = cls.control_groups
        tabs = st.tabs(list(groups.values()))
        for tab, group in zip(tabs, groups, strict=True):
            with tab:
                for control in [c for c in controls if c.path[0] == group]:
                    fields.set_value(draft, control.path, _number_control(control, draft, uid))
                draft[group] = fields.tidy_function(draft[group])
        return draft
    if len(controls) <= 6:
        for control in controls:
            fields.set_value(draft, control.path, _number_control(control, draft, uid))
    else:  # long lists (spline bins, knots): pairs side by side, each row one bin or knot
        singles = [c for c in controls if c.path[0] in ("bound",)]
        pairs = [c for c in controls if c not in singles]
        for control in singles:
            fields.set_value(draft, control.path, _number_control(control, draft, uid))
        for row in _rows(pairs):
            for column, control in zip(st.columns(2), row, strict=False):
                with column:
                    fields.set_value(draft, control.path, _number_control(control, draft, uid))
    condition = cls.condition_caption(draft)
    if condition:
        with st.container(key=CONDITION_KEY):  # (a drag's frames say it for the value under the thumb)
            st.caption(condition)
    return draft


def formulas(layer: dict) -> None:
    cls = LAYER_CLASSES[layer["type"]]
    st.markdown("**Forward** x = f(z)")
    st.latex(cls.latex["forward"])
    st.markdown("**Inverse** z = f⁻¹(x)")
    st.latex(cls.latex["inverse"])
    st.markdown("**Volume change**")
    st.latex(cls.latex["log_det"])
    if cls.reference:
        st.caption(cls.reference)


def layer_actions(uid: str, layer: dict, index: int, count: int) -> None:
    """Move, duplicate, remove, and switch the layer off and on (callbacks: the whole page redraws)."""
    actions = [
        (":material/arrow_upward:", "up", state.move, (uid, -1), index == 0, "Move earlier (towards z)"),
        (
            ":material/arrow_downward:",
            "down",
            state.move,
            (uid, 1),
            index == count - 1,
            "Move later (towards x)",
        ),
        (":material/content_copy:", "dup", state.duplicate, (uid,), False, "Duplicate this layer"),
        (":material/delete:", "del", state.remove, (uid,), False, "Remove this layer"),
    ]
    columns = st.columns(4, vertical_alignment="center", gap="small")
    for column, (icon, name, action, args, disabled, help) in zip(columns, actions, strict=False):
        column.button(
            "",
            icon=icon,
            key=key(uid, name),
            on_click=action,
            args=args,
            disabled=disabled,
            help=help,
            width="stretch",
        )
    on_key = init(key(uid, "on"), layer.get("enabled", True))
    st.toggle(
        "Layer on",
        key=on_key,
        help="Switch the layer off to see the flow without it",
        on_change=lambda: state.set_enabled(uid, st.session_state[on_key]),
    )


def add_layer_controls() -> None:
    kinds = list(LAYER_DEFAULTS)
    kind = st.selectbox("Layer type to add", kinds, format_func=LAYER_TITLES.get, key="fv_add_kind")
    st.button(
        "Add layer", on_click=state.add, args=(kind,), key="fv_add", width="stretch", icon=":material/add:"
    )
