"""Change of variables on a line: push a base density through a monotone map and watch p_X."""

from __future__ import annotations

import contextlib
import math

import streamlit as st

from flowviz.errors import SpecError
from flowviz.line import (
    BASE_KINDS,
    CLASSIC_BASE,
    CLASSIC_CASES,
    CLASSIC_INTERVAL,
    DEFAULT_MAP,
    MAP_CLASSES,
    MAP_KINDS,
    build_line_base,
    build_line_map,
    classic_map,
)
from flowviz.line.spec import (
    DEFAULT_LINE_SPEC,
    SAMPLE_COUNTS,
    curves_of,
    histogram_of,
    interval_of,
    line_base,
    line_map,
    line_spec,
    line_token,
    probe_of,
    read_line_token,
    shape_json,
)
from flowviz.plots.one_d import LENGTH_LEGEND, change_of_variables_figure
from flowviz.ui import fairness
from flowviz.ui.drag_slider import SETTING_KEY, LineFrameSource, drag_preview
from flowviz.ui.live_chart import live_chart
from flowviz.ui.path import next_idea
from flowviz.ui.share import link_box

K = "one_d."  # prefix of this page's session-state keys
# The one state of the picture: the canonical 1D spec last drawn (flowviz.line.spec). The controls'
# session-state entries are its editable copy: each run reads them into a new spec, drawn if valid.
SPEC = K + "spec"
LINKED = K + "linked"  # the spec a link asked for, until the first picture drawn from it
# The parameters' sliders move in fine steps, so that a drag passes many values (each one a picture
# while the thumb moves); the keyboard's Page Up / Page Down move a tenth of the range.
STEP = 0.01
# The readouts carry 12 significant digits (both sides of each identity agree to about that):
# at text size, in figures of one width, so they line up and fit a phone's width.
CHART_LABEL = "p_Z under the graph of x = f(z), p_X beside it, an interval carried from one to the other"
READOUT_STYLE = (
    "<style>.st-key-fv_1d_readouts [data-testid='stMetricValue'] "
    "{ font-size: 1.05rem; font-variant-numeric: tabular-nums; }</style>"
)

# Each control's first value; the opening picture's controls are overwritten below with the values
# that show flowviz.line.spec's default spec (one source for the page, its links and the core).
DEFAULTS = {
    "base_kind": "uniform",
    "uniform_low": -2.0,
    "uniform_high": 2.0,
    "gaussian_mean": 0.0,
    "gaussian_std": 1.0,
    "mixture_mean1": -1.2,
    "mixture_std1": 0.4,
    "mixture_mean2": 1.0,
    "mixture_std2": 0.7,
    "mixture_weight1": 0.4,
    "map_kind": DEFAULT_MAP[0],
    # each map's sliders, as its layer class declares them
    **{control.name: control.default for cls in MAP_CLASSES for control in cls.line_controls},
    "interval_start": -1.7,
    "interval_width": 0.5,
    "probe_x": 0.0,
    "samples": 10_000,
}

PRESETS = CLASSIC_CASES  # label, slope a, offset b, probe x


def preset_spec(name: str) -> dict:
    """The spec of a classic case: a uniform base on [0, 1] through x = a z + b, as in the classic
    three-row picture (the sample count is the page's own)."""
    _, slope, offset, probe_x = PRESETS[name]
    start, width = CLASSIC_INTERVAL
    fmap = classic_map(slope, offset)
    return line_spec(CLASSIC_BASE, fmap, start, width, probe_x, DEFAULT_LINE_SPEC["samples"])


def apply_preset(name: str) -> None:
    """Show a classic case: its spec's values in the controls (the sample count stays)."""
    for name_, value in state_of(preset_spec(name)).items():
        if name_ != "samples":
            st.session_state[K + name_] = value


