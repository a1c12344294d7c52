"""The learning path on screen: its steps with live pictures, the pointer to it, the next-idea links.

Every picture is drawn by the same core and plots as the full pages (``flowviz.line``,
``flowviz.explorer``, ``flowviz.structure``, ``flowviz.plots``); a step's link opens its page in
exactly the state the step shows (``flowviz.learning_path`` builds the addresses).
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st
from streamlit.errors import StreamlitAPIException

from flowviz.data import toy_set
from flowviz.explorer import explorer_fields
from flowviz.flow import Flow
from flowviz.jacobians import measured_reports
from flowviz.learning_path import (
    MULTIMODAL,
    NEXT_IDEA,
    STEPS,
    Step,
    explorer_link,
    inverse_jacobian_at,
    multimodal_spec,
    one_d_link,
)
from flowviz.line import (
    CLASSIC_BASE,
    CLASSIC_CASES,
    CLASSIC_INTERVAL,
    DEFAULT_BASE,
    DEFAULT_INTERVAL,
    DEFAULT_MAP,
    DEFAULT_PROBE,
    classic_map,
)
from flowviz.plots.common import VOLUME_LEGEND
from flowviz.plots.explore import density_panels, grid_figure, terms_panels
from flowviz.plots.one_d import line_figure
from flowviz.plots.structure import jacobian_heatmap
from flowviz.plots.train import data_window, samples_figure
from flowviz.spec import canonical_json
from flowviz.ui.live_chart import live_chart

K = "path."  # prefix of the path's session-state keys
DISMISSED = "fv_start_pointer_dismissed"
PAGE_TITLES = {
    "start": "Start here",
    "explore": "Explorer (2D)",
    "1d": "Change of variables (1D)",
    "structure": "Jacobian structure",
    "train": "Train a flow",
}
PAGE_FILES = {
    "start": "app_pages/start.py",
    "explore": "app_pages/explore.py",
    "1d": "app_pages/one_d.py",
    "structure": "app_pages/structure.py",
    "train": "app_pages/train.py",
}
PLOT_CONFIG = {"displayModeBar": False}
CHART_CONFIG = {"displaylogo": False, "displayModeBar": False, "scrollZoom": False}


# --------------------------------------------------------------------------- links between pages


def page_link(
    address: str, label: str, icon: str = ":material/arrow_forward:", help: str | None = None
) -> None:
    """A link to one of the app's pages at ``address`` ("/1d?case=compress"), opened in this tab.

    A page run on its own (``streamlit run app_pages/one_d.py``, or a test) has no navigation to
    link through: there the link is a plain one to the same address.
    """
    path, _, query = address.lstrip("/").partition("?")
    params = dict(pair.split("=", 1) for pair in query.split("&")) if query else None
    try:
        st.page_link(PAGE_FILES[path], label=label, icon=icon, query_params=params, help=help)
    except StreamlitAPIException:
        st.markdown(f"[{label}]({address})")


def next_idea(page: str) -> None:
    """The link at the foot of a page to the page with the next idea of the path."""
    target, what = NEXT_IDEA[page]
    st.divider()
    page_link(f"/{target}", f"Next idea: {what}", help=f"Opens {PAGE_TITLES[target]}")


def start_pointer() -> None:
    """A dismissable pointer from the Explorer to the path, for a first visit."""
    if st.session_state.get(DISMISSED):
        return
    with st.container(border=True, key="fv_start_pointer"):
        text, link, close = st.columns([3.2, 1.3, 0.9], vertical_alignment="center")
        text.markdown(
            "**New to normalizing flows?** A short path walks through the ideas behind this page, "
            "one live picture at a time."
        )
        with link:
            page_link("/start", "Start here", icon=":material/school:")
        close.button("Dismiss", key="fv_start_pointer_close", on_click=_dismiss)


def _dismiss() -> None:
    st.session_state[DISMISSED] = True


def _classic(case: str) -> tuple[str, str, float]:
    _, slope, offset, probe_x = CLASSIC_CASES[case]
    base = json.dumps(CLASSIC_BASE)
    fmap = json.dumps(classic_map(slope, offset))
    return base, fmap, probe_x


# --------------------------------------------------------------------------- the steps


def step_text(step: Step, link: str, link_label: str) -> None:
    st.subheader(step.title)
    st.markdown(step.idea)
    st.info(f"**Try this:** {step.try_this}", icon=":material/touch_app:")
    page_link(link, link_label)


def step_change_of_variables(step: Step) -> None:
    text, picture = st.columns([1, 1.5], gap="large")
    with picture:
        base, fmap = json.dumps(DEFAULT_BASE), json.dumps(DEFAULT_MAP)
        _, _, (low, high) = line_figure(base, fmap, DEFAULT_INTERVAL, DEFAULT_PROBE)
        st.session_state.setdefault(K + "probe", DEFAULT_PROBE)
        probe_x = st.slider("Probe point x", round(low, 2), round(high, 2), step=0.05, key=K + "probe")
        figure, at, _ = line_figure(base, fmap, DEFAULT_INTERVAL, float(probe_x))
        live_chart(
            figure, K + "figure1", figure["layout"]["height"], "p_Z, the graph of f and p_X", CHART_CONFIG
        )
        if at.inside:
            st.latex(
                rf"p_X({at.x:.3g}) = p_Z({at.z:.3g}) \times \Big|\frac{{d f^{{-1}}}}{{dx}}\Big| "
                rf"= {at.base_density:.4g} \times {np.exp(at.log_det_inverse):.4g} = {at.density:.4g}"
            )
    with text:
        step_text(step, one_d_link(probe=float(probe_x)), "Open this on the 1D page")


def step_three_cases(step: Step) -> None:
    text, picture = st.columns([1, 1.5], gap="large")
    with picture:
        case = st.radio(
            "Case",
            list(CLASSIC_CASES),
            format_func=lambda name: CLASSIC_CASES[name][0],
            horizontal=True,
            key=K + "case",
        )
        base, fmap, probe_x = _classic(case)
        figure, at, _ = line_figure(base, fmap, CLASSIC_INTERVAL, probe_x)
        live_chart(
            figure, K + "figure2", figure["layout"]["height"], "One of the three classic cases", CHART_CONFIG
        )
        st.caption(f"p_Z = 1 on [0, 1]; here p_X = 1 / |f′| = {at.density:.4g} on the image of [0, 1].")
    with text:
        step_text(step, one_d_link(case=case), "Open this case on the 1D page")


def step_inverse_jacobian(step: Step) -> None:
    text, picture = st.columns([1, 1.5], gap="large")
    flow = Flow.from_spec(MULTIMODAL)
    with picture:
        base, fmap = json.dumps(DEFAULT_BASE), json.dumps(DEFAULT_MAP)
        _, at, _ = line_figure(base, fmap, DEFAULT_INTERVAL, float(st.session_state.get(K + "probe", 0.0)))
        st.markdown("**On a line**, at the probe point of step 1 (two separate autograd derivatives):")
        st.latex(
            rf"\frac{{d f^{{-1}}}}{{dx}}({at.x:.3g}) = {at.inverse_slope_autograd:.6g}"
            rf"\qquad \frac{{1}}{{f'({at.z:.3g})}} = {at.reciprocal_forward_slope:.6g}"
        )
        st.markdown("**In the plane**, at a probed point x of the four-mode flow of step 4:")
        first, second = st.columns(2)
        x1 = first.slider("Probe x₁", -4.0, 4.0, step=0.05, key=K + "x1", value=1.0)
        x2 = second.slider("Probe x₂", -4.0, 4.0, step=0.05, key=K + "x2", value=0.5)
        jac = inverse_jacobian_at(flow, (x1, x2))
        fields = explorer_fields(canonical_json(MULTIMODAL))
        panels = density_panels(fields["base_density"], fields["density"], log_scale=False)
        markers = {1: (x1, x2)}
        if jac.inside:
            markers[0] = (float(jac.z[0]), float(jac.z[1]))
        figure = grid_figure(
            panels, fields["x"], fields["y"], cols=2, spaces=["z", "x"], markers=markers, height=340
        )
        live_chart(figure, K + "figure3", 340, "The probe in x and the point z it comes from", CHART_CONFIG)
        if jac.inside:
            st.latex(  # one matrix per line: a phone's width holds one
                rf"\begin{{gathered}} J_f(z) = {_matrix(jac.forward)} \\ "
                rf"J_{{f^{{-1}}}}(x) = {_matrix(jac.inverse)} \\ "
                rf"J_f(z)\,J_{{f^{{-1}}}}(x) = {_matrix(jac.product)} \end{{gathered}}"
            )
            st.caption(
                f"z = f⁻¹(x) = ({jac.z[0]:.3f}, {jac.z[1]:.3f}) (the cross on the left). Both matrices by "
                f"autograd through the layers; log|det J_f⁻¹(x)| from the layers' own formulas is "
                f"{jac.log_det_inverse:.4f}, and −log|det J_f(z)| is "
                f"{-np.log(abs(np.linalg.det(jac.forward))):.4f}."
            )
        else:
            st.info("No z maps to this x: it lies outside the image of the flow.")
    with text:
        step_text(step, explorer_link(MULTIMODAL), "Open this flow in the Explorer")
        st.caption(
            "There, switch on *Probe a point* under **More views** to walk a point back layer by layer."
        )


def _matrix(values: np.ndarray) -> str:
    rows = [" & ".join(f"{0.0 if abs(v) < 5e-13 else v:.3f}" for v in row) for row in values]
    return r"\begin{pmatrix}" + r" \\ ".join(rows) + r"\end{pmatrix}"


def step_multimodal(step: Step) -> dict:
    text, picture = st.columns([1, 1.5], gap="large")
    with picture:
        push = st.slider("Push of both planar layers (u)", 0.0, 1.1, step=0.1, key=K + "push", value=1.1)
        spec = multimodal_spec(push)
        fields = explorer_fields(canonical_json(spec))
        panels = density_panels(fields["base_density"], fields["density"], log_scale=False)
        figure = grid_figure(panels, fields["x"], fields["y"], cols=2, spaces=["z", "x"], height=340)
        live_chart(figure, K + "figure4", 340, "One Gaussian and what the flow makes of it", CHART_CONFIG)
    with text:
        step_text(step, explorer_link(spec), "Open this flow in the Explorer")
    return spec


def step_two_terms(step: Step, spec: dict) -> None:
    text, picture = st.columns([1, 1.5], gap="large")
    with picture:
        fields = explorer_fields(canonical_json(spec))
        panels = terms_panels(fields["base_log_prob"], fields["log_det_inverse"], fields["log_density"])
        figure = grid_figure(
            panels, fields["x"], fields["y"], cols=3, spaces=["x", "x", "x"], height=300, hover=[2]
        )
        live_chart(figure, K + "figure5", 300, "The two terms of log p and their sum", CHART_CONFIG)
        st.caption(
            "The flow of step 4. Left: the prior term; middle: the log-det term, coloured by what f does "
            f"there ({VOLUME_LEGEND}); right: their sum, log p_X."
        )
    with text:
        step_text(step, explorer_link(spec), "Open this flow in the Explorer")
        st.caption("There, pick *Change-of-variables terms* under **More views**.")


def step_triangular(step: Step) -> None:
    text, picture = st.columns([1, 1.5], gap="large")
    with picture:
        report = measured_reports(6, 0)[0]  # the Structure page's opening coupling layer
        st.plotly_chart(
            jacobian_heatmap(report.jacobian, "Affine coupling, D = 6: J = ∂x/∂z by autograd"),
            config=PLOT_CONFIG,
            key=K + "figure6",
        )
        st.latex(
            rf"\det J = \prod_i J_{{ii}} = {report.diagonal_product:.6g}"
            rf"\quad(\text{{dense }}\det: {report.det_dense:.6g})"
        )
    with text:
        step_text(step, "/structure", "Open the Jacobian structure page")


def step_train(step: Step) -> None:
    text, picture = st.columns([1, 1.5], gap="large")
    with picture:
        points = toy_set("two_moons", 1000)
        figure = samples_figure(np.zeros((0, 2)), points, data_window(points), height=360)
        figure.update_layout(title={"text": "Two moons: 1000 points a flow can learn"})
        st.plotly_chart(figure, config=PLOT_CONFIG, key=K + "figure7")
    with text:
        step_text(step, "/train", "Open the Train page")


def learning_path() -> None:
    """All seven steps, in order."""
    (one, two, three, four, five, six, seven) = STEPS
    step_change_of_variables(one)
    st.divider()
    step_three_cases(two)
    st.divider()
    step_inverse_jacobian(three)
    st.divider()
    spec = step_multimodal(four)
    st.divider()
    step_two_terms(five, spec)
    st.divider()
    step_triangular(six)
    st.divider()
    step_train(seven)
