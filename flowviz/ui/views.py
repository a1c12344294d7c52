"""The Explorer's views: the figures, the mass readout, the probe and the layer steps."""

from __future__ import annotations

import numpy as np
import streamlit as st

from flowviz.explorer import MASS_TOLERANCE, ProbeThroughLayers, inside_fraction, mass_notes, probe_point
from flowviz.plots.common import VOLUME_LEGEND
from flowviz.plots.explore import density_panels, grid_figure, steps_figure, terms_panels, volume_panels
from flowviz.ui import fairness
from flowviz.ui.drag_slider import EXPLORER_CHART, MASS_LABEL
from flowviz.ui.live_chart import live_chart
from flowviz.ui.player import flow_player
from flowviz.ui.widgets import init, keep_value, kept, remember

MAIN_HEIGHT = 640
PLOT_CONFIG = {"displaylogo": False, "scrollZoom": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
EXTRA_VIEWS = ["Change-of-variables terms", "Layer by layer", "Probe a point"]
# How each extra view is named in a link's ?views= (short words an address can carry as they are).
VIEW_WORDS = {"terms": EXTRA_VIEWS[0], "layers": EXTRA_VIEWS[1], "probe": EXTRA_VIEWS[2]}
SAMPLE_COUNTS = range(100, 5001, 100)  # the "Number of samples" slider's positions
VIEW_PARAMS = ("log", "samples", "views")  # the view options' query parameters, beside ?spec=
RESOLUTIONS = [64, 96, 128, 192, 256, 384, 512]  # grid points per axis offered


def mass_readout(mass: float, host=st) -> None:
    host.metric(
        MASS_LABEL,
        f"{mass:.4f}",
        help="The probability the visible window holds: the sum of p_X(x) times the cell area over the grid. "
        "A grid sum, so a density with sharp peaks can read a little above 1; a finer grid brings it closer.",
    )


MASS_SAMPLES = 2000  # samples that check, when the mass reads low, whether it is outside the window


def mass_warning(mass: float, fields: dict | None = None, view: dict | None = None, samples=None) -> None:
    """Say why the mass in view cannot be taken at face value (see :func:`flowviz.explorer.mass_notes`)."""
    inside = None
    if samples is not None and view is not None and mass < 1 - MASS_TOLERANCE:
        try:
            inside = inside_fraction(samples(MASS_SAMPLES)[1], view)
        except Exception:  # a flow whose samples cannot be drawn: no second opinion, the plain advice stands
            inside = None
    log_det_forward = fields["log_det_forward"] if fields is not None else np.zeros(0)
    for kind, text in mass_notes(mass, log_det_forward, inside, MASS_SAMPLES):
        getattr(st, kind)(text, icon="↔️" if text.endswith("widen the view.") else "⚠️")


def main_figure(
    fields: dict, log_scale: bool, samples: tuple | None, probe: ProbeThroughLayers | None
) -> None:
    """p_Z | p_X over volume change in z | volume change in x; z panels and x panels zoom together."""
    panels = [
        *density_panels(fields["base_density"], fields["density"], log_scale),
        *volume_panels(fields["log_det_forward"], fields["log_det_inverse"]),
    ]
    overlay = None
    if samples is not None:
        z0, x = samples
        overlay = {0: z0, 1: x}
    markers = None
    if probe is not None:
        markers = {1: probe.x, 3: probe.x}
        if probe.inside:
            markers.update({0: probe.z0, 2: probe.z0})
    figure = grid_figure(
        panels,
        fields["x"],
        fields["y"],
        cols=2,
        spaces=["z", "x", "z", "x"],
        lines={"z_lines": fields["z_lines"], "x_lines": fields["x_lines"]},
        samples=overlay,
        markers=markers,
        height=MAIN_HEIGHT,
        hover=[1],  # values under the cursor on p_X; the probe itemises any point exactly
    )
    live_chart(figure, "fv_main_figure", MAIN_HEIGHT, EXPLORER_CHART, PLOT_CONFIG)
    st.caption(
        "Top: the base density p_Z with an even grid, and the density p_X after the flow with the same grid "
        "carried along (cells that grow thin the density, cells that shrink concentrate it). "
        f"Bottom: log|det J_f|, how much each cell's area changes — {VOLUME_LEGEND}. "
        "Left panels live in z-space, right panels in x-space; zoom one and its partner follows."
    )


def terms_figure(fields: dict) -> None:
    panels = terms_panels(fields["base_log_prob"], fields["log_det_inverse"], fields["log_density"])
    figure = grid_figure(
        panels, fields["x"], fields["y"], cols=3, spaces=["x", "x", "x"], height=380, hover=[2]
    )
    live_chart(figure, "fv_terms_figure", 380, "The terms of the change of variables", PLOT_CONFIG)
    st.caption(
        "The change of variables, term by term: log p_X(x) = log p_Z(f⁻¹(x)) + log|det J_f⁻¹(x)|. "
        "Left: how likely the point x came from is under the base. Middle: the volume correction, "
        "blue (positive) where f squeezes space, so the density there rises above the base density of the "
        "point it came from, red (negative) where f stretches it; white: no change. Right: their sum, "
        "the log-density. Grey: outside the image of f."
    )


def steps_view(steps, xs, ys) -> None:
    figure = steps_figure(
        [s.title for s in steps], [s.density for s in steps], [s.points for s in steps], xs, ys
    )
    live_chart(
        figure, "fv_steps_figure", figure["layout"]["height"], "The density after each layer", PLOT_CONFIG
    )
    st.caption(
        "Each layer's step: the density of z_k after the first k layers (one colour scale), with the same "
        "400 samples carried through."
    )


def probe_table(probe: ProbeThroughLayers) -> None:
    if not probe.inside:
        st.info(
            f"x = ({probe.x[0]:.3g}, {probe.x[1]:.3g}) lies outside the image of the flow: no z maps there, "
            "so p_X(x) = 0."
        )
        return
    rows = [
        {
            "layer (x back to z)": r.layer,
            "input z_(k-1)": f"({r.point_before[0]:.4g}, {r.point_before[1]:.4g})",
            "output z_k": f"({r.point_after[0]:.4g}, {r.point_after[1]:.4g})",
            "log|det J_fk⁻¹|": f"{r.log_det_inverse:+.5f}",
        }
        for r in probe.rows
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    density = float(np.exp(probe.log_density))
    st.latex(
        rf"\log p_X(x) = \underbrace{{{probe.base_log_prob:.4f}}}_{{\log p_Z(z_0)}}"
        rf" + \underbrace{{{probe.log_det_inverse:+.4f}}}_{{\sum_k \log|\det J_{{f_k^{{-1}}}}|}}"
        rf" = {probe.log_density:.4f},\qquad p_X(x) = {density:.5g}"
    )


def view_options() -> None:
    """How the views look and which extra views to show (outside the live part: a click, not a drag).
    Their values outlive a visit to another page (``widgets.kept``)."""
    st.toggle(
        "Log scale",
        key=kept("fv_log", False),
        help="Density on a log scale: shows heavy tails and faint structure.",
    )
    st.toggle(
        "Samples",
        key=kept("fv_samples_on", False),
        help="Base draws z₀ and their images f(z₀) over the densities.",
    )
    st.slider("Number of samples", 100, 5000, step=100, key=kept("fv_samples_n", 500))
    st.pills("More views", EXTRA_VIEWS, selection_mode="multi", key=kept("fv_extra", []))
    remember("fv_log", "fv_samples_on", "fv_samples_n", "fv_extra")


def view_query() -> dict[str, str]:
    """The view options as query parameters: ``log=1``, ``samples=N`` (shown, N of them),
    ``views=terms,layers,probe``; an option at its default is left out (a plain link stays plain).

    They sit beside ``?spec=`` rather than in the flow spec: they change how a flow is seen, not
    the flow (the spec is the cache key of everything computed from the flow).
    """
    ss = st.session_state
    query = {}
    if ss.get("fv_log"):
        query["log"] = "1"
    if ss.get("fv_samples_on"):
        query["samples"] = str(int(ss.get("fv_samples_n", 500)))
    words = [word for word, label in VIEW_WORDS.items() if label in (ss.get("fv_extra") or [])]
    if words:
        query["views"] = ",".join(words)
    return query


def read_view_query(params: dict[str, str | None]) -> tuple[dict, list[str]]:
    """The view options a link's parameters ask for (session-state entries) and what could not be used."""
    values, problems = {}, []
    log, samples, views = (params.get(name) for name in VIEW_PARAMS)
    if log is not None:
        if log.lower() in ("1", "true", "0", "false"):
            values["fv_log"] = log.lower() in ("1", "true")
        else:
            problems.append(f"log={log!r} is not 1 or 0")
    if samples is not None:
        count = int(samples) if samples.isdigit() else None
        if count in SAMPLE_COUNTS:
            values["fv_samples_on"], values["fv_samples_n"] = True, count
        else:
            problems.append(f"samples={samples!r} is not a multiple of 100 from 100 to 5000")
    if views is not None:
        words = [word.strip() for word in views.split(",") if word.strip()]
        unknown = [word for word in words if word not in VIEW_WORDS]
        if unknown:
            problems.append(f"views={unknown[0]!r} is not one of {', '.join(VIEW_WORDS)}")
        values["fv_extra"] = [label for word, label in VIEW_WORDS.items() if word in words]
    return values, problems


LINK_READ = "fv_view_link_read"


def adopt_view_query() -> str | None:
    """Once per session, before the view options are drawn: take the ones the link asks for.

    Returns a one-line message naming what could not be used (the rest is used), or None.
    """
    ss = st.session_state
    if ss.get(LINK_READ):
        return None
    ss[LINK_READ] = True
    values, problems = read_view_query({name: st.query_params.get(name) for name in VIEW_PARAMS})
    ss.update(values)
    return f"Part of this link was not used: {'; '.join(problems)}." if problems else None


def sync_view_query() -> None:
    """Keep the view options in the address bar equal to what is on screen (as ?spec= is)."""
    query = view_query()
    for name in VIEW_PARAMS:
        if name in query:
            if st.query_params.get(name) != query[name]:
                st.query_params[name] = query[name]
        elif name in st.query_params:
            del st.query_params[name]


def play_section(
    flow_key: str, n_layers: int, view: dict, strip, log_scale: bool, ahead: bool = True
) -> None:
    st.markdown("**Play the flow from p_Z to p_X**")
    flow_player(flow_key, n_layers, view, strip, log_scale, ahead=ahead)


def render_views(
    fields: dict, view: dict, names: list[str], flow_factory, samples, steps, play: tuple | None = None
) -> None:
    """Every view of one flow: readouts, the main figure and the views asked for.

    ``fields``: the arrays of ``flowviz.explorer.fields_of_flow``; ``names``: the active layers;
    ``flow_factory()`` builds the Flow (only when a view needs it); ``samples(n)`` gives (z0, x);
    ``steps(titles)`` gives ``flowviz.explorer.steps_of_flow``'s result (the last two, cached by the caller).
    ``play``: (the flow's identity, ``strip(log_scale)``[, whether the page may ask for the strip
    before Play]) for the player, ``strip`` giving ``flowviz.playback.play_strip``'s arrays (cached
    by the caller, called only once the page asks for them).
    """
    ss = st.session_state
    mass = float(fields["mass"])
    mass_readout(mass)
    mass_warning(mass, fields, view, samples)
    log_scale = bool(ss.get("fv_log", False))
    show_samples = bool(ss.get("fv_samples_on", False))
    n_samples = int(ss.get("fv_samples_n", 500))
    extra = ss.get("fv_extra") or []
    probe = None
    if "Probe a point" in extra:
        (x0, x1), (y0, y1) = map(float, view["xlim"]), map(float, view["ylim"])
        p1, p2 = st.columns(2)
        chosen = []
        for column, label, k, lo, hi, start in (
            (p1, "Probe x₁", "fv_probe_x", x0, x1, 0.6),
            (p2, "Probe x₂", "fv_probe_y", y0, y1, 0.55),
        ):
            init(k, lo + start * (hi - lo))
            keep_value(k, (lo, hi), min(max(float(ss[k]), lo), hi))  # the window moved: stay inside it
            chosen.append(column.slider(label, lo, hi, key=k, step=0.01))
        px, py = chosen
        probe = probe_point(flow_factory(), (px, py), names)
    fairness.between_pieces()  # a costly grid lets other visitors' quick runs go first
    main_figure(fields, log_scale, samples(int(n_samples)) if show_samples else None, probe)
    fairness.between_pieces()
    if probe is not None:
        st.markdown("**Probe:** the point walked back from x to z₀, layer by layer")
        probe_table(probe)
    if play is not None:
        play_section(play[0], len(names), view, play[1], log_scale, *play[2:])
    if "Change-of-variables terms" in extra:
        terms_figure(fields)
    if "Layer by layer" in extra:
        titles = ["z₀ ~ p_Z", *[f"after {name}" for name in names]]
        steps_view(*steps(tuple(titles)))