def adopt_link() -> None:
    """A link may open a state: ?spec= a whole picture (a 1D spec's token), ?case= one of the
    classic cases, ?probe= a probe point x.

    The page starts afresh from its defaults, takes the link's values, and drops them from the
    address (so the person's later changes stay, and the same link opens the same state again).
    A parameter that cannot be used is named, and the page opens as it would without it.
    """
    params = {name: st.query_params.get(name) for name in ("spec", "case", "probe")}
    if not any(value is not None for value in params.values()):
        return
    for name, value in DEFAULTS.items():
        st.session_state[K + name] = value
    st.session_state.pop(SPEC, None)
    problems = []
    case, probe_text = params["case"], params["probe"]
    if params["spec"] is not None:
        try:
            linked = read_line_token(params["spec"])
            values = state_of(linked)
        except SpecError as error:
            problems.append(f"the picture in its spec could not be opened ({error}), so the default is shown")
        else:
            for name, value in values.items():
                st.session_state[K + name] = value
            if case is None and probe_text is None:  # compared with what is drawn (see picture)
                st.session_state[LINKED] = linked
    if case is not None:
        if case in PRESETS:
            apply_preset(case)
        else:
            problems.append(f"case={case!r} is not one of {', '.join(PRESETS)}")
    if probe_text is not None:
        try:
            probe_x = float(probe_text)
        except ValueError:
            probe_x = math.nan
        if math.isfinite(probe_x):
            st.session_state[K + "probe_x"] = probe_x
        else:
            problems.append(f"probe={probe_text!r} is not a finite number")
    st.session_state[K + "link_problem"] = "; ".join(problems) or None
    for name in params:
        if name in st.query_params:
            del st.query_params[name]


# Where each parameter of a base or map lives in session state (a list: one entry per knot or slope).
BASE_PARAMS = {
    "uniform": {"low": "uniform_low", "high": "uniform_high"},
    "gaussian": {"mean": "gaussian_mean", "std": "gaussian_std"},
    "mixture": {
        "mean1": "mixture_mean1",
        "std1": "mixture_std1",
        "mean2": "mixture_mean2",
        "std2": "mixture_std2",
        "weight1": "mixture_weight1",
    },
}
MAP_BY_KIND = {cls.type_name: cls for cls in MAP_CLASSES}


def control_table(controls) -> dict:
    """A map's parameters -> their sliders' names (a list parameter: its sliders in order)."""
    table: dict = {}
    for control in controls:
        if len(control.path) == 1:
            table[control.path[0]] = control.name
        else:
            table.setdefault(control.path[0], []).append(control.name)
    return table


MAP_PARAMS = {kind: control_table(cls.line_controls) for kind, cls in MAP_BY_KIND.items()}


def state_of(spec: dict) -> dict:
    """The controls' values (names without the page's prefix) that show a canonical 1D spec.

    SpecError where the controls cannot show it (a spline with another number of knots).
    """
    values = {}
    for part, table, (kind, params) in (
        ("base", BASE_PARAMS, line_base(spec)),
        ("map", MAP_PARAMS, line_map(spec)),
    ):
        values[f"{part}_kind"] = kind
        for key, names in table[kind].items():
            if isinstance(names, list):
                if len(params[key]) != len(names):
                    raise SpecError(
                        f"{part}.{key}",
                        f"this page shows {len(names)} values, the spec has {len(params[key])}",
                    )
                values.update(zip(names, params[key], strict=True))
            else:
                values[names] = params[key]
    values["interval_start"] = spec["interval"]["start"]
    values["interval_width"] = spec["interval"]["width"]
    values["probe_x"] = spec["probe"]
    values["samples"] = spec["samples"]
    return values


DEFAULTS.update(state_of(DEFAULT_LINE_SPEC))


def current(part: str) -> tuple[str, dict]:
    """The base's or the map's kind and parameters as session state holds them now."""
    ss = st.session_state
    kind = ss.get(K + f"{part}_kind", DEFAULTS[f"{part}_kind"])
    table = (BASE_PARAMS if part == "base" else MAP_PARAMS)[kind]

    def value(name: str) -> float:
        return float(ss.get(K + name, DEFAULTS[name]))

    return kind, {
        key: [value(n) for n in names] if isinstance(names, list) else value(names)
        for key, names in table.items()
    }


def place_of(part: str, name: str) -> tuple:
    """The place of session-state entry ``name`` in the current base's or map's parameters."""
    kind = current(part)[0]
    for key, names in (BASE_PARAMS if part == "base" else MAP_PARAMS)[kind].items():
        if names == name:
            return (key,)
        if isinstance(names, list) and name in names:
            return (key, names.index(name))
    raise KeyError(name)


def slider(label: str, name: str, low: float, high: float, step: float, part: str | None = None) -> float:
    """A slider whose value lives in session state under the page's prefix (default from DEFAULTS).

    ``part`` ("base" or "map"): a parameter of f or p_Z, so the figure's curves follow its
    thumb while it is dragged (the interval and probe sliders leave it out).
    """
    key = K + name
    st.session_state.setdefault(key, DEFAULTS[name])
    st.session_state[key] = min(max(float(st.session_state[key]), low), high)
    value = st.slider(label, low, high, step=step, key=key)
    if part is not None:
        frames = LineFrameSource(current("base"), current("map"), part, place_of(part, name))
        drag_preview(label, low, high, step, key, frames)
    return value


def nice_step(span: float) -> float:
    """A round step giving about 200 positions over ``span``."""
    return 10.0 ** math.floor(math.log10(max(span, 1e-9) / 200.0))


def range_slider(label: str, name: str, low: float, high: float, **kwargs) -> float:
    """A slider over a range that follows the picture, rounded inwards (so it stays inside the
    range, e.g. the image of f), with the value kept inside."""
    step = nice_step(high - low)
    low, high = math.ceil(low / step) * step, math.floor(high / step) * step
    return slider(label, name, round(low, 10), round(high, 10), step, **kwargs)


def keep_last_good(what: str, kind: str, params: dict, build) -> tuple[str, dict]:
    """Use (kind, params) when they build; otherwise say why here and keep the last drawn ones."""
    try:
        build(kind, params)
    except SpecError as error:
        st.error(
            f"{error.reason}. Showing the last valid {what} until this is fixed.", icon=":material/warning:"
        )
        last = st.session_state.get(SPEC, DEFAULT_LINE_SPEC)
        return (line_base if what == "base" else line_map)(last)
    return kind, params


def base_controls() -> tuple[str, dict]:
    st.subheader("Base density p_Z")
    st.session_state.setdefault(K + "base_kind", DEFAULTS["base_kind"])
    kind = st.selectbox(
        "Base distribution p_Z", list(BASE_KINDS), format_func=BASE_KINDS.get, key=K + "base_kind"
    )
    if kind == "uniform":
        params = {
            "low": slider("Uniform: lower end (low)", "uniform_low", -3.0, 3.0, STEP, "base"),
            "high": slider("Uniform: upper end (high)", "uniform_high", -3.0, 3.0, STEP, "base"),
        }
    elif kind == "gaussian":
        params = {
            "mean": slider("Gaussian: mean μ", "gaussian_mean", -3.0, 3.0, STEP, "base"),
            "std": slider("Gaussian: standard deviation σ", "gaussian_std", 0.1, 2.0, STEP, "base"),
        }
    else:
        params = {
            "mean1": slider("Component 1: mean", "mixture_mean1", -3.0, 3.0, STEP, "base"),
            "std1": slider("Component 1: standard deviation", "mixture_std1", 0.1, 2.0, STEP, "base"),
            "mean2": slider("Component 2: mean", "mixture_mean2", -3.0, 3.0, STEP, "base"),
            "std2": slider("Component 2: standard deviation", "mixture_std2", 0.1, 2.0, STEP, "base"),
            "weight1": slider("Weight of component 1", "mixture_weight1", 0.05, 0.95, STEP, "base"),
        }
    return keep_last_good("base", kind, params, build_line_base)


def map_controls() -> tuple[str, dict]:
    st.subheader("Map x = f(z)")
    st.session_state.setdefault(K + "map_kind", DEFAULTS["map_kind"])
    kind = st.selectbox("Map f (monotone)", list(MAP_KINDS), format_func=MAP_KINDS.get, key=K + "map_kind")
    cls = MAP_BY_KIND[kind]
    if cls.line_caption:
        st.caption(cls.line_caption)
    params: dict = {}
    controls = cls.line_controls
    for start in range(0, len(controls), cls.line_columns):
        row = controls[start : start + cls.line_columns]
        places = st.columns(len(row)) if len(row) > 1 else [None]
        for place, control in zip(places, row, strict=True):
            with place if place is not None else contextlib.nullcontext():
                value = slider(control.label, control.name, control.low, control.high, STEP, "map")
            if len(control.path) == 1:
                params[control.path[0]] = value
            else:
                params.setdefault(control.path[0], []).append(value)
    return keep_last_good("map", kind, params, build_line_map)


def fmt(value: float, digits: int = 12) -> str:
    return f"{value:.{digits}g}"


# --------------------------------------------------------------------------- the picture and its numbers


@st.fragment
@fairness.quick
def picture(base: tuple[str, dict], fmap: tuple[str, dict]) -> None:
    """The figure, its interval, probe and sample controls, and the numbers: the part a slider of
    the interval or the probe reruns. The spec drawn is kept as the page's state and shared by link."""
    # the key of the curves: the canonical base and map (the interval and probe given here stay out of it)
    shape = shape_json(line_spec(base, fmap, 0.0, 1.0, 0.0, SAMPLE_COUNTS[0]))
    built_base, built_map = build_line_base(*base), build_line_map(*fmap)
    curves = curves_of(shape)
    with st.container(key=SETTING_KEY):  # (dimmed while a drag's frames show another setting)
        st.latex(rf"\begin{{gathered}} {built_base.latex} \\ {built_map.latex} \end{{gathered}}")
    cols = st.columns(4)
    with cols[0]:
        start = range_slider("Interval start z", "interval_start", *curves.z_range)
    with cols[1]:
        span = curves.z_range[1] - curves.z_range[0]
        width = range_slider("Interval width dz", "interval_width", span / 200, span / 2)
    with cols[2]:
        probe_x = range_slider("Probe point x", "probe_x", *curves.probe_range)
    with cols[3]:
        st.session_state.setdefault(K + "samples", DEFAULTS["samples"])
        count = st.select_slider(
            "Number of samples z ~ p_Z pushed through f", list(SAMPLE_COUNTS), key=K + "samples"
        )
    spec = line_spec(base, fmap, start, width, probe_x, count)
    st.session_state[SPEC] = spec
    linked = st.session_state.pop(LINKED, None)
    if linked is not None and linked != spec:
        moved = [name for name in linked if linked[name] != spec[name]]
        st.warning(
            f"Part of this link was not used: its {' and '.join(moved)} went beyond what the sliders "
            f"reach here and {'was' if len(moved) == 1 else 'were'} moved inside.",
            icon=":material/warning:",
        )
    # computed by the canonical spec's values, cached by them in flowviz.line.spec
    interval = interval_of(shape, spec["interval"]["start"], spec["interval"]["width"])
    at_probe = probe_of(shape, spec["probe"])
    edges, histogram = histogram_of(shape, spec["samples"], curves.x_range)

    figure = change_of_variables_figure(curves, interval, at_probe, edges, histogram, count)
    live_chart(figure, K + "figure", figure["layout"]["height"], CHART_LABEL, {"displayModeBar": False})
    st.caption(
        "**What to look at.** The green interval [z, z+dz] under p_Z rises to the graph of f and turns "
        "left onto [x, x+dx] beside p_X: the same probability, spread over a different length. "
        "Where f squeezes length the same area must stand taller, so p_X rises; where it stretches, "
        f"p_X falls. Curve colour: {LENGTH_LEGEND}. Both densities are drawn to the same scale; "
        "the grey bars are a histogram of f(z) for samples of z, which should follow p_X."
    )
    readouts = st.container(key="fv_1d_readouts")  # numbers at text size: CSS below
    readouts.html(READOUT_STYLE)
    carried, at_point, rule = readouts.columns(3)
    with carried:
        interval_numbers(interval)
        st.metric("Mass of p_X on the shown x range", f"{curves.mass_in_view:.10f}")
        st.caption(
            f"Quadrature of p_X over the window; the base CDF at the preimages of its ends "
            f"gives {curves.mass_in_view_cdf:.10f}.{mass_in_view_note(curves)}"
        )
    with at_point:
        probe_numbers(at_probe)
    with rule:
        rule_numbers(at_probe)
    with st.container(border=True, key="fv_1d_share"):
        link_box(line_token(spec), "picture")


def mass_in_view_note(curves) -> str:
    """Why the two masses on the shown range differ, where they differ by more than 1e-6.

    Flatness is the reason only where the window holds a finite end of f's image (tanh,
    sigmoid, exp): an image that is all of R has no end where f could be flat.
    """
    gap = abs(curves.mass_in_view - curves.mass_in_view_cdf)
    if gap <= 1e-6:
        return ""
    if curves.reaches_image_end:
        return (
            " They differ because f is flat to float64 precision at the end of its image: "
            "the mass it piles there is out of reach of any grid in x."
        )
    return f" They differ by {gap:.1e}: the quadrature did not resolve all of p_X on this window."


def interval_numbers(interval) -> None:
    st.markdown("**The carried interval: one probability, two integrals**")
    st.latex(r"\int_{z}^{z+dz} p_Z(z')\,dz' \;=\; \int_{f(z)}^{f(z+dz)} p_X(x')\,dx'")
    st.latex(
        rf"[{interval.z_lo:.4g},\ {interval.z_hi:.4g}] \xrightarrow{{f}} [{interval.x_lo:.4g},\ {interval.x_hi:.4g}]"
    )
    st.metric("Probability in [z, z+dz] (base CDF)", f"{interval.mass_base:.12f}")
    st.metric("Probability in [x, x+dx] (quadrature of p_X)", f"{interval.mass_pushforward:.12f}")
    st.metric("Difference of the two probabilities", f"{interval.mass_difference:.1e}")
    if interval.at_image_end:
        st.warning(
            "This interval reaches where f is flat to float64 precision (its values round to the end "
            "of its image), so quadrature in x cannot see all of its mass: move it inward.",
            icon=":material/warning:",
        )


def probe_numbers(at: object) -> None:
    st.markdown("**At the probe point: the change of variables, factor by factor**")
    if not at.inside:
        st.info(f"No z maps to x = {at.x:.4g}: it lies outside the image of f, so p_X(x) = 0.")
        return
    st.latex(r"p_X(x) = p_Z\big(f^{-1}(x)\big)\,\Big|\frac{d f^{-1}}{dx}\Big|")
    st.latex(
        rf"p_X({at.x:.4g}) = {at.base_density:.5g} \times {math.exp(at.log_det_inverse):.5g} = {at.density:.5g}"
    )
    st.metric("z = f⁻¹(x)", fmt(at.z))
    st.metric("p_Z(z)", fmt(at.base_density))
    st.metric("|d f⁻¹/dx| (analytic, from the layers)", fmt(math.exp(at.log_det_inverse)))
    st.metric("p_X(x)", fmt(at.density))


def rule_numbers(at: object) -> None:
    st.markdown("**The inverse-function rule, checked by autograd**")
    if not at.inside:
        st.info("Move the probe inside the image of f to check the rule.")
        return
    st.latex(r"\frac{d f^{-1}}{dx}(x) = \frac{1}{f'\big(f^{-1}(x)\big)}")
    st.metric("d f⁻¹/dx (autograd of the inverse)", fmt(at.inverse_slope_autograd))
    st.metric("1 / f′(z) (autograd of the forward)", fmt(at.reciprocal_forward_slope))
    st.metric("Difference (inverse-function rule)", f"{at.rule_difference:.1e}")
    st.caption("Two separate derivatives: one through f⁻¹ at x, one through f at z = f⁻¹(x).")


# --------------------------------------------------------------------------- the page

st.title("Change of variables on a line")
st.markdown(
    "Draw z from a simple density p_Z and push it through a monotone map x = f(z). Probability is "
    "neither made nor lost on the way, only moved: whatever lay in [z, z+dz] now lies in "
    "[f(z), f(z+dz)]. So the new density p_X is the old one, corrected by how much f stretches length:"
)
st.latex(
    r"\begin{aligned} p_X(x) &= p_Z\big(f^{-1}(x)\big)\,\Big|\frac{d f^{-1}}{dx}\Big| \\ "
    r"&= \frac{p_Z(z)}{|f'(z)|},\quad z = f^{-1}(x) \end{aligned}"
)
adopt_link()
if st.session_state.get(K + "link_problem"):
    st.warning(f"Part of this link was not used: {st.session_state[K + 'link_problem']}.")
st.markdown("**The three classic cases**, each on a uniform base on [0, 1] with x = a z + b:")
for column, (name, (label, *_)) in zip(st.columns(3), PRESETS.items(), strict=True):
    with column:
        st.button(label, key=K + f"preset_{name}", on_click=apply_preset, args=(name,), width="stretch")

with st.sidebar:
    base_choice = base_controls()
    map_choice = map_controls()

picture(base_choice, map_choice)
next_idea("1d")
